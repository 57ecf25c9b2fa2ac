"""The settling queue: watchdog events in, settled and removed paths and reconcile reasons out.

A path is settled when, after its last event, its (size, mtime_ns) stayed unchanged for
``settle_s`` (inotify, once a close-write or a move-in was seen), else ``poll_settle_s`` (polling
roots, or inotify with no close seen yet). After ``max_delay_s`` a path is handed over even if it
keeps changing. Used by one thread only (the watcher's dispatcher).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from watchdog import events as we

from recengine.library.reconcile import is_folder_link

log = logging.getLogger(__name__)

#: New folders created within this many seconds of their parent count as one burst (mkdir -p).
BURST_S = 5.0


@dataclass
class Batch:
    """What one dispatcher turn hands over: removed paths, settled paths, reconcile reasons."""

    removed: dict[str, None] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)
    reasons: dict[str, None] = field(default_factory=dict)


class _Entry:
    __slots__ = ("first", "last", "closed", "polling", "sig", "sig_since", "scheduled")

    def __init__(self, now: float, polling: bool):
        self.first = self.last = self.sig_since = now
        self.closed, self.polling = False, polling
        self.sig: tuple[int, int] | None = None
        self.scheduled = float("inf")


class SettlingQueue:
    """Pending paths with their due times (a lazy heap), and the recent new folders."""

    def __init__(self, *, settle_s: float, poll_settle_s: float, max_delay_s: float, max_pending: int,
                 wanted: Callable[[str], bool]):  # fmt: skip
        self.settle_s, self.poll_settle_s, self.max_delay_s = settle_s, poll_settle_s, max_delay_s
        self.max_pending, self._wanted = max_pending, wanted
        self._pending: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._recent_dirs: dict[str, float] = {}
        self._bursts: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def idle(self) -> bool:
        return not (self._pending or self._bursts)

    def overflow(self, batch: Batch) -> None:
        """Too much to follow: drop every pending path and ask for a reconcile instead."""
        log.warning("watcher over %d queued paths; dropping them, reconcile requested", self.max_pending)
        self._pending.clear()
        self._heap.clear()
        batch.reasons["overflow"] = None

    # events -------------------------------------------------------------------------------------

    def handle(self, ev: we.FileSystemEvent, polling: bool, now: float, batch: Batch) -> None:
        src, dest = ev.src_path, getattr(ev, "dest_path", "")
        if isinstance(ev, we.DirMovedEvent):
            if ev.is_synthetic:
                return  # watchdog's expansion of a dir move: the reconcile covers it
            if src and dest:
                batch.reasons[f"dir moved: {src} -> {dest}"] = None
                for path in self._under(src):  # keep settling half-written files under their new name
                    entry = self._pending.pop(path)
                    new = dest + path[len(src) :]
                    self._pending[new] = entry
                    self._schedule(new, entry, now, force=True)
            elif src:
                batch.reasons[f"dir moved out: {src}"] = None
                for path in self._under(src):
                    self._remove(path, batch)
            else:
                batch.reasons[f"dir moved in: {dest}"] = None
        elif isinstance(ev, we.DirDeletedEvent):
            for path in self._under(src):
                self._remove(path, batch)
        elif isinstance(ev, we.DirCreatedEvent):
            self._note_new_dir(src, now, ev.is_synthetic)
        elif isinstance(ev, we.FileMovedEvent):
            if ev.is_synthetic:
                return
            if src and self._wanted(src):
                self._remove(src, batch)
            if dest and (self._wanted(dest) or is_folder_link(dest)):
                self._touch(dest, now, polling, batch, closed=True)  # a rename completes a write
        elif isinstance(ev, we.FileDeletedEvent):
            self._remove(src, batch)
        elif isinstance(ev, we.FileClosedEvent):
            self._touch(src, now, polling, batch, closed=True)
        elif isinstance(ev, we.FileCreatedEvent):
            self._touch(src, now, polling, batch, closed=ev.is_synthetic)  # synthetic: moved in with its dir
        elif isinstance(ev, we.FileAttribEvent):
            self._touch(src, now, polling, batch, closed=None)
        elif isinstance(ev, we.FileModifiedEvent):
            self._touch(src, now, polling, batch, closed=False, modified=True)

    def _note_new_dir(self, path: str, now: float, synthetic: bool) -> None:
        """Nested new dirs (mkdir -p, cp -r) may race the new watches: reconcile the top one."""
        if synthetic:
            return
        for d, t in list(self._recent_dirs.items()):
            if now - t > BURST_S:
                del self._recent_dirs[d]
        self._recent_dirs[path] = now
        parent = os.path.dirname(path)
        if parent in self._recent_dirs:
            top = parent
            while os.path.dirname(top) in self._recent_dirs:
                top = os.path.dirname(top)
            self._bursts[top] = now

    def _under(self, directory: str) -> list[str]:
        return [p for p in self._pending if p.startswith(directory.rstrip(os.sep) + os.sep)]

    def _remove(self, path: str, batch: Batch) -> None:
        self._pending.pop(path, None)
        batch.removed[path] = None

    def _bound(self, entry: _Entry) -> float:
        return self.settle_s if entry.closed and not entry.polling else self.poll_settle_s

    def _touch(self, path: str, now: float, polling: bool, batch: Batch, closed: bool | None,
               modified: bool = False) -> None:  # fmt: skip
        entry = self._pending.get(path)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                self.overflow(batch)
            entry = self._pending[path] = _Entry(now, polling)
            entry.closed = closed is not False
        elif closed is not None:
            entry.closed = closed
        entry.last = now
        if polling or not modified:  # not per write chunk: remember (size, mtime_ns) now
            try:
                st = os.stat(path)
                entry.sig, entry.sig_since = (st.st_size, st.st_mtime_ns), now
            except OSError:
                entry.sig = None
        self._schedule(path, entry, now)

    def _schedule(self, path: str, entry: _Entry, now: float, force: bool = False) -> None:
        due = min(max(entry.last, entry.sig_since) + self._bound(entry), entry.first + self.max_delay_s)
        if force or due < entry.scheduled or entry.scheduled <= now:
            entry.scheduled = due
            heapq.heappush(self._heap, (due, next(self._seq), path))

    # what is due --------------------------------------------------------------------------------

    def collect_due(self, now: float, batch: Batch) -> None:
        """Move every path whose settle time has come into ``batch`` (settled, or removed if gone),
        and the new-folder bursts that are over into its reasons."""
        while self._heap and self._heap[0][0] <= now:
            due, _, path = heapq.heappop(self._heap)
            entry = self._pending.get(path)
            if entry is None or due != entry.scheduled:
                continue  # settled, removed, or superseded by an earlier schedule
            entry.scheduled = now
            forced = now - entry.first >= self.max_delay_s
            if not forced and max(entry.last, entry.sig_since) + self._bound(entry) > now:
                self._schedule(path, entry, now)
                continue
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                if not os.path.islink(path):
                    self._remove(path, batch)
                    continue
                st = None  # a dangling symlink: hand over, the catalog lists it as skipped
            except OSError:
                st = None  # EACCES, ELOOP, EIO...: hand over, the catalog classifies it
            if st is not None and stat.S_ISDIR(st.st_mode) and not os.path.islink(path):
                del self._pending[path]
                continue
            sig = (st.st_size, st.st_mtime_ns) if st is not None else None
            if forced or sig == entry.sig:
                if forced and sig != entry.sig:
                    log.info("%s still changing after %.0f s; handing it over", path, self.max_delay_s)
                del self._pending[path]
                batch.settled.append(path)
            else:
                entry.sig, entry.sig_since = sig, now
                self._schedule(path, entry, now)
        for top, t in list(self._bursts.items()):
            if now - t >= self.settle_s:
                batch.reasons[f"new dirs: {top}"] = None
                del self._bursts[top]
