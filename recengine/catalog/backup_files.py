"""Where the catalog's backups are, which exist, and what to tell a user whose catalog is damaged.

Two kinds: ``<catalog>.bak-v<N>`` made before a schema migration from version N, and the daemon's
scheduled copies ``backups/<catalog stem>-<YYYYmmdd-HHMMSS>.db`` beside the catalog (``VACUUM
INTO``, the newest ``catalog.backups`` kept). Both are complete SQLite files: restoring one is
copying it over the catalog while nothing runs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"


def migration_backup(catalog: Path, version: int) -> Path:
    return catalog.with_name(f"{catalog.name}.bak-v{version}")


def scheduled_dir(catalog: Path) -> Path:
    return catalog.parent / BACKUP_DIR


def scheduled_backup(catalog: Path, when: float) -> Path:
    return scheduled_dir(catalog) / f"{catalog.stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}.db"


def scheduled_backups(catalog: Path) -> list[Path]:
    """The daemon's copies of ``catalog``, newest first."""
    return sorted(scheduled_dir(catalog).glob(f"{catalog.stem}-*.db"), reverse=True)


def existing_backups(catalog: Path) -> list[Path]:
    """Every backup of ``catalog`` on disk, newest first."""
    found = [*catalog.parent.glob(f"{catalog.name}.bak-v*"), *scheduled_backups(catalog)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def restore_advice(catalog: Path) -> str:
    """What to do about a damaged ``catalog``, naming the backups that exist (or saying there are none)."""
    backups = existing_backups(catalog)
    if not backups:
        return ("there is no backup of it (backups are made before a schema migration and daily by "
                "`recengine daemon`, see catalog.backups); move the file away to start afresh: the "
                "library is analysed again, listening history and likes are lost")
    stamps = ", ".join(f"{b} ({time.strftime('%Y-%m-%d %H:%M', time.localtime(b.stat().st_mtime))})"
                       for b in backups[:5])
    return (f"with nothing running, restore the newest backup: cp '{backups[0]}' '{catalog}' "
            f"(backups: {stamps}); or move the file away to start afresh")


class Snapshots(Protocol):
    path: Path

    def snapshot(self, dest: Path) -> None: ...


def backup_if_due(catalog: Snapshots, *, keep: int, every_s: float, now: float | None = None) -> Path | None:
    """Copy ``catalog`` into the backup folder if its newest copy is older than ``every_s`` (or
    there is none), then keep only the newest ``keep``; returns the new copy, or None."""
    now = time.time() if now is None else now
    existing = scheduled_backups(catalog.path)
    if keep <= 0 or (existing and now - existing[0].stat().st_mtime < every_s):
        return None
    dest = scheduled_backup(catalog.path, now)
    partial = dest.with_name(f".{dest.name}.partial")  # never a half-written file under a backup's name
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    catalog.snapshot(partial)
    partial.replace(dest)
    for old in scheduled_backups(catalog.path)[keep:]:
        old.unlink()
    log.info("catalog backed up to %s", dest)
    return dest
