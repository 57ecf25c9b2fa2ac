"""Shared parts of the playback backends: the play/skip rules and a queue of player processes.

The rules (one place, :class:`PlayTracker`, used by the ``mpd``, ``local`` and ``command``
backends), after the Last.fm scrobbling rules:

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

:class:`ProcessQueuePlayer` runs one external player process per track from a queue on a
background thread (``local`` and ``command`` backends).
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from recengine.models import HistoryEvent, Track

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

Record = Callable[[HistoryEvent], None]


class BackendUnavailable(RuntimeError):
    """The backend cannot play on this machine or cannot reach its player; one-line message."""


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


# --- a queue of player processes ----------------------------------------------------------------


def kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """Stop ``proc`` and its children (it runs in its own session): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class ProcessQueuePlayer:
    """Plays queued tracks one external process at a time, on a background thread.

    ``play(tracks, "replace")`` stops what is playing and starts the new list;
    ``play(tracks, "append")`` adds to the queue. ``play`` returns at once; :meth:`wait` blocks
    until the queue is done. :meth:`skip` ends the current track (a skip under 30 s),
    :meth:`stop` ends it and clears the queue, :meth:`close` also ends the thread. Plays and
    skips go to the ``record`` passed to the latest ``play`` call, on the player thread.

    Subclasses implement :meth:`argv` (the command for one item; an item is one track, or all
    tracks of a ``play`` call when :attr:`batch` is true) and may override :meth:`exited_ok`.
    """

    name = "process"
    source = "process"
    #: play all tracks of one ``play`` call with one process (no per-track events)
    batch = False

    def __init__(self, *, user: str = "default"):
        self.user = user
        self.record: Record | None = None
        self._queue: collections.deque[list[Track]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._current: list[Track] = []
        self._interrupted = False
        self._closing = False

    # to override ------------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`BackendUnavailable` when this backend cannot play here."""

    def argv(self, tracks: list[Track]) -> list[str]:
        raise NotImplementedError

    def popen_env(self) -> dict[str, str] | None:
        return None

    def exited_ok(self, tracker: PlayTracker, stderr_tail: str) -> None:
        """The process exited 0 after playing ``tracker.track``: by default, a play."""
        tracker.finish()

    # public API -----------------------------------------------------------------------------------

    def play(self, tracks: list[Track], mode: str = "replace", record: Record | None = None) -> int:
        """Queue ``tracks`` (``mode`` ``"replace"`` or ``"append"``); returns how many were queued."""
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', got {mode!r}")
        self.check()
        tracks = list(tracks)
        items = [tracks] if self.batch and tracks else [[t] for t in tracks]
        with self._cond:
            if record is not None:
                self.record = record
            if mode == "replace":
                self._queue.clear()
                self._interrupt_locked()
            self._queue.extend(items)
            self._closing = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"recengine-{self.name}-player", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        return len(tracks)

    def now_playing(self) -> Track | None:
        with self._cond:
            return self._current[0] if self._current else None

    def skip(self) -> None:
        """End the current track and go on with the next one."""
        with self._cond:
            self._interrupt_locked()

    def stop(self) -> None:
        """End the current track and clear the queue."""
        with self._cond:
            self._queue.clear()
            self._interrupt_locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue is played out; False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._current:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop playing and end the player thread."""
        with self._cond:
            self._closing = True
            self._queue.clear()
            self._interrupt_locked()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # worker -----------------------------------------------------------------------------------------

    def _interrupt_locked(self) -> None:
        if self._current:
            self._interrupted = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            threading.Thread(target=kill_group, args=(proc,), daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                item = self._queue.popleft()
                self._current = item
                self._interrupted = False
                record = self.record
            try:
                self._play_item(item, record)
            except Exception:
                log.exception("%s backend: playing %s failed", self.name, [t.relpath for t in item])
            finally:
                with self._cond:
                    self._current = []
                    self._proc = None
                    self._cond.notify_all()

    def _play_item(self, item: list[Track], record: Record | None) -> None:
        tracker = PlayTracker(record, user=self.user, source=self.source)
        argv = self.argv(item)
        with tempfile.TemporaryFile() as err:
            try:
                proc = self._spawn(argv, err)
            except OSError as exc:
                log.error("%s backend: cannot run %s: %s", self.name, argv[0], exc.strerror or exc)
                return
            with self._cond:
                self._proc = proc
                if self._interrupted or self._closing:
                    self._interrupt_locked()
            if len(item) == 1:
                tracker.start(item[0], duration=item[0].duration)
            while True:
                wait = tracker.seconds_to_play()
                try:
                    rc = proc.wait(timeout=0.5 if wait is None else min(max(wait, 0.01), 0.5))
                    break
                except subprocess.TimeoutExpired:
                    tracker.tick(True)
            with self._cond:
                interrupted = self._interrupted
            tail = _tail(err)
        if interrupted:
            tracker.leave()
        elif rc == 0:
            if len(item) == 1:
                self.exited_ok(tracker, tail)
            else:  # one process for many tracks: it says it played them all
                for track in item:
                    safe_record(
                        record,
                        HistoryEvent(
                            user=self.user, track_id=track.track_id, kind="play", source=self.source
                        ),
                    )
        else:
            log.warning(
                "%s backend: %s exited with status %s%s", self.name, argv[0], rc, f": {tail}" if tail else ""
            )
            tracker.abandon()

    def _spawn(self, argv: Sequence[str], err: IO[bytes]) -> subprocess.Popen:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env=self.popen_env(),
        )


def _tail(fh: IO[bytes], limit: int = 400) -> str:
    try:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(size - limit, 0))
        text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return " ".join(text.split())
