"""Read-only queries for browsing the library: text search, recent history, map labels.

Used by the HTTP API (:mod:`recengine.web`). Reads go through :meth:`Catalog.query`, so they run
on the caller's per-thread read connection and never wait for a writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recengine.catalog.tracks import PRESENT, TRACK_COLS, track_of
from recengine.models import HistoryEvent, Track

if TYPE_CHECKING:
    from recengine.catalog.catalog import Catalog


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: ``total`` matches, ``tracks`` from ``offset`` on."""

    total: int
    offset: int
    tracks: list[Track]


@dataclass(frozen=True)
class MapLabels:
    """Per-track labels for the library map, aligned with ``ids``; ``artist``, ``album`` and
    ``folder`` are indices into the ``artists``, ``albums`` and ``folders`` name lists."""

    ids: list[int]
    artist: list[int]
    album: list[int]
    folder: list[int]
    artists: list[str]
    albums: list[str]
    folders: list[str]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Browse:
    """Searches and listings over a catalog (present tracks on available roots only)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def search(self, text: str, *, limit: int, offset: int = 0) -> SearchPage:
        """Tracks whose artist, title, album or relative path contains every word of ``text``
        (case-insensitive), ordered by artist, album, track number and path."""
        where, params = [PRESENT], []
        for word in text.split():
            where.append("(t.artist LIKE ? ESCAPE '\\' OR t.title LIKE ? ESCAPE '\\' "
                         "OR t.album LIKE ? ESCAPE '\\' OR t.relpath LIKE ? ESCAPE '\\')")
            params += [f"%{_like_escape(word)}%"] * 4
        cond = " AND ".join(where)
        base = f"FROM tracks t JOIN roots r USING(root_id) WHERE {cond}"
        total = self.catalog.query(f"SELECT count(*) {base}", params)[0][0]
        rows = self.catalog.query(
            f"SELECT {TRACK_COLS} {base} ORDER BY t.artist IS NULL, t.artist COLLATE NOCASE, "
            "t.album COLLATE NOCASE, t.tracknumber, t.relpath LIMIT ? OFFSET ?", [*params, limit, offset])
        return SearchPage(total, offset, [track_of(r) for r in rows])

    def recent_events(self, user: str, *, limit: int) -> list[HistoryEvent]:
        """The newest ``limit`` history events of ``user``, newest first."""
        rows = self.catalog.query(
            "SELECT u.name, e.track_id, e.kind, e.at, e.listened_s, e.source FROM events e "
            "JOIN users u USING(user_id) WHERE u.name=? ORDER BY e.at DESC, e.event_id DESC LIMIT ?",
            (user, limit))
        return [HistoryEvent(*r) for r in rows]

    def version(self) -> tuple[int, float, int]:
        """Changes whenever a track is added, changed, analysed, goes missing or comes back:
        ``(tracks, newest update time, analysed present tracks)``."""
        row = self.catalog.query(
            "SELECT count(*), coalesce(max(t.updated_at), 0), "
            f"coalesce(sum({PRESENT} AND t.status='ok'), 0) FROM tracks t JOIN roots r USING(root_id)")[0]
        return int(row[0]), float(row[1]), int(row[2])

    def map_labels(self) -> MapLabels:
        """Artist, album and folder (the relative path's parent) of every analysed present track."""
        # The names come as bytes (CAST AS BLOB skips the connection's per-value text decoding):
        # numbering them needs only equality, and just the distinct ones are decoded, once each.
        rows = self.catalog.query(
            "SELECT t.track_id, CAST(coalesce(t.artist, '') AS BLOB), CAST(coalesce(t.album, '') AS BLOB), "
            f"CAST(t.relpath AS BLOB) FROM tracks t JOIN roots r USING(root_id) WHERE {PRESENT} AND t.status='ok' "
            "ORDER BY t.track_id")
        artists: dict[bytes, int] = {}
        albums: dict[bytes, int] = {}
        folders: dict[bytes, int] = {}
        columns: tuple[list[int], list[int], list[int]] = ([], [], [])
        artist_of, album_of, folder_of = columns
        ids = []
        for tid, artist, album, relpath in rows:
            ids.append(tid)
            artist_of.append(artists.setdefault(artist, len(artists)))
            album_of.append(albums.setdefault(album, len(albums)))
            folder_of.append(folders.setdefault(relpath.rpartition(b"/")[0], len(folders)))
        names = tuple([os.fsdecode(name) for name in table] for table in (artists, albums, folders))
        return MapLabels(ids, *columns, *names)
