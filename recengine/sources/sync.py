"""``recengine sync``: learn from a Subsonic server, and put recipes there as playlists.

Pull: the server's starred songs become likes of the mapped recengine user (a song unstarred
since the last sync becomes an unlike), and where the server reports play counts (Navidrome,
gonic) the plays since the last sync become plays. What was already taken is remembered per
source in the catalog, so a second sync adds nothing. Push: each recipe named in ``push`` is
written to the server as a playlist of its songs; only playlists recengine created (their ids are
remembered) are ever replaced: a user's playlist of the same name is left alone and ours is named
``<name> (recengine)``.

Server songs are matched to library tracks by path (the server reports it relative to its music
folder; the folder may sit above or below ours), else by artist + title (+ duration) when that
is unambiguous.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recengine.models import HistoryEvent, Track
from recengine.sources.settings import SourceSettings
from recengine.sources.subsonic import Song, SubsonicClient

if TYPE_CHECKING:
    from recengine.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    source: str
    songs: int = 0
    matched: int = 0
    likes: int = 0
    unlikes: int = 0
    plays: int = 0
    pushed: dict[str, int] = field(default_factory=dict)  # playlist -> songs written

    def summary(self) -> str:
        pushed = ", ".join(f"{name} ({n} songs)" for name, n in self.pushed.items()) or "nothing"
        return (f"{self.source}: {self.songs} songs on the server, {self.matched} matched; "
                f"{self.likes} likes, {self.unlikes} unlikes, {self.plays} plays added; pushed {pushed}")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "").casefold()
    return " ".join("".join(c for c in text if c.isalnum() or c.isspace()).split())


class SongMatcher:
    """Server songs -> library track ids."""

    def __init__(self, tracks: Iterable[Track]):
        self.by_relpath: dict[str, int] = {}
        self.by_tags: dict[tuple[str, str], list[Track]] = {}
        for t in tracks:
            self.by_relpath[t.relpath] = t.track_id
            self.by_tags.setdefault((_norm(t.artist or ""), _norm(t.title or "")), []).append(t)

    def match(self, song: Song) -> int | None:
        parts = [p for p in song.path.split("/") if p]
        for i in range(len(parts)):  # the server's folder may sit above ours: drop leading parts
            hit = self.by_relpath.get("/".join(parts[i:]))
            if hit is not None:
                return hit
        if song.path:  # ... or below ours: a relpath ending with the server's path
            suffix = "/" + song.path.strip("/")
            ends = [tid for rel, tid in self.by_relpath.items() if ("/" + rel).endswith(suffix)]
            if len(ends) == 1:
                return ends[0]
        same = self.by_tags.get((_norm(song.artist), _norm(song.title)), []) if song.title else []
        if song.duration and len(same) > 1:
            same = [t for t in same if t.duration and abs(t.duration - float(song.duration)) <= 3]
        return same[0].track_id if len(same) == 1 else None


def _timestamp(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


class SubsonicSync:
    """One source: pull likes and plays, push playlists. State lives in the catalog's meta table."""

    def __init__(self, settings: SourceSettings, catalog: Catalog,
                 record_events: Callable[[list[HistoryEvent]], object],
                 playlist_tracks: Callable[[str], list[Track]], client: SubsonicClient | None = None):
        self.settings = settings
        self.catalog = catalog
        self.record_events = record_events
        self.playlist_tracks = playlist_tracks
        self.client = client or SubsonicClient(settings.url, settings.user, password=settings.password,
                                               api_key=settings.api_key, legacy_auth=settings.legacy_auth)
        self._state_key = f"source:{settings.name}"

    def _state(self) -> dict:
        raw = self.catalog.get_meta(self._state_key)
        state = json.loads(raw) if raw else {}
        state.setdefault("starred", [])
        state.setdefault("play_counts", {})
        state.setdefault("playlists", {})
        return state

    def run(self, now: float | None = None) -> SyncReport:
        now = time.time() if now is None else now
        report = SyncReport(self.settings.name)
        self.client.ping()
        state = self._state()
        songs = self.client.songs()
        matcher = SongMatcher(self.catalog.tracks(present=True))
        track_of = {s.id: tid for s in songs if (tid := matcher.match(s)) is not None}
        report.songs, report.matched = len(songs), len(track_of)
        events = self._pull(songs, track_of, state, now, report)
        if events:
            self.record_events(events)  # durable before the state says they were taken
        self.catalog.set_meta(self._state_key, json.dumps(state))
        song_of = {tid: sid for sid, tid in track_of.items()}
        for recipe in self.settings.push:
            report.pushed[recipe] = self._push(recipe, song_of, state)
            self.catalog.set_meta(self._state_key, json.dumps(state))
        return report

    def _pull(self, songs: list[Song], track_of: dict[str, int], state: dict, now: float,
              report: SyncReport) -> list[HistoryEvent]:
        user, source = self.settings.recengine_user, f"subsonic:{self.settings.name}"
        starred_now = {s.id: s for s in self.client.starred()}
        before = set(state["starred"])
        events = []
        for sid, song in starred_now.items():
            if sid not in before and sid in track_of:
                events.append(HistoryEvent(user, track_of[sid], "like", at=_timestamp(song.starred, now),
                                           source=source))
                report.likes += 1
        for sid in before - set(starred_now):
            if sid in track_of:
                events.append(HistoryEvent(user, track_of[sid], "unlike", at=now, source=source))
                report.unlikes += 1
        # a star on a song not in the library yet is taken when the file arrives
        state["starred"] = sorted(sid for sid in starred_now if sid in track_of)
        counts = state["play_counts"]
        for song in songs:
            if song.play_count is None or song.id not in track_of:
                continue
            new = int(song.play_count) - int(counts.get(song.id, 0))
            at = _timestamp(song.played, now)
            # one event per play: a second apart, so that they stay distinct events
            events += [HistoryEvent(user, track_of[song.id], "play", at=at - i, source=source) for i in range(new)]
            report.plays += max(new, 0)
            counts[song.id] = int(song.play_count)
        return events

    def _push(self, recipe: str, song_of: dict[int, str], state: dict) -> int:
        song_ids = [song_of[t.track_id] for t in self.playlist_tracks(recipe) if t.track_id in song_of]
        existing = self.client.playlists()
        ours = state["playlists"].get(recipe)
        if ours not in existing:
            ours = None
        name = recipe
        if ours is None and name in existing.values():
            log.warning("%s: a playlist named %r exists and was not made by recengine; writing %r instead",
                        self.settings.name, recipe, f"{recipe} (recengine)")
            name = f"{recipe} (recengine)"
            taken = [pid for pid, pname in existing.items() if pname == name]
            ours = next((pid for pid in taken if pid in state["playlists"].values()), None)
            if taken and ours is None:
                log.error("%s: %r exists too and is not ours; playlist %s not pushed", self.settings.name, name,
                          recipe)
                return 0
        if ours is not None and self.client.playlist_songs(ours) == song_ids:
            return len(song_ids)  # unchanged: nothing written
        state["playlists"][recipe] = self.client.save_playlist(name, song_ids, ours)
        return len(song_ids)
