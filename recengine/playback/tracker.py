"""When listening becomes a play or a skip: :class:`PlayTracker`, used by every backend that
reports history (``mpd``, ``local``, ``command``).

The rules, after the Last.fm scrobbling rules:

- **play**: the track was listened to for half its length or 4 minutes, whichever comes first
  (4 minutes when the length is unknown). The play is recorded as soon as that threshold is
  crossed, once per time the track is started, with ``listened_s`` = the listening time so far;
  a track the player reports as played to its end is a play too (this matters only when the
  length is unknown).
- **skip**: the listener left the track (next, another song, stop, a new queue) after less than
  30 s of listening and before the play threshold. ``listened_s`` says how long.
- **in between** (left after 30 s but before the threshold, e.g. 2 minutes into a 10 minute
  track): nothing is recorded - neither a liked play nor a rejection.
- Listening time is wall-clock time while the player is playing (pauses do not count); when a
  watcher attaches to a track already playing, its current position counts as listened.
- ``at`` is when the track started playing (as scrobblers do), not when the event was decided.
- A track the backend cannot map to the catalog (``None``) is followed but records nothing; a
  player that disconnects or fails mid-track records nothing for that track.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from recengine.models import HistoryEvent, Track
from recengine.plugin.protocols import Record

log = logging.getLogger(__name__)

#: A track counts as played after this share of its length ...
PLAY_FRACTION = 0.5
#: ... or after this many seconds, whichever comes first.
PLAY_CAP_S = 240.0
#: Leaving a track before this many seconds of listening is a skip.
SKIP_BELOW_S = 30.0
#: A track whose estimated position is this close to its end (at most 10 % of its length) when the
#: player moves on was played to its end.
END_SLACK_S = 2.5

def play_threshold(duration: float | None) -> float:
    """Seconds of listening after which a track counts as played."""
    if duration is None or not duration > 0:
        return PLAY_CAP_S
    return min(duration * PLAY_FRACTION, PLAY_CAP_S)


def safe_record(record: Record | None, event: HistoryEvent) -> None:
    """Call ``record``; an exception in it is logged, never raised into the player thread."""
    if record is None:
        return
    try:
        record(event)
    except Exception:
        log.exception("recording %s of track %s failed", event.kind, event.track_id)


class PlayTracker:
    """Follows one track at a time and turns listening into ``play``/``skip`` events.

    A backend calls :meth:`start` when a track starts, :meth:`tick` whenever it learns whether
    the player is playing (and at least when :meth:`seconds_to_play` says the threshold will be
    crossed), and one of :meth:`finish` (played to its end), :meth:`leave` (the listener moved
    on), :meth:`ended` (moved on, finished or not: decided from the position) or :meth:`abandon`
    (no event: error, disconnect, shutdown). Every method returns the events it recorded.
    """

    def __init__(
        self,
        record: Record | None,
        *,
        user: str = "default",
        source: str = "cli",
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self.record = record
        self.user = user
        self.source = source
        self.clock = clock
        self.wall = wall
        self.track: Track | None = None
        self.key: object = None
        self.duration: float | None = None
        self.start_position = 0.0
        self.started_at = 0.0
        self.played = False
        self._listened = 0.0
        self._since: float | None = None

    # state -----------------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.key is not None

    @property
    def listened(self) -> float:
        extra = self.clock() - self._since if self._since is not None else 0.0
        return self._listened + max(extra, 0.0)

    @property
    def threshold(self) -> float:
        return play_threshold(self.duration)

    @property
    def position(self) -> float:
        """Estimated position in the track (start position + listening time)."""
        return self.start_position + self.listened

    def seconds_to_play(self) -> float | None:
        """Seconds of playing until the play threshold; None when not playing or already played."""
        if not self.active or self.played or self.track is None or self._since is None:
            return None
        return max(self.threshold - self.listened, 0.0)

    # transitions -------------------------------------------------------------------------------------

    def start(
        self,
        track: Track | None,
        *,
        duration: float | None = None,
        position: float = 0.0,
        playing: bool = True,
        key: object = None,
    ) -> list[HistoryEvent]:
        """A new track (``None``: unknown to the catalog) started; an active one is left first."""
        events = self.ended() if self.active else []
        self.track = track
        self.key = key if key is not None else (track.track_id if track is not None else object())
        d = duration if duration is not None else (track.duration if track is not None else None)
        self.duration = d if d is not None and d > 0 else None
        self.start_position = max(float(position or 0.0), 0.0)
        self._listened = self.start_position
        self.started_at = self.wall() - self.start_position
        # attached to a track already past the threshold: its play may have been recorded by
        # whoever watched it start, so it is not recorded again
        self.played = self.start_position > 0 and self.start_position >= self.threshold
        self._since = self.clock() if playing else None
        return events + self._check()

    def tick(self, playing: bool = True) -> list[HistoryEvent]:
        """Account listening time up to now; ``playing`` says whether it continues."""
        if not self.active:
            return []
        now = self.clock()
        if self._since is not None:
            self._listened += max(now - self._since, 0.0)
        self._since = now if playing else None
        return self._check()

    def finish(self) -> list[HistoryEvent]:
        """The player played the track to its end: a play (if not recorded yet)."""
        if not self.active:
            return []
        events = self.tick(False)
        if not self.played:
            events += self._emit("play")
        self._clear()
        return events

    def leave(self) -> list[HistoryEvent]:
        """The listener moved on: a skip under 30 s of listening, else nothing more."""
        if not self.active:
            return []
        events = self.tick(False)
        if not self.played and self._listened < SKIP_BELOW_S:
            events += self._emit("skip")
        self._clear()
        return events

    def ended(self) -> list[HistoryEvent]:
        """The player moved on: :meth:`finish` if the position reached the end, else :meth:`leave`."""
        if not self.active:
            return []
        events = self.tick(False)
        if self.duration is not None and self.position >= self.duration - min(
            END_SLACK_S, 0.1 * self.duration
        ):
            return events + self.finish()
        return events + self.leave()

    def abandon(self) -> None:
        """Forget the current track without recording anything."""
        self._clear()

    # internals -----------------------------------------------------------------------------------------

    def _check(self) -> list[HistoryEvent]:
        if self.active and not self.played and self.listened >= self.threshold:
            if self._since is not None:  # fold the running segment in, so listened_s is exact
                now = self.clock()
                self._listened += max(now - self._since, 0.0)
                self._since = now
            return self._emit("play")
        return []

    def _emit(self, kind: str) -> list[HistoryEvent]:
        if self.track is None:
            if kind == "play":
                self.played = True
            return []
        if kind == "play":
            self.played = True
        event = HistoryEvent(
            user=self.user,
            track_id=self.track.track_id,
            kind=kind,
            at=self.started_at,
            listened_s=round(self._listened, 1),
            source=self.source,
        )
        safe_record(self.record, event)
        return [event]

    def _clear(self) -> None:
        self.track = None
        self.key = None
        self.duration = None
        self.played = False
        self._listened = 0.0
        self._since = None
