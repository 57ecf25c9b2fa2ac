"""watchdog observers for the library roots: inotify where it works, polling where it cannot.

A root on a network filesystem (NFS, SMB, FUSE...) sends no inotify events, so it is polled (a log
line says why); so is a root past the inotify watch limit. :class:`ObserverSet` builds the
observers, reports each root's mode and why, and rebuilds them when a thread died, a root
appeared, vanished, was replaced or (un)mounted.

Kernel queue overflows: watchdog 7 rebuilds its watches on ``IN_Q_OVERFLOW`` but tells event
handlers nothing (watchdog #654). The inotify observer here is watchdog's ``BaseObserver`` with
``InotifyFullEmitter`` on an :class:`~watchdog.observers.inotify_c.InotifyFD` of our own
(``inotify_fd`` is a documented emitter argument), and an :class:`OverflowAlarm` is registered on
it through the public ``InotifyFD.add_callback`` (watchdog's ``WatchCallback`` protocol, whose
``on_queue_overflow`` every callback of the fd receives). No private attribute is touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import stat
import threading
import time
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
#: An unavailable root that is a directory again (e.g. after EACCES) is re-tried after this long.
RETRY_UNAVAILABLE_S = 60.0


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


def watch_limit_reached(path: str) -> bool:
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


def inotify_observer(fd) -> BaseObserver:
    """An inotify observer reading ``fd`` (a started ``InotifyFD``). "Full events": moves from/to
    outside the roots arrive as moves with one empty side."""
    from watchdog.observers.inotify import InotifyFullEmitter

    return BaseObserver(InotifyFullEmitter, inotify_fd=fd)


def dir_ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class OverflowAlarm:
    """A watchdog ``WatchCallback`` that only listens for kernel queue overflows."""

    def __init__(self, on_overflow: Callable[[], None]):
        self._on_overflow = on_overflow

    def on_event(self, event) -> None:
        pass  # the emitters report events

    def on_watch_deleted(self, wd) -> None:
        pass  # a vanished root is the supervisor's business

    def on_queue_overflow(self) -> None:
        self._on_overflow()


class InotifyWatch:
    """One inotify observer and the inotify instance it reads, started and stopped together."""

    def __init__(self, on_overflow: Callable[[], None]):
        from watchdog.observers.inotify_c import InotifyFD

        self.fd = InotifyFD()  # OSError EMFILE: the inotify instance limit
        self.fd.start()
        self.observer = inotify_observer(self.fd)
        self._alarm = OverflowAlarm(on_overflow)

    def listen_for_overflow(self, root: str) -> None:
        from watchdog.observers.inotify_c import CallbackId, InotifyConstants

        mask = InotifyConstants.IN_DELETE_SELF | InotifyConstants.IN_MASK_ADD  # never narrows the root's watch
        self.fd.add_callback(os.fsencode(root), mask, self._alarm, CallbackId(id(self._alarm)))

    def threads(self) -> list[threading.Thread]:
        return [self.observer, *self.observer.emitters, self.fd]

    def stop(self, timeout: float) -> None:
        with contextlib.suppress(Exception):
            self.observer.stop()
        with contextlib.suppress(RuntimeError):
            self.observer.join(timeout)
        with contextlib.suppress(Exception):
            self.fd.stop()
        with contextlib.suppress(RuntimeError):
            self.fd.join(timeout)


class ObserverSet:
    """Observers for every root; which mode each root is watched in, and why.

    ``handler(polling)`` makes the event handler for an observer. Thread-safe: :meth:`health`,
    :meth:`rebuild_if_needed` and :meth:`stop` take one lock.
    """

    def __init__(self, roots: Iterable[str], *, handler: Callable[[bool], we.FileSystemEventHandler],
                 on_overflow: Callable[[], None], force_polling: bool, poll_interval_s: float,
                 fs_type: Callable[[Path], str]):  # fmt: skip
        self.roots = list(roots)
        self._handler, self._on_overflow = handler, on_overflow
        self.force_polling, self.poll_interval_s, self._fs_type = force_polling, poll_interval_s, fs_type
        self._lock = threading.Lock()
        self._inotify: InotifyWatch | None = None
        self._polling: BaseObserver | None = None
        self.modes: dict[str, tuple[str, str]] = {}
        self._idents: dict[str, tuple[int, int] | None] = {}
        self.restarts, self._built_at = 0, 0.0

    def health(self) -> tuple[dict[str, dict[str, str]], int]:
        """``({root: {"mode", "why"}}, restarts)``."""
        with self._lock:
            return {r: {"mode": m, "why": why} for r, (m, why) in self.modes.items()}, self.restarts

    def emitters(self) -> list[threading.Thread]:
        """The emitter threads of every observer (one per watched root)."""
        with self._lock:
            return [e for obs in self._observers() for e in obs.emitters]

    def inotify_fds(self) -> list:
        """The inotify instances read by the inotify observer (none when every root is polled)."""
        with self._lock:
            return [self._inotify.fd] if self._inotify is not None else []

    def _observers(self) -> list[BaseObserver]:
        return [o for o in (self._inotify.observer if self._inotify else None, self._polling) if o is not None]

    # building -----------------------------------------------------------------------------------

    def build(self) -> None:
        with self._lock:
            self._build()

    def _build(self) -> None:
        """Fresh observers for every root (none running); records each root's mode and why."""
        modes: dict[str, tuple[str, str]] = {}
        local, polled = [], []
        for root in self.roots:
            if not os.path.isdir(root):
                modes[root] = ("unavailable", "not a directory")
                continue
            self._idents[root] = dir_ident(root)
            fs = "" if self.force_polling else self._fs_type(Path(root))
            if self.force_polling:
                polled.append((root, "forced"))
            elif is_network_fs(fs):
                log.info("watching %s by polling: network filesystem (%s) sends no inotify events", root, fs)
                polled.append((root, f"network filesystem ({fs})"))
            else:
                local.append(root)
        self._inotify = self._watch_inotify(local, modes, polled) if local else None
        self._polling = None
        if polled:
            poll = PollingObserverVFS(os.lstat, os.scandir, polling_interval=self.poll_interval_s)
            self._polling = poll if self._schedule(poll, polled, modes, "polling") else None
        self.modes, self._built_at = modes, time.monotonic()

    def _watch_inotify(self, roots: list[str], modes: dict, polled: list) -> InotifyWatch | None:
        try:
            ino = InotifyWatch(self._on_overflow)
        except OSError as exc:  # EMFILE: inotify instance limit
            log.warning("inotify unavailable (%s); polling instead; %s", exc, SYSCTL_HINT)
            polled += [(r, f"inotify unavailable ({exc.strerror})") for r in roots]
            return None
        scheduled = self._schedule(ino.observer, [(r, "") for r in roots], modes, "inotify")
        for root in roots:
            if modes[root][0] == "limit":
                log.warning("inotify watch limit reached for %s; polling it instead; %s", root, SYSCTL_HINT)
                polled.append((root, modes.pop(root)[1]))
            elif modes[root][0] == "inotify":
                with contextlib.suppress(OSError):
                    ino.listen_for_overflow(root)
        if scheduled:
            return ino
        ino.stop(2.0)
        return None

    def _schedule(self, obs: BaseObserver, roots: list, modes: dict, mode: str) -> bool:
        """Start ``obs`` and schedule ``roots`` on it; False (and stopped) if nothing was scheduled."""
        obs.start()
        for root, why in roots:
            try:
                watch = obs.schedule(self._handler(mode == "polling"), root, recursive=True,
                                     event_filter=EVENT_FILTER)  # fmt: skip
                if mode == "inotify" and watch_limit_reached(root):  # watchdog swallows ENOSPC on subdirs
                    obs.unschedule(watch)
                    raise OSError(errno.ENOSPC, "inotify watch limit reached")
                modes[root] = (mode, why)
            except OSError as exc:
                limit = mode == "inotify" and exc.errno in (errno.ENOSPC, errno.EMFILE)
                modes[root] = (
                    ("limit", f"inotify watch limit ({exc.strerror})") if limit else ("unavailable", str(exc))
                )
        if obs.emitters:
            return True
        obs.stop()
        obs.join(2.0)
        return False

    def stop(self, timeout: float) -> None:
        with self._lock:
            self._stop(timeout)

    def _stop(self, timeout: float) -> None:
        if self._polling is not None:
            with contextlib.suppress(Exception):
                self._polling.stop()
            with contextlib.suppress(RuntimeError):
                self._polling.join(timeout)
        if self._inotify is not None:
            self._inotify.stop(timeout)
        self._inotify = self._polling = None

    # supervision --------------------------------------------------------------------------------

    def _problem(self) -> tuple[str, bool] | None:
        """(why, crashed) if the watch must be rebuilt, else None. Caller holds the lock."""
        threads = [*(self._inotify.threads() if self._inotify else []),
                   *([self._polling, *self._polling.emitters] if self._polling else [])]  # fmt: skip
        for thread in threads:
            if not thread.is_alive():
                root = getattr(getattr(thread, "watch", None), "path", None)
                if root is not None and not os.path.isdir(root):
                    return f"root gone: {root}", False  # emitters stop when their root vanishes
                return f"{type(thread).__name__} {root or ''} died", True
        for root in self.roots:  # moved away (inotify ignores IN_MOVE_SELF), replaced, (un)mounted
            ident = dir_ident(root)
            mode, why = self.modes.get(root, ("unavailable", ""))
            if mode == "unavailable":
                retry = why == "not a directory" or time.monotonic() - self._built_at > RETRY_UNAVAILABLE_S
                if ident is not None and retry:
                    return f"root changed: {root}", False
            elif ident != self._idents.get(root):
                return f"root {'changed' if ident else 'gone'}: {root}", False
        return None

    def rebuild_if_needed(self, stopping: Callable[[], bool]) -> str | None:
        """Rebuild the observers if a thread died or a root changed; the reconcile reason to ask
        for (``"watcher restarted"`` after a crash), or None when nothing was wrong."""
        with self._lock:
            found = self._problem()
            if found is None or stopping():
                return None
            why, crashed = found
            if crashed:
                log.critical("watcher %s; restarting with a fresh observer", why)
                self.restarts += 1
            else:
                log.warning("watcher: %s; re-watching", why)
            self._stop(2.0)
            self._build()
        return "watcher restarted" if crashed else why
