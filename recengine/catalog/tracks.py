"""Library folders (roots) and the audio files found under them (tracks).

A track is soft-deleted: ``missing_since`` is set when its file is gone, and it comes back with
its id, features and history if the file reappears; :meth:`TrackStore.purge_missing` forgets
tracks missing for longer than the retention.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from recengine.catalog.db import Database, fs_bytes
from recengine.models import Track

#: Columns of a :class:`recengine.models.Track`, in its field order (``t``: tracks, ``r``: roots).
TRACK_COLS = ("t.track_id, r.path, t.relpath, t.size, t.mtime_ns, t.content_sig, t.duration, t.artist, "
              "t.album, t.title, t.genre, t.tracknumber, t.status")
#: Present tracks: not missing, on an available root.
PRESENT = "t.missing_since IS NULL AND r.state='available'"
_FILE_COLS = "track_id, relpath, size, mtime_ns, inode, content_sig, status, missing_since"


@dataclass(frozen=True)
class TrackFile:
    """What the catalog remembers of a file, for the scanner's diff."""

    track_id: int
    relpath: str
    size: int
    mtime_ns: int
    inode: int | None
    content_sig: str
    status: str
    missing_since: float | None


def track_of(row: tuple) -> Track:
    return Track(*row)


class TrackStore(Database):
    """Roots and tracks."""

    # roots --------------------------------------------------------------------------------------

    def root_id(self, path: str) -> int:
        row = self.query("SELECT root_id FROM roots WHERE path=CAST(? AS TEXT)", (fs_bytes(path),))
        if row:
            return row[0][0]
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO roots(path, last_seen) VALUES (CAST(? AS TEXT), ?)",
                       (fs_bytes(path), time.time()))
            return db.execute("SELECT root_id FROM roots WHERE path=CAST(? AS TEXT)", (fs_bytes(path),)).fetchone()[0]

    def root_info(self, root_id: int) -> dict:
        row = self.query("SELECT path, sentinel, device, state, last_seen FROM roots WHERE root_id=?", (root_id,))
        if not row:
            raise KeyError(root_id)
        return dict(zip(("path", "sentinel", "device", "state", "last_seen"), row[0], strict=True))

    def set_root(self, root_id: int, **fields: object) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.write() as db:
            db.execute(f"UPDATE roots SET {cols} WHERE root_id=?", (*fields.values(), root_id))

    def roots(self) -> list[tuple[int, str, str]]:
        return [tuple(r) for r in self.query("SELECT root_id, path, state FROM roots ORDER BY root_id")]

    # files, for the scanner ---------------------------------------------------------------------

    def files_under(self, root_id: int) -> dict[str, TrackFile]:
        rows = self.query(f"SELECT {_FILE_COLS} FROM tracks WHERE root_id=?", (root_id,))
        return {r[1]: TrackFile(*r) for r in rows}

    def tracks_with_sig(self, content_sig: str) -> list[TrackFile]:
        rows = self.query(f"SELECT {_FILE_COLS} FROM tracks WHERE content_sig=?", (content_sig,))
        return [TrackFile(*r) for r in rows]

    def add_track(self, root_id: int, relpath: str, size: int, mtime_ns: int, inode: int | None,
                  content_sig: str) -> int:
        now = time.time()
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO tracks(root_id, relpath, size, mtime_ns, inode, content_sig, status, added_at, updated_at) "
                "VALUES (?, CAST(? AS TEXT), ?, ?, ?, ?, 'pending', ?, ?)",
                (root_id, fs_bytes(relpath), size, mtime_ns, inode, content_sig, now, now))
            return int(cur.lastrowid)

    def update_file(self, track_id: int, *, size: int, mtime_ns: int, inode: int | None, content_sig: str,
                    root_id: int | None = None, relpath: str | None = None) -> None:
        """The file changed (new content: back to pending) or moved (same content: path only)."""
        with self.write() as db:
            old = db.execute("SELECT content_sig FROM tracks WHERE track_id=?", (track_id,)).fetchone()
            changed = old is None or old[0] != content_sig
            sets = ["size=?", "mtime_ns=?", "inode=?", "content_sig=?", "missing_since=NULL", "updated_at=?"]
            params: list[object] = [size, mtime_ns, inode, content_sig, time.time()]
            if changed:
                sets.append("status='pending'")
            if root_id is not None and relpath is not None:
                sets += ["root_id=?", "relpath=CAST(? AS TEXT)"]
                params += [root_id, fs_bytes(relpath)]
            db.execute(f"UPDATE tracks SET {', '.join(sets)} WHERE track_id=?", (*params, track_id))

    def mark_missing(self, track_ids: Iterable[int], when: float | None = None) -> None:
        when = time.time() if when is None else when
        with self.write() as db:
            db.executemany("UPDATE tracks SET missing_since=? WHERE track_id=? AND missing_since IS NULL",
                           [(when, t) for t in track_ids])

    def purge_missing(self, older_than: float) -> int:
        """Forget tracks missing since before ``older_than`` (and their history)."""
        with self.write() as db:
            ids = [r[0] for r in db.execute(
                "SELECT track_id FROM tracks WHERE missing_since IS NOT NULL AND missing_since < ?", (older_than,))]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                marks = ",".join("?" * len(part))
                db.execute(f"DELETE FROM events WHERE track_id IN ({marks})", part)
                db.execute(f"DELETE FROM tracks WHERE track_id IN ({marks})", part)
            return len(ids)

    # tracks -------------------------------------------------------------------------------------

    def track(self, track_id: int) -> Track | None:
        rows = self.query(f"SELECT {TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) WHERE t.track_id=?",
                          (track_id,))
        return track_of(rows[0]) if rows else None

    def tracks_by_ids(self, ids: Iterable[int]) -> dict[int, Track]:
        ids = list(ids)
        out: dict[int, Track] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self.query(f"SELECT {TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                              f"WHERE t.track_id IN ({','.join('?' * len(part))})", part)
            out.update((r[0], track_of(r)) for r in rows)
        return out

    def track_by_path(self, path: Path) -> Track | None:
        path = Path(path).absolute()
        for root_id, root, _ in self.roots():
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            rows = self.query(f"SELECT {TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                              "WHERE t.root_id=? AND t.relpath=CAST(? AS TEXT)", (root_id, fs_bytes(rel)))
            if rows:
                return track_of(rows[0])
        return None

    def tracks(self, *, present: bool = True, status: str | None = None) -> list[Track]:
        where = ["1=1"]
        params: list[object] = []
        if present:
            where.append(PRESENT)
        if status is not None:
            where.append("t.status=?")
            params.append(status)
        rows = self.query(f"SELECT {TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                          f"WHERE {' AND '.join(where)} ORDER BY t.track_id", params)
        return [track_of(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.query("SELECT status, missing_since IS NOT NULL, count(*) FROM tracks GROUP BY 1, 2")
        out = {"ok": 0, "pending": 0, "failed": 0, "missing": 0}
        for status, missing, n in rows:
            key = "missing" if missing else status
            out[key] = out.get(key, 0) + n
        out["failures"] = self.query("SELECT count(*) FROM failures")[0][0]
        out["skipped"] = self.query("SELECT count(*) FROM skipped")[0][0]
        return out
