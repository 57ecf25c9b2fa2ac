"""The in-browser player's plays and skips, decided by the backends' rules.

The page reports what its ``<audio>`` element does (a track started, is playing or paused, ended,
or was left) with the seconds actually listened so far. Each page session gets a
:class:`~recengine.playback.tracker.PlayTracker` whose clock is that listening time, so the
rules in :mod:`recengine.playback.tracker` (half the track or 4 minutes = play, under 30 s = skip,
nothing in between) decide, exactly as they do for MPD and the local player.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from recengine.models import HistoryEvent, Track
from recengine.playback.tracker import PlayTracker

#: What the page may report.
STATES = ("start", "playing", "paused", "ended", "left")
#: Page sessions followed at once; the least recently heard from is dropped first.
MAX_SESSIONS = 64


@dataclass
class ListeningClock:
    """A clock that reads the page's listening time (it only moves while audio plays)."""

    seconds: float = 0.0

    def __call__(self) -> float:
        return self.seconds


@dataclass
class _Session:
    tracker: PlayTracker
    clock: ListeningClock
    lock: threading.Lock = field(default_factory=threading.Lock)


class BrowserPlayers:
    """One play tracker per page session, recording through ``record``."""

    def __init__(self, record: Callable[[HistoryEvent], None]):
        self.record = record
        self._sessions: collections.OrderedDict[tuple[str, str], _Session] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _session(self, session: str, user: str) -> _Session:
        key = (session, user)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                clock = ListeningClock()
                found = self._sessions[key] = _Session(
                    PlayTracker(self.record, user=user, source="web", clock=clock), clock)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
            return found

    def report(self, session: str, user: str, track: Track, state: str, listened_s: float) -> list[HistoryEvent]:
        """Apply one report from the page; returns the events it recorded."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        s = self._session(session, user)
        with s.lock:
            events: list[HistoryEvent] = []
            current = s.tracker.track
            if state == "start" or current is None or current.track_id != track.track_id:
                events += s.tracker.ended() if s.tracker.active else []
                s.clock.seconds = 0.0
                events += s.tracker.start(track, playing=state in ("start", "playing"))
            s.clock.seconds = max(s.clock.seconds, listened_s)
            if state == "ended":
                events += s.tracker.finish()
            elif state == "left":
                events += s.tracker.leave()
            else:
                events += s.tracker.tick(playing=state in ("start", "playing"))
            return events
