"""Files under a library folder that are not in the catalog on purpose, with a reason class.

``fifo``, ``socket``, ``device``: not regular files; ``symlink_loop``, ``broken_symlink``,
``symlink_outside`` (points out of the library folder), ``directory_symlink`` (not followed);
``unreadable_folder``: a folder the scan could not read (its tracks are kept as they were). A full
reconcile replaces a folder's list; the watcher adds and removes single entries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from recengine.catalog.db import Database, fs_bytes

#: What each reason class means, for people (``{detail}``: the link's target, or why the folder
#: could not be read).
EXPLANATIONS = {
    "fifo": "a named pipe, not a file: never opened",
    "socket": "a socket, not a file",
    "device": "a device, not a file",
    "symlink_loop": "a symbolic link that loops ({detail})",
    "broken_symlink": "a symbolic link to nothing ({detail})",
    "symlink_outside": "a symbolic link out of the library folder, to {detail}: not followed",
    "directory_symlink": "a symbolic link to a folder ({detail}): not followed",
    "unreadable_folder": "a folder that cannot be read ({detail}): its tracks are kept as they were",
}


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    detail: str
    at: float

    @property
    def explanation(self) -> str:
        """Why the entry is left out, in words."""
        return EXPLANATIONS.get(self.reason, self.reason + (" ({detail})" if self.detail else "")).format(
            detail=self.detail or "?")


class SkippedStore(Database):
    """Record and list skipped files."""

    def replace_skipped(self, root_id: int, entries: Iterable[tuple[str, str, str]]) -> None:
        """The skipped files under root ``root_id`` are exactly ``(relpath, reason, detail)`` ``entries``."""
        now = time.time()
        with self.write() as db:
            db.execute("DELETE FROM skipped WHERE root_id=?", (root_id,))
            db.executemany("INSERT OR REPLACE INTO skipped VALUES (?, CAST(? AS TEXT), ?, ?, ?)",
                           [(root_id, fs_bytes(rel), reason, detail, now) for rel, reason, detail in entries])

    def note_skipped(self, root_id: int, relpath: str, reason: str, detail: str = "") -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO skipped VALUES (?, CAST(? AS TEXT), ?, ?, ?)",
                       (root_id, fs_bytes(relpath), reason, detail, time.time()))

    def forget_skipped(self, root_id: int, relpaths: Iterable[str]) -> None:
        with self.write() as db:
            db.executemany("DELETE FROM skipped WHERE root_id=? AND relpath=CAST(? AS TEXT)",
                           [(root_id, fs_bytes(rel)) for rel in relpaths])

    def skipped(self) -> list[Skipped]:
        """Every skipped file, by reason and path."""
        rows = self.query("SELECT r.path || '/' || s.relpath, s.reason, s.detail, s.at FROM skipped s "
                          "JOIN roots r USING(root_id) ORDER BY s.reason, s.relpath")
        return [Skipped(*r) for r in rows]
