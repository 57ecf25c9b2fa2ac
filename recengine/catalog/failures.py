"""The failure ledger: files that could not be featurised, with a reason class and a message.

A failure belongs to one version of a file (its size and mtime): permanent ones wait for the file
to change, transient ones (``permission``, ``timeout``) are retried after a while.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from recengine.catalog.db import Database


@dataclass(frozen=True)
class Failure:
    track_id: int
    path: str
    reason: str
    message: str
    at: float


class FailureStore(Database):
    """Record and list failures."""

    def record_failure(self, track_id: int, reason: str, message: str, size: int, mtime_ns: int) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                       (track_id, reason, message[:500], size, mtime_ns, time.time()))
            db.execute("UPDATE tracks SET status='failed', updated_at=? WHERE track_id=?", (time.time(), track_id))

    def failures(self) -> list[Failure]:
        rows = self.query("SELECT f.track_id, r.path || '/' || t.relpath, f.reason, f.message, f.at "
                          "FROM failures f JOIN tracks t USING(track_id) JOIN roots r USING(root_id) "
                          "WHERE t.missing_since IS NULL ORDER BY f.reason, t.relpath")
        return [Failure(*r) for r in rows]
