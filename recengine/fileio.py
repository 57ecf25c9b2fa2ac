"""Crash-safe file replacement for everything recengine derives from the catalog.

Index manifests and playlists are read by other programs (media servers, MPD) at any moment, so
they are never written in place: :func:`atomic_write` writes a temp file in the same directory,
fsyncs it, renames it over the target with :func:`os.replace` and fsyncs the directory. A reader
sees the whole old file or the whole new one, and after a crash the target is one of the two.
Temp files a crash leaves behind are removed by :func:`sweep_stale_temps` at startup.
:class:`PidLock` is the one lock-file implementation (the daemon's data-dir lock, the writer lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from recengine.faults import faultpoint

#: Our temp files are named ``.<target name>.<8 random chars>.tmp`` (see :func:`tempfile.mkstemp`).
TEMP_SUFFIX = ".tmp"
_TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
#: Bytes of the target name kept in the temp name, so that a long name stays under NAME_MAX.
_MAX_PREFIX_BYTES = 120
_CHUNK = 1 << 20


def _open_regular(path: str | os.PathLike[str]):
    """``path`` opened for binary reading if it is a regular file, else None (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _same_content(path: Path, data: bytes) -> bool:
    """True when ``path`` is a regular file whose bytes are exactly ``data``."""
    f = _open_regular(path)
    if f is None:
        return False
    view = memoryview(data)
    pos = 0
    with f:
        if os.fstat(f.fileno()).st_size != len(data):
            return False
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return pos == len(data)
            if view[pos : pos + len(chunk)] != chunk:
                return False
            pos += len(chunk)


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _temp_prefix(name: str) -> str:
    raw = os.fsencode(name)[:_MAX_PREFIX_BYTES]
    return "." + os.fsdecode(raw) + "."


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename in it survives power loss.

    Filesystems that cannot fsync a directory (``EINVAL``/``ENOTSUP``, e.g. some network
    filesystems) are tolerated; any other error propagates.
    """
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None, fault: str | None = None
) -> bool:
    """Replace ``path`` with ``data`` atomically; return False when nothing had to change.

    - Unchanged bytes: the file is not touched (same inode, same mtime) and False is returned.
    - Otherwise a temp file ``.<name>.<random>.tmp`` is created in the same directory, written,
      fsynced, given the permissions of the file it replaces (or ``0o666 & ~umask`` for a new
      file; ``mode`` overrides), renamed over ``path`` and the directory is fsynced. True.
    - On any error (``ENOSPC``, ``EIO``, ...) the temp file is removed, the old file is left
      byte-identical and the exception propagates.

    A symlink at ``path`` is replaced by a regular file, never followed. ``fault`` names the
    fault point (``mid_playlist_write``, ``mid_index_write``) hit after half the data is written.
    """
    path = Path(path)
    if not isinstance(data, bytes):
        data = bytes(data)
    if _same_content(path, data):
        return False
    directory = path.parent
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            mode = 0o666 & ~_current_umask()
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if fault:
                half = len(data) // 2
                f.write(data[:half])
                f.flush()
                faultpoint(fault)
                f.write(data[half:])
            else:
                f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    return True


def is_our_temp(name: str) -> bool:
    """True for a file name :func:`atomic_write` uses for its temp files."""
    return bool(_TEMP_RE.match(name))


def sweep_stale_temps(directory: str | os.PathLike[str], *, min_age_s: float = 0.0) -> list[Path]:
    """Remove temp files left by :func:`atomic_write` (after a crash) from ``directory``.

    Only regular files named like ours (``.<name>.<8 chars>.tmp``) and last modified at least
    ``min_age_s`` seconds ago are removed; subdirectories are not searched. Run it at startup,
    when no write can be in flight (the daemon holds its lock). A missing directory is no error.
    Returns the removed paths.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not is_our_temp(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < min_age_s:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    return removed


def read_head(path: str | os.PathLike[str], limit: int = 64 * 1024) -> bytes | None:
    """The first ``limit`` bytes of a regular file, or None when it is missing or not a file.

    For ownership checks (does this playlist carry our marker?) without reading a whole file.
    Symlinks are followed; FIFOs and devices are never opened.
    """
    f = _open_regular(path)
    if f is None:
        return None
    with f:
        return f.read(limit)


class PidLock:
    """An exclusive ``flock`` on a file that holds the holder's pid. The kernel releases it when the
    holder exits, however it exits, so a lock file left behind never blocks anyone."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fh = None

    def acquire(self, *, blocking: bool = False) -> bool:
        """Take the lock (waiting for it when ``blocking``); False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.close()
            return False
        except BaseException:  # Ctrl-C while waiting
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.seek(0)
                self._fh.truncate()
            self._fh.close()
            self._fh = None

    def holder(self) -> int | None:
        """The pid of the process holding the lock (-1 if it wrote none), or None when it is free."""
        try:
            fh = open(self.path)
        except FileNotFoundError:
            return None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = fh.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fh, fcntl.LOCK_UN)
        return None
