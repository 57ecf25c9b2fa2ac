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

import contextlib
import ctypes
import errno
import heapq
import itertools
import logging
import os
import queue
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog import events as we
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

log = logging.getLogger(__name__)

NETWORK_FS = frozenset("nfs nfs4 cifs smb3 smbfs sshfs 9p afs ceph glusterfs lustre davfs ncpfs".split())
# Opened / ClosedNoWrite / DirModified are left out: reads by our own featuriser emit nothing.
EVENT_FILTER = [
    we.FileCreatedEvent, we.FileModifiedEvent, we.FileAttribEvent, we.FileClosedEvent, we.FileDeletedEvent,
    we.FileMovedEvent, we.DirCreatedEvent, we.DirDeletedEvent, we.DirMovedEvent,
]  # fmt: skip
SYSCTL_HINT = "raise it with: sysctl fs.inotify.max_user_watches=524288 (and fs.inotify.max_user_instances)"


def is_network_fs(fs_type: str) -> bool:
    return fs_type in NETWORK_FS or fs_type.startswith("fuse.")


def detect_fs_type(path: Path | str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """Filesystem type of the mount holding ``path`` (longest mount-point prefix), or ""."""
    target, best, fs_type = os.path.realpath(path), "", ""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return ""
    for line in lines:  # "id parent maj:min root mountpoint opts... - fstype source superopts"
        fields, _, right = line.partition(" - ")
        fields, right = fields.split(), right.split()
        if len(fields) < 5 or not right:
            continue
        mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if (target == mp or target.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, fs_type = mp, right[0]
    return fs_type


def _watch_limit_reached(path: str) -> bool:
    """Probe whether one more inotify watch can be added (watchdog swallows ENOSPC on subdirs)."""
    try:
        from watchdog.observers.inotify_c import InotifyConstants, inotify_add_watch, inotify_init
    except Exception:  # pragma: no cover - not Linux
        return False
    fd = inotify_init()
    if fd < 0:
        return ctypes.get_errno() in (errno.EMFILE, errno.ENOSPC)
    try:
        return inotify_add_watch(fd, os.fsencode(path), InotifyConstants.IN_DELETE_SELF) < 0 and (
            ctypes.get_errno() == errno.ENOSPC
        )
    finally:
        os.close(fd)


def _inotify_observer() -> BaseObserver:
    from watchdog.observers.inotify import InotifyObserver

    # "full events": moves from/to outside the roots arrive as moves with one empty side.
    return InotifyObserver(generate_full_events=True)


def _dir_ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _Handler(we.FileSystemEventHandler):
    """Runs on watchdog's thread: filter cheaply, enqueue, never block."""

    def __init__(self, watcher: LibraryWatcher, polling: bool):
        self._w, self._polling = watcher, polling

    def dispatch(self, event: we.FileSystemEvent) -> None:
        w, paths = self._w, [p for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        w._last_event = time.time()
        if event.is_directory:
            relevant = not all(w._ignored(p) for p in paths)  # a dir moved out of ignore_dirs counts
        else:
            relevant = any(w._wanted(p) for p in paths)
        if not relevant:
            return
        try:
            w._raw.put_nowait((event, self._polling))
        except queue.Full:
            w._raw_overflow = True


class _Entry:
    __slots__ = ("first", "last", "closed", "polling", "sig", "sig_since", "scheduled")

    def __init__(self, now: float, polling: bool):
        self.first = self.last = self.sig_since = now
        self.closed, self.polling = False, polling
        self.sig: tuple[int, int] | None = None
        self.scheduled = float("inf")


class LibraryWatcher:
    """Watch music roots; report settled audio files in batches.

    A path is settled when, after its last event, its (size, mtime_ns) stayed unchanged for
    ``settle_s`` (inotify, once a close-write or a move-in was seen), else ``poll_settle_s``
    (polling roots, or inotify with no close seen yet). After ``max_delay_s`` a path is handed
    over even if it keeps changing. ``fs_type`` may be injected (tests); ``extensions`` are
    lowercase with a dot. ``start()`` takes the first snapshot of polling roots synchronously.
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
        self.settle_s, self.poll_settle_s, self.poll_interval_s = settle_s, poll_settle_s, poll_interval_s
        self.max_delay_s, self.max_pending, self.force_polling = max_delay_s, max_pending, force_polling
        self._fs_type = fs_type
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
        # dispatcher-only state: pending paths, their due times (lazy heap), recent new dirs
        self._pending: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._recent_dirs: dict[str, float] = {}
        self._bursts: dict[str, float] = {}
        # supervisor state, under _lock
        self._lock = threading.Lock()
        self._observers: list[BaseObserver] = []
        self._modes: dict[str, tuple[str, str]] = {}
        self._idents: dict[str, tuple[int, int] | None] = {}
        self.restarts, self._built_at = 0, 0.0
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

    # -- lifecycle
    def start(self) -> None:
        self._stop.clear()
        self._build_observers()
        for name, target in (("dispatch", self._dispatch_loop), ("supervisor", self._supervise_loop)):
            t = threading.Thread(target=target, name=f"recengine-watcher-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop observers and our threads. Paths still pending are dropped (reconcile covers them)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        with self._lock:
            self._stop_observers(timeout)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def health(self) -> dict:
        """Per-root mode ("inotify" / "polling" / "unavailable") and why, restarts, pending, last event."""
        with self._lock:
            roots = {r: {"mode": m, "why": why} for r, (m, why) in self._modes.items()}
            running, restarts = any(t.is_alive() for t in self._threads), self.restarts
        return dict(running=running, roots=roots, restarts=restarts, pending=len(self._pending),
                    last_event=self._last_event)  # fmt: skip

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued, pending or being dispatched (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not (self._pending or self._busy or self._requests or self._bursts) and self._raw.empty():
                return True
            time.sleep(0.02)
        return False

    # -- observers
    def _build_observers(self) -> None:
        """Fresh observers for every root (caller holds none); records each root's mode and why."""
        modes: dict[str, tuple[str, str]] = {}
        local, polled = [], []
        for root in self.roots:
            if not os.path.isdir(root):
                modes[root] = ("unavailable", "not a directory")
                continue
            self._idents[root] = _dir_ident(root)
            fs = "" if self.force_polling else self._fs_type(Path(root))
            if self.force_polling:
                polled.append((root, "forced"))
            elif is_network_fs(fs):
                log.info("watching %s by polling: network filesystem (%s) sends no inotify events", root, fs)
                polled.append((root, f"network filesystem ({fs})"))
            else:
                local.append(root)
        ino = self._watch_inotify(local, modes, polled) if local else None
        poll = self._watch(PollingObserverVFS(os.lstat, os.scandir, polling_interval=self.poll_interval_s),
                           polled, modes, "polling") if polled else None  # fmt: skip
        self._observers, self._modes = [o for o in (ino, poll) if o is not None], modes
        self._built_at = time.monotonic()

    def _watch_inotify(self, roots: list[str], modes: dict, polled: list) -> BaseObserver | None:
        try:
            ino = _inotify_observer()
        except OSError as exc:  # EMFILE: inotify instance limit
            log.warning("inotify unavailable (%s); polling instead; %s", exc, SYSCTL_HINT)
            polled += [(r, f"inotify unavailable ({exc.strerror})") for r in roots]
            return None
        self._hook_overflow(ino)
        ino = self._watch(ino, [(r, "") for r in roots], modes, "inotify")
        for root in roots:
            if modes[root][0] == "limit":
                log.warning("inotify watch limit reached for %s; polling it instead; %s", root, SYSCTL_HINT)
                polled.append((root, modes.pop(root)[1]))
        return ino

    def _watch(self, obs: BaseObserver, roots: list, modes: dict, mode: str) -> BaseObserver | None:
        """Start ``obs`` and schedule ``roots`` on it; None (and stopped) if nothing was scheduled."""
        obs.start()
        for root, why in roots:
            try:
                watch = obs.schedule(_Handler(self, mode == "polling"), root, recursive=True,
                                     event_filter=EVENT_FILTER)  # fmt: skip
                if mode == "inotify" and _watch_limit_reached(root):  # watchdog swallows ENOSPC on subdirs
                    obs.unschedule(watch)
                    raise OSError(errno.ENOSPC, "inotify watch limit reached")
                modes[root] = (mode, why)
            except OSError as exc:
                limit = mode == "inotify" and exc.errno in (errno.ENOSPC, errno.EMFILE)
                modes[root] = (
                    ("limit", f"inotify watch limit ({exc.strerror})") if limit else ("unavailable", str(exc))
                )
        if obs.emitters:
            return obs
        obs.stop()
        obs.join(2.0)
        return None

    def _hook_overflow(self, observer: BaseObserver) -> None:
        # watchdog 7 rebuilds its watches on IN_Q_OVERFLOW but tells handlers nothing (#654).
        fd = getattr(observer, "_inotify_fd", None)
        if fd is None:
            return
        original = fd.handle_event

        def handle_event(event, _original=original):
            if event.is_queue_overflow:
                self._requests.append("overflow")
            _original(event)

        fd.handle_event = handle_event

    def _stop_observers(self, timeout: float) -> None:
        for obs in self._observers:
            with contextlib.suppress(Exception):
                obs.stop()
        for obs in self._observers:
            with contextlib.suppress(RuntimeError):
                obs.join(timeout)
        self._observers = []

    def _needs_rebuild(self) -> tuple[str, bool] | None:
        """(why, crashed) if the watch must be rebuilt, else None. Caller holds the lock."""
        for obs in self._observers:
            fd = getattr(obs, "_inotify_fd", None)  # watchdog 7's shared inotify reader thread
            for thread in [obs, *list(obs.emitters), *([fd] if fd is not None else [])]:
                if not thread.is_alive():
                    root = getattr(getattr(thread, "watch", None), "path", None)
                    if root is not None and not os.path.isdir(root):
                        return f"root gone: {root}", False  # emitters stop when their root vanishes
                    return f"{type(thread).__name__} {root or ''} died", True
        for root in self.roots:  # moved away (inotify ignores IN_MOVE_SELF), replaced, (un)mounted
            ident = _dir_ident(root)
            mode, why = self._modes.get(root, ("unavailable", ""))
            if mode == "unavailable":
                retry = why == "not a directory" or time.monotonic() - self._built_at > 60  # e.g. EACCES
                if ident is not None and retry:
                    return f"root changed: {root}", False
            elif ident != self._idents.get(root):
                return f"root {'changed' if ident else 'gone'}: {root}", False
        return None

    def _supervise_loop(self) -> None:
        while not self._stop.wait(self.SUPERVISE_S):
            try:
                with self._lock:
                    found = self._needs_rebuild()
                    if found is None or self._stop.is_set():
                        continue
                    why, crashed = found
                    if crashed:
                        log.critical("watcher %s; restarting with a fresh observer", why)
                        self.restarts += 1
                    else:
                        log.warning("watcher: %s; re-watching", why)
                    self._stop_observers(2.0)
                    self._build_observers()
                self._requests.append("watcher restarted" if crashed else why)
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
                removed: dict[str, None] = {}
                settled: list[str] = []
                reasons: dict[str, None] = {}
                batch, self._batch = self._batch, []
                if self._raw_overflow:  # watchdog outran us: drop the batch, reconcile instead
                    self._raw_overflow, batch = False, []
                    self._overflow()
                for event, polling in batch:
                    self._handle(event, polling, now, removed, reasons)
                self._collect_due(now, removed, settled)
                while self._requests:
                    reasons[self._requests.popleft()] = None
                for top, t in list(self._bursts.items()):
                    if now - t >= self.settle_s:
                        reasons[f"new dirs: {top}"] = None
                        del self._bursts[top]
                self._flush(removed, settled, reasons)
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

    def _overflow(self) -> None:
        log.warning("watcher over %d queued paths; dropping them, reconcile requested", self.max_pending)
        self._pending.clear()
        self._heap.clear()
        self._requests.append("overflow")

    def _handle(
        self, ev: we.FileSystemEvent, polling: bool, now: float, removed: dict, reasons: dict
    ) -> None:
        src, dest = ev.src_path, getattr(ev, "dest_path", "")
        if isinstance(ev, we.DirMovedEvent):
            if ev.is_synthetic:
                return  # watchdog's expansion of a dir move: the reconcile covers it
            if src and dest:
                reasons[f"dir moved: {src} -> {dest}"] = None
                for path in self._under(src):  # keep settling half-written files under their new name
                    entry = self._pending.pop(path)
                    new = dest + path[len(src) :]
                    self._pending[new] = entry
                    self._schedule(new, entry, now, force=True)
            elif src:
                reasons[f"dir moved out: {src}"] = None
                for path in self._under(src):
                    self._remove(path, removed)
            else:
                reasons[f"dir moved in: {dest}"] = None
        elif isinstance(ev, we.DirDeletedEvent):
            for path in self._under(src):
                self._remove(path, removed)
        elif isinstance(ev, we.DirCreatedEvent):
            self._note_new_dir(src, now, ev.is_synthetic)
        elif isinstance(ev, we.FileMovedEvent):
            if ev.is_synthetic:
                return
            if src and self._wanted(src):
                self._remove(src, removed)
            if dest and self._wanted(dest):
                self._touch(dest, now, polling, closed=True)  # a rename completes a write
        elif isinstance(ev, we.FileDeletedEvent):
            self._remove(src, removed)
        elif isinstance(ev, we.FileClosedEvent):
            self._touch(src, now, polling, closed=True)
        elif isinstance(ev, we.FileCreatedEvent):
            self._touch(src, now, polling, closed=ev.is_synthetic)  # synthetic: moved in with its dir
        elif isinstance(ev, we.FileAttribEvent):
            self._touch(src, now, polling, closed=None)
        elif isinstance(ev, we.FileModifiedEvent):
            self._touch(src, now, polling, closed=False, modified=True)

    def _note_new_dir(self, path: str, now: float, synthetic: bool) -> None:
        """Nested new dirs (mkdir -p, cp -r) may race the new watches: reconcile the top one."""
        if synthetic:
            return
        for d, t in list(self._recent_dirs.items()):
            if now - t > 5.0:
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

    def _remove(self, path: str, removed: dict) -> None:
        self._pending.pop(path, None)
        removed[path] = None

    def _bound(self, entry: _Entry) -> float:
        return self.settle_s if entry.closed and not entry.polling else self.poll_settle_s

    def _touch(self, path: str, now: float, polling: bool, closed: bool | None, modified=False) -> None:
        entry = self._pending.get(path)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                self._overflow()
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

    def _collect_due(self, now: float, removed: dict, settled: list[str]) -> None:
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
                self._remove(path, removed)
                continue
            except OSError:
                st = None  # EACCES, ELOOP, EIO...: hand over, the catalog classifies it
            if st is not None and stat.S_ISDIR(st.st_mode):
                del self._pending[path]
                continue
            sig = (st.st_size, st.st_mtime_ns) if st is not None else None
            if forced or sig == entry.sig:
                if forced and sig != entry.sig:
                    log.info("%s still changing after %.0f s; handing it over", path, self.max_delay_s)
                del self._pending[path]
                settled.append(path)
            else:
                entry.sig, entry.sig_since = sig, now
                self._schedule(path, entry, now)

    def _flush(self, removed: dict, settled: list[str], reasons: dict) -> None:
        calls: list[tuple[Callable, object]] = []
        if removed:
            calls.append((self._on_removed, [Path(p) for p in removed]))
        for i in range(0, len(settled), 1000):
            calls.append((self._on_settled, [Path(p) for p in settled[i : i + 1000]]))
        calls += [(self._on_reconcile, reason) for reason in reasons]
        for callback, arg in calls:
            try:
                callback(arg)
            except Exception:
                log.exception("watcher callback %s failed", getattr(callback, "__name__", callback))
