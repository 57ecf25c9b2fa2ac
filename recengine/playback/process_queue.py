"""A queue of external player processes, one per track, on a background thread.

:class:`ProcessQueuePlayer` is the base of the ``local`` and ``command`` backends: it runs each
queued track's command in its own session, follows it with a :class:`PlayTracker` and stops the
whole process group on skip, stop or close.
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
from collections.abc import Sequence
from typing import IO

from recengine.models import HistoryEvent, Track
from recengine.playback.tracker import PlayTracker, safe_record
from recengine.plugin.protocols import Record

log = logging.getLogger(__name__)


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
