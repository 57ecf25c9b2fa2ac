"""One daemon per data dir: an ``flock`` on ``data_dir/lock`` with the holder's pid inside.

The lock is released by the kernel when its holder exits, however it exits, so a stale lock file
never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = "lock"


class AlreadyRunning(Exception):
    """Another daemon holds the data dir's lock."""


class DataDirLock:
    """``flock`` on ``data_dir/lock``, with the holder's pid written inside."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_FILE
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise AlreadyRunning(f"already running (pid {pid}) on {self.path.parent}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.seek(0)
                self._fh.truncate()
            self._fh.close()
            self._fh = None


def running_pid(data_dir: Path) -> int | None:
    """The pid of the daemon holding ``data_dir``'s lock (-1 if it wrote none), or None."""
    path = Path(data_dir) / LOCK_FILE
    if not path.exists():
        return None
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None
