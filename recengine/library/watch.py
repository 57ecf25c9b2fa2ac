"""Library watcher: watchdog events -> debounced, settled paths (RELIABILITY.md rule 3).

Events are hints; the catalog's reconcile is the truth. This module never touches the
catalog: it reports settled audio paths, removed paths, and reconcile requests through
three callbacks, all called from one dispatcher thread of ours (never from watchdog's).

Reconcile reasons passed to ``on_reconcile`` (parse the path after ``": "``):
``"overflow"``, ``"watcher restarted"``, ``"dir moved: <src> -> <dest>"``,
``"dir moved out: <src>"``, ``"dir moved in: <dest>"``, ``"new dirs: <top>"``,
``"root changed: <root>"`` (replaced, (un)mounted, or available again), ``"root gone: <root>"``.
A root moved away or deleted becomes "unavailable" in ``health()``; it is never reported removed.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog import events as we

from recengine.library.observers import ObserverSet, detect_fs_type
from recengine.library.reconcile import is_folder_link
from recengine.library.settle import Batch, SettlingQueue

log = logging.getLogger(__name__)


class EventHandler(we.FileSystemEventHandler):
    """Runs on watchdog's thread: filter cheaply, enqueue, never block."""

    def __init__(self, watcher: LibraryWatcher, polling: bool):
        self._watcher, self._polling = watcher, polling

    def dispatch(self, event: we.FileSystemEvent) -> None:
        self._watcher.offer(event, self._polling)


class LibraryWatcher:
    """Watch music roots; report settled audio files in batches.

    Settling is described in :mod:`recengine.library.settle`; which roots are watched by inotify
    and which polled in :mod:`recengine.library.observers`. ``fs_type`` may be injected (tests);
    ``extensions`` are lowercase with a dot. ``start()`` takes the first snapshot of polling roots
    synchronously.
    """

    SUPERVISE_S = 1.0

    def __init__(
        self,
        roots: Iterable[Path | str],
        *,
        on_settled: Callable[[list[Path]], None],
        on_removed: Callable[[list[Path]], None],
        on_reconcile: Callable[[str], None],
        extensions: frozenset[str],
        ignore_dirs: Iterable[Path | str] = (),
        settle_s: float = 1.0,
        poll_settle_s: float = 10.0,
        poll_interval_s: float = 5.0,
        max_delay_s: float = 300.0,
        max_pending: int = 100_000,
        force_polling: bool = False,
        fs_type: Callable[[Path], str] = detect_fs_type,
    ):
        self.roots = [os.path.abspath(r) for r in roots]
        self._on_settled, self._on_removed, self._on_reconcile = on_settled, on_removed, on_reconcile
        self._ext = frozenset(e.lower() for e in extensions)
        self.max_pending = max_pending
        ignore: set[str] = set()
        for d in ignore_dirs:
            a = os.path.abspath(d)
            ignore.add(a)
            real = os.path.realpath(a)
            for r in self.roots:  # same dir spelled through the root's (symlinked) path
                rr = os.path.realpath(r)
                if real.startswith(rr + os.sep):
                    ignore.add(os.path.normpath(os.path.join(r, os.path.relpath(real, rr))))
        self._ignore_exact = frozenset(ignore)
        self._ignore_prefix = tuple(p + os.sep for p in ignore)
        # watchdog threads -> _raw (bounded) -> dispatcher; other threads -> _requests (reconcile reasons)
        self._raw: queue.Queue[tuple[we.FileSystemEvent, bool]] = queue.Queue(maxsize=max_pending)
        self._raw_overflow, self._busy, self._last_event = False, False, None
        self._batch: list[tuple[we.FileSystemEvent, bool]] = []
        self._requests: deque[str] = deque()
        self.queue = SettlingQueue(settle_s=settle_s, poll_settle_s=poll_settle_s, max_delay_s=max_delay_s,
                                   max_pending=max_pending, wanted=self._wanted)  # fmt: skip
        self.observers = ObserverSet(self.roots, handler=lambda polling: EventHandler(self, polling),
                                     on_overflow=lambda: self._requests.append("overflow"),
                                     force_polling=force_polling, poll_interval_s=poll_interval_s,
                                     fs_type=fs_type)  # fmt: skip
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tick = min(0.25, max(0.02, settle_s / 4))  # batching window

    # -- path filters (called from watchdog threads too: pure functions of immutable state)
    def _ignored(self, path: str) -> bool:
        return path in self._ignore_exact or path.startswith(self._ignore_prefix)

    def _wanted(self, path: str) -> bool:
        name = os.path.basename(path)
        if name.startswith(".") and name.endswith(".tmp"):
            return False
        return os.path.splitext(name)[1].lower() in self._ext and not self._ignored(path)

    def offer(self, event: we.FileSystemEvent, polling: bool) -> None:
        """An event from a watchdog thread: kept if it may concern an audio file or a folder."""
        paths = [p for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        self._last_event = time.time()
        if event.is_directory:
            relevant = not all(self._ignored(p) for p in paths)  # a dir moved out of ignore_dirs counts
        else:  # a new link to a folder, too: the catalog lists it as skipped
            relevant = any(self._wanted(p) for p in paths) or (
                isinstance(event, (we.FileCreatedEvent, we.FileMovedEvent)) and is_folder_link(paths[-1]))
        if not relevant:
            return
        try:
            self._raw.put_nowait((event, polling))
        except queue.Full:
            self._raw_overflow = True

    # -- lifecycle
    def start(self) -> None:
        self._stop.clear()
        self.observers.build()
        for name, target in (("dispatch", self._dispatch_loop), ("supervisor", self._supervise_loop)):
            t = threading.Thread(target=target, name=f"recengine-watcher-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop observers and our threads. Paths still pending are dropped (reconcile covers them)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.observers.stop(timeout)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def health(self) -> dict:
        """Per-root mode ("inotify" / "polling" / "unavailable") and why, restarts, pending, last event."""
        roots, restarts = self.observers.health()
        running = any(t.is_alive() for t in self._threads)
        return dict(running=running, roots=roots, restarts=restarts, pending=len(self.queue),
                    last_event=self._last_event)  # fmt: skip

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued, pending or being dispatched (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.idle() and not (self._busy or self._requests) and self._raw.empty():
                return True
            time.sleep(0.02)
        return False

    def _supervise_loop(self) -> None:
        while not self._stop.wait(self.SUPERVISE_S):
            try:
                reason = self.observers.rebuild_if_needed(self._stop.is_set)
                if reason is not None:
                    self._requests.append(reason)
            except Exception:
                log.exception("watcher supervisor error")

    # -- dispatcher (the only thread calling callbacks)
    def _dispatch_loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                next_tick += self._tick
                self._drain(next_tick)
                self._busy = True
                now = time.monotonic()
                next_tick = max(next_tick, now)
                batch = Batch()
                events, self._batch = self._batch, []
                if self._raw_overflow:  # watchdog outran us: drop the batch, reconcile instead
                    self._raw_overflow, events = False, []
                    self.queue.overflow(batch)
                for event, polling in events:
                    self.queue.handle(event, polling, now, batch)
                self.queue.collect_due(now, batch)
                while self._requests:
                    batch.reasons[self._requests.popleft()] = None
                self._flush(batch)
            except Exception:
                log.exception("watcher dispatcher error")
            finally:
                self._busy = False

    def _drain(self, until: float) -> None:
        while (wait := until - time.monotonic()) > 0 and not self._stop.is_set():
            try:
                item = self._raw.get(timeout=wait)
            except queue.Empty:
                return
            self._batch.append(item)

    def _flush(self, batch: Batch) -> None:
        calls: list[tuple[Callable, object]] = []
        if batch.removed:
            calls.append((self._on_removed, [Path(p) for p in batch.removed]))
        for i in range(0, len(batch.settled), 1000):
            calls.append((self._on_settled, [Path(p) for p in batch.settled[i : i + 1000]]))
        calls += [(self._on_reconcile, reason) for reason in batch.reasons]
        for callback, arg in calls:
            try:
                callback(arg)
            except Exception:
                log.exception("watcher callback %s failed", getattr(callback, "__name__", callback))
