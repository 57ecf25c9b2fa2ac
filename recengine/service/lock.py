"""One daemon per data dir: a :class:`recengine.fileio.PidLock` on ``data_dir/lock``."""

from __future__ import annotations

from pathlib import Path

from recengine.fileio import PidLock

LOCK_FILE = "lock"


class AlreadyRunning(Exception):
    """Another daemon holds the data dir's lock."""


class DataDirLock:
    """The daemon's lock on its data dir, held while it runs."""

    def __init__(self, data_dir: Path):
        self.lock = PidLock(Path(data_dir) / LOCK_FILE)

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` naming the holder's pid."""
        if not self.lock.acquire():
            pid = self.lock.holder()
            raise AlreadyRunning(f"already running (pid {pid if pid and pid > 0 else '?'}) on {self.lock.path.parent}")

    def release(self) -> None:
        self.lock.release()


def running_pid(data_dir: Path) -> int | None:
    """The pid of the daemon holding ``data_dir``'s lock (-1 if it wrote none), or None."""
    return PidLock(Path(data_dir) / LOCK_FILE).holder()
