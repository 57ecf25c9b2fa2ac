"""Last.fm scrobbles as CSV: with a header row naming the columns (the lastfm.ghan.nl export:
``uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid``), or the common "Last.fm to
CSV" export without one (``artist, album, track, date``); and Last.fm loved tracks as CSV with
a header row (the same exporter's *Loved Tracks*: the scrobbles' columns, an album not needed),
whose rows become likes at the time the track was loved."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator

from recengine.importers.records import HistoryImportError, Item, Listen, lines, mbid_of, parse_time, text_of

_ARTIST_COLS = ("artist", "artist_name", "artist name", "artistname")
_ALBUM_COLS = ("album", "album_name", "album name", "release", "release_name")
_TITLE_COLS = ("track", "title", "track_name", "track name", "name", "song")
# Unix columns first: they carry no timezone doubt.
_DATE_COLS = ("uts", "date_uts", "timestamp", "utc_time", "date", "time", "played_at", "datetime")
# The track's MusicBrainz id (Last.fm's track mbid is the recording's), used for matching.
_MBID_COLS = ("track_mbid", "recording_mbid", "mbid", "track mbid", "musicbrainz_trackid")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def read_lastfm_loved(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The loved tracks of a Last.fm loved-tracks CSV as likes (:class:`Listen` with ``event``
    ``like``), and a :class:`HistoryImportError` per bad row. The header row is required (artist,
    track and date columns as for scrobbles; ``track_mbid`` used for matching); the date is when
    the track was loved."""
    return read_lastfm_csv(path, event="like")


def read_lastfm_csv(path: str | os.PathLike[str], *, event: str | None = None) -> Iterator[Item]:
    """The listens of a Last.fm scrobbles CSV, and a :class:`HistoryImportError` per bad row.

    With a header row (any order; columns ``artist``, ``album``, ``track``/``title``/``name`` and
    ``uts`` or ``date``/``utc_time``/``timestamp``, case-insensitive; ``track_mbid`` where present
    is used for matching) or without one, in which case the columns are ``artist, album, track,
    date``. Dates are unix seconds (or milliseconds) or
    ``DD Mon YYYY HH:MM`` in UTC. Rows without a date (a "now playing" row) are bad rows like any
    other. With ``event`` (loved tracks: ``like``) each row is that event, and a header is required.
    """
    bad: set[int] = set()
    reader = csv.reader(text for _, text in lines(path, bad))
    cols: tuple[int, int | None, int, int, int | None] | None = None
    last_line = 0
    try:
        for row in reader:
            start, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            undecodable = [n for n in range(start, last_line + 1) if n in bad]
            if undecodable:
                bad.difference_update(undecodable)
                yield HistoryImportError("not valid UTF-8", file=path, line=start)
                continue
            if cols is None:
                header = [cell.strip().lower() for cell in row]
                a, t = _column(header, _ARTIST_COLS), _column(header, _TITLE_COLS)
                if a is not None and t is not None:
                    d = _column(header, _DATE_COLS)
                    if d is None:
                        raise HistoryImportError("header has no date column (uts or date)", file=path, line=start)
                    cols = (a, _column(header, _ALBUM_COLS), t, d, _column(header, _MBID_COLS))
                    continue
                if event is not None:
                    raise HistoryImportError("a loved-tracks CSV needs a header row naming its artist, track and "
                                             "date columns", file=path, line=start)
                cols = (0, 1, 2, 3, None)
            yield _listen(row, cols, path, start, event)
    except csv.Error as exc:
        raise HistoryImportError(f"CSV: {exc}", file=path, line=reader.line_num) from None


def _listen(row: list[str], cols: tuple[int, int | None, int, int, int | None], path: str | os.PathLike[str],
            line: int, event: str | None = None) -> Item:
    a, al, t, d, m = cols
    needed = max(a, t, d, al or 0) + 1
    if len(row) < needed:
        return HistoryImportError(f"expected at least {needed} columns, found {len(row)}", file=path, line=line)
    artist, title = text_of(row[a]), text_of(row[t])
    if artist is None or title is None:
        return HistoryImportError("empty artist or track", file=path, line=line)
    try:
        at = parse_time(row[d])
    except ValueError as exc:
        return HistoryImportError(str(exc), file=path, line=line)
    mbid = mbid_of(row[m]) if m is not None and m < len(row) else None
    return Listen(artist, title, text_of(row[al]) if al is not None else None, at, mbid=mbid, event=event)
