"""The catalog: one SQLite file, the only source of truth.

WAL, foreign keys on, ``synchronous=FULL``; one writer at a time (a lock around short
``BEGIN IMMEDIATE`` transactions), readers on their own per-thread connections. The schema has a
version (``PRAGMA user_version``) and forward migrations, one transaction each, after a backup
of the file. The index and the playlist files are derived from what is stored here.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recengine.faults import faultpoint
from recengine.models import HistoryEvent, Tags, Track

log = logging.getLogger(__name__)


#: Seconds before a transient failure (permission, timeout) is tried again without a file change.
TRANSIENT_RETRY_S = 600.0


class CatalogError(Exception):
    """The catalog file cannot be used (corrupt, newer schema, unwritable)."""


# --- schema -------------------------------------------------------------------------------------


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run DDL statements inside the caller's transaction (``executescript`` would commit it)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(db,
        """
        CREATE TABLE roots (
            root_id   INTEGER PRIMARY KEY,
            path      TEXT NOT NULL UNIQUE,
            sentinel  TEXT,
            device    INTEGER,
            state     TEXT NOT NULL DEFAULT 'available',
            last_seen REAL
        );
        CREATE TABLE tracks (
            track_id      INTEGER PRIMARY KEY,
            root_id       INTEGER NOT NULL REFERENCES roots(root_id),
            relpath       TEXT NOT NULL,
            size          INTEGER NOT NULL,
            mtime_ns      INTEGER NOT NULL,
            inode         INTEGER,
            content_sig   TEXT NOT NULL,
            duration      REAL,
            artist TEXT, album TEXT, title TEXT, genre TEXT, tracknumber INTEGER,
            status        TEXT NOT NULL DEFAULT 'pending',
            missing_since REAL,
            added_at      REAL NOT NULL,
            updated_at    REAL NOT NULL,
            UNIQUE (root_id, relpath)
        );
        CREATE INDEX tracks_sig ON tracks(content_sig);
        CREATE TABLE features (
            track_id    INTEGER NOT NULL REFERENCES tracks(track_id) ON DELETE CASCADE,
            extractor   TEXT NOT NULL,
            version     INTEGER NOT NULL,
            content_sig TEXT NOT NULL,
            dim         INTEGER NOT NULL,
            vector      BLOB NOT NULL,
            created_at  REAL NOT NULL,
            PRIMARY KEY (track_id, extractor, version)
        );
        CREATE TABLE failures (
            track_id INTEGER PRIMARY KEY REFERENCES tracks(track_id) ON DELETE CASCADE,
            reason   TEXT NOT NULL,
            message  TEXT NOT NULL,
            size     INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            at       REAL NOT NULL
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        """
    )


def _v2(db: sqlite3.Connection) -> None:
    """History, playlists and index generations."""
    _script(db,
        """
        CREATE TABLE users (
            user_id    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        );
        CREATE TABLE events (
            event_id   INTEGER PRIMARY KEY,
            user_id    INTEGER NOT NULL REFERENCES users(user_id),
            track_id   INTEGER NOT NULL REFERENCES tracks(track_id) ON DELETE CASCADE,
            kind       TEXT NOT NULL CHECK (kind IN ('play','skip','like','dislike','unlike')),
            at         REAL NOT NULL,
            listened_s REAL,
            source     TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX events_user_time ON events(user_id, at);
        CREATE TABLE playlists (
            name         TEXT NOT NULL,
            path         TEXT NOT NULL UNIQUE,
            marker       TEXT NOT NULL,
            content_hash TEXT,
            written_at   REAL
        );
        CREATE TABLE index_generations (
            generation INTEGER PRIMARY KEY,
            n_items    INTEGER NOT NULL,
            built_at   REAL NOT NULL,
            manifest   TEXT NOT NULL
        );
        """
    )


def _v3(db: sqlite3.Connection) -> None:
    """Fresh-delta lookups read features by commit time."""
    db.execute("CREATE INDEX features_created ON features(created_at)")


def _v4(db: sqlite3.Connection) -> None:
    """Index generations are described by their manifests on disk alone (the table was never read)."""
    db.execute("DROP TABLE IF EXISTS index_generations")


#: MIGRATIONS[i] takes the schema from version i to i + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4)
SCHEMA_VERSION = len(MIGRATIONS)


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


@dataclass(frozen=True)
class Failure:
    track_id: int
    path: str
    reason: str
    message: str
    at: float


_TRACK_COLS = ("t.track_id, r.path, t.relpath, t.size, t.mtime_ns, t.content_sig, t.duration, t.artist, "
               "t.album, t.title, t.genre, t.tracknumber, t.status")


def _track(row: tuple) -> Track:
    return Track(*row)


class Catalog:
    """The SQLite catalog. Thread-safe: writes serialise on a lock, reads use per-thread connections."""

    def __init__(self, path: Path, *, migrate: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._writer = self._connect()
        self._check_integrity()
        if migrate:
            self.migrate()
        elif self.schema_version() != SCHEMA_VERSION:
            raise CatalogError(f"{self.path}: schema version {self.schema_version()}, expected {SCHEMA_VERSION}")

    # connections --------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: cannot open the catalog: {exc}") from None
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._all_conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all_conns.clear()
        self._local = threading.local()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``), committed on exit, rolled back on error."""
        with self._write_lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self._reader().execute(sql, tuple(params)).fetchall()

    # schema ------------------------------------------------------------------------------------

    def _check_integrity(self) -> None:
        try:
            result = self._writer.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: the catalog is damaged ({exc}); restore a backup "
                               f"(*.bak-*) or move the file away to start afresh") from None
        if result != "ok":
            raise CatalogError(f"{self.path}: the catalog failed its integrity check ({result}); "
                               f"restore a backup (*.bak-*) or move the file away")

    def schema_version(self) -> int:
        return self._writer.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise CatalogError(f"{self.path}: made by a newer recengine (schema {version}, "
                               f"this one knows {SCHEMA_VERSION}); upgrade recengine")
        if version == SCHEMA_VERSION:
            return
        if version > 0:
            backup = self.path.with_name(f"{self.path.name}.bak-v{version}")
            self.backup(backup)
            log.info("catalog schema %d -> %d; backup at %s", version, SCHEMA_VERSION, backup)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.write() as db:
                MIGRATIONS[target - 1](db)
                faultpoint("mid_migration")
                db.execute(f"PRAGMA user_version={target}")

    def backup(self, dest: Path) -> None:
        """A consistent copy of the catalog (safe while others write)."""
        target = sqlite3.connect(dest)
        try:
            with self._write_lock:
                self._writer.backup(target)
        finally:
            target.close()

    # roots --------------------------------------------------------------------------------------

    def root_id(self, path: str) -> int:
        row = self.query("SELECT root_id FROM roots WHERE path=?", (path,))
        if row:
            return row[0][0]
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO roots(path, last_seen) VALUES (?, ?)", (path, time.time()))
            return db.execute("SELECT root_id FROM roots WHERE path=?", (path,)).fetchone()[0]

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

    # tracks -------------------------------------------------------------------------------------

    def files_under(self, root_id: int) -> dict[str, TrackFile]:
        rows = self.query(
            "SELECT track_id, relpath, size, mtime_ns, inode, content_sig, status, missing_since "
            "FROM tracks WHERE root_id=?", (root_id,))
        return {r[1]: TrackFile(*r) for r in rows}

    def tracks_with_sig(self, content_sig: str) -> list[TrackFile]:
        rows = self.query(
            "SELECT track_id, relpath, size, mtime_ns, inode, content_sig, status, missing_since "
            "FROM tracks WHERE content_sig=?", (content_sig,))
        return [TrackFile(*r) for r in rows]

    def add_track(self, root_id: int, relpath: str, size: int, mtime_ns: int, inode: int | None,
                  content_sig: str) -> int:
        now = time.time()
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO tracks(root_id, relpath, size, mtime_ns, inode, content_sig, status, added_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (root_id, relpath, size, mtime_ns, inode, content_sig, now, now))
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
                sets += ["root_id=?", "relpath=?"]
                params += [root_id, relpath]
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

    def track(self, track_id: int) -> Track | None:
        rows = self.query(f"SELECT {_TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) WHERE t.track_id=?",
                          (track_id,))
        return _track(rows[0]) if rows else None

    def tracks_by_ids(self, ids: Iterable[int]) -> dict[int, Track]:
        ids = list(ids)
        out: dict[int, Track] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self.query(f"SELECT {_TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                              f"WHERE t.track_id IN ({','.join('?' * len(part))})", part)
            out.update((r[0], _track(r)) for r in rows)
        return out

    def track_by_path(self, path: Path) -> Track | None:
        path = Path(path).absolute()
        for root_id, root, _ in self.roots():
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            rows = self.query(f"SELECT {_TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                              "WHERE t.root_id=? AND t.relpath=?", (root_id, str(rel)))
            if rows:
                return _track(rows[0])
        return None

    def tracks(self, *, present: bool = True, status: str | None = None) -> list[Track]:
        where = ["1=1"]
        params: list[object] = []
        if present:
            where.append("t.missing_since IS NULL AND r.state='available'")
        if status is not None:
            where.append("t.status=?")
            params.append(status)
        rows = self.query(f"SELECT {_TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                          f"WHERE {' AND '.join(where)} ORDER BY t.track_id", params)
        return [_track(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.query("SELECT status, missing_since IS NOT NULL, count(*) FROM tracks GROUP BY 1, 2")
        out = {"ok": 0, "pending": 0, "failed": 0, "missing": 0}
        for status, missing, n in rows:
            key = "missing" if missing else status
            out[key] = out.get(key, 0) + n
        out["failures"] = self.query("SELECT count(*) FROM failures")[0][0]
        return out

    # features -----------------------------------------------------------------------------------

    def needs_features(self, versions: dict[str, int], *, retry_failed: bool = False) -> list[Track]:
        """Present tracks lacking a feature row for some ``(extractor, version)`` of their content,
        leaving out recorded failures of unchanged files unless ``retry_failed``."""
        if not versions:
            return []
        out = []
        have: dict[int, set[tuple[str, int]]] = {}
        for tid, ext, ver in self.query(
                "SELECT f.track_id, f.extractor, f.version FROM features f JOIN tracks t USING(track_id) "
                "WHERE f.content_sig = t.content_sig"):
            have.setdefault(tid, set()).add((ext, ver))
        # permanent failures wait for the file to change; transient ones are retried after a while
        retry_before = time.time() - TRANSIENT_RETRY_S
        failed = {r[0]: (r[1], r[2]) for r in self.query(
            "SELECT track_id, size, mtime_ns FROM failures WHERE reason NOT IN ('permission', 'timeout') OR at > ?",
            (retry_before,))}
        wanted = set(versions.items())
        rows = self.query(f"SELECT {_TRACK_COLS}, t.mtime_ns FROM tracks t JOIN roots r USING(root_id) "
                          "WHERE t.missing_since IS NULL AND r.state='available' ORDER BY t.track_id")
        for row in rows:
            track = _track(row[:-1])
            if wanted <= have.get(track.track_id, set()):
                continue
            if not retry_failed and failed.get(track.track_id) == (track.size, row[-1]):
                continue
            out.append(track)
        return out

    def missing_extractors(self, track_id: int, versions: dict[str, int]) -> dict[str, int]:
        have = {(e, v) for e, v in self.query(
            "SELECT f.extractor, f.version FROM features f JOIN tracks t USING(track_id) "
            "WHERE f.track_id=? AND f.content_sig=t.content_sig", (track_id,))}
        return {e: v for e, v in versions.items() if (e, v) not in have}

    def save_features(self, track_id: int, content_sig: str, blocks: dict[str, tuple[int, np.ndarray]],
                      tags: Tags | None = None, duration: float | None = None) -> bool:
        """Store feature rows of one track in one transaction; returns False if the file changed meanwhile
        (its content_sig is no longer ``content_sig``), in which case nothing is stored."""
        now = time.time()
        faultpoint("before_feature_commit")
        with self.write() as db:
            row = db.execute("SELECT content_sig FROM tracks WHERE track_id=?", (track_id,)).fetchone()
            if row is None or row[0] != content_sig:
                return False
            for name, (version, vec) in blocks.items():
                vec = np.asarray(vec, dtype=np.float32)
                db.execute("DELETE FROM features WHERE track_id=? AND extractor=? AND version<>?",
                           (track_id, name, version))
                db.execute("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (track_id, name, version, content_sig, vec.size, vec.tobytes(), now))
            sets, params = ["status='ok'", "updated_at=?"], [now]
            if tags is not None:
                sets += ["artist=?", "album=?", "title=?", "genre=?", "tracknumber=?"]
                params += [tags.artist, tags.album, tags.title, tags.genre, tags.tracknumber]
            if duration is not None:
                sets.append("duration=?")
                params.append(duration)
            db.execute(f"UPDATE tracks SET {', '.join(sets)} WHERE track_id=?", (*params, track_id))
            db.execute("DELETE FROM failures WHERE track_id=?", (track_id,))
        faultpoint("after_feature_commit")
        return True

    def feature_matrix(self, versions: dict[str, int]) -> tuple[list[int], dict[str, np.ndarray]]:
        """Present, featurised tracks that have every ``(extractor, version)``: ids and one
        ``(n, dim)`` matrix per extractor, rows aligned with the ids."""
        names = sorted(versions)
        blocks: dict[int, dict[str, np.ndarray]] = {}
        for tid, ext, ver, blob in self.query(
                "SELECT f.track_id, f.extractor, f.version, f.vector FROM features f "
                "JOIN tracks t USING(track_id) JOIN roots r USING(root_id) "
                "WHERE f.content_sig=t.content_sig AND t.missing_since IS NULL AND r.state='available'"):
            if versions.get(ext) == ver:
                blocks.setdefault(tid, {})[ext] = np.frombuffer(blob, dtype=np.float32)
        ids = sorted(t for t, b in blocks.items() if len(b) == len(names))
        mats = {n: np.stack([blocks[t][n] for t in ids]) if ids else np.zeros((0, 0), np.float32) for n in names}
        return ids, mats

    def featurised_since(self, since: float, versions: dict[str, int]) -> dict[int, dict[str, np.ndarray]]:
        """Present tracks with every ``(extractor, version)`` for their content, at least one row of
        which was committed after ``since``: ``{track_id: {extractor: vector}}``."""
        rows = self.query(
            "SELECT f.track_id, f.extractor, f.version, f.vector FROM features f "
            "JOIN tracks t USING(track_id) JOIN roots r USING(root_id) "
            "WHERE f.content_sig=t.content_sig AND t.missing_since IS NULL AND r.state='available' "
            "AND f.track_id IN (SELECT track_id FROM features WHERE created_at > ?)", (since,))
        out: dict[int, dict[str, np.ndarray]] = {}
        for tid, ext, ver, blob in rows:
            if versions.get(ext) == ver:
                out.setdefault(tid, {})[ext] = np.frombuffer(blob, dtype=np.float32)
        return {t: b for t, b in out.items() if len(b) == len(versions)}

    def present_ids(self) -> set[int]:
        """Tracks that may be recommended: present on an available root and featurised."""
        return {r[0] for r in self.query(
            "SELECT t.track_id FROM tracks t JOIN roots r USING(root_id) "
            "WHERE t.missing_since IS NULL AND r.state='available' AND t.status='ok'")}

    def features_of(self, track_id: int, versions: dict[str, int]) -> dict[str, np.ndarray] | None:
        out = {}
        for ext, ver, blob in self.query(
                "SELECT f.extractor, f.version, f.vector FROM features f JOIN tracks t USING(track_id) "
                "WHERE f.track_id=? AND f.content_sig=t.content_sig", (track_id,)):
            if versions.get(ext) == ver:
                out[ext] = np.frombuffer(blob, dtype=np.float32)
        return out if len(out) == len(versions) else None

    # failures -----------------------------------------------------------------------------------

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

    # users and history ----------------------------------------------------------------------------

    def user_id(self, name: str) -> int:
        row = self.query("SELECT user_id FROM users WHERE name=?", (name,))
        if row:
            return row[0][0]
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO users(name, created_at) VALUES (?, ?)", (name, time.time()))
            return db.execute("SELECT user_id FROM users WHERE name=?", (name,)).fetchone()[0]

    def add_events(self, events: list[HistoryEvent]) -> None:
        """Commit history events durably (synchronous=FULL), at most 100 per transaction."""
        users = {e.user: self.user_id(e.user) for e in events}
        for start in range(0, len(events), 100):
            with self.write() as db:
                db.executemany(
                    "INSERT INTO events(user_id, track_id, kind, at, listened_s, source) VALUES (?, ?, ?, ?, ?, ?)",
                    [(users[e.user], e.track_id, e.kind, e.at, e.listened_s, e.source)
                     for e in events[start:start + 100]])
                faultpoint("mid_history_batch")

    def events(self, user: str | None = None, since: float = 0.0) -> list[HistoryEvent]:
        sql = ("SELECT u.name, e.track_id, e.kind, e.at, e.listened_s, e.source FROM events e "
               "JOIN users u USING(user_id) WHERE e.at >= ?")
        params: list[object] = [since]
        if user is not None:
            sql += " AND u.name=?"
            params.append(user)
        return [HistoryEvent(*r) for r in self.query(sql + " ORDER BY e.at, e.event_id", params)]

    # playlists ------------------------------------------------------------------------------------

    def record_playlist_written(self, name: str, path: str, marker: str, content_hash: str,
                                written_at: float) -> None:
        """Remember that playlist ``name`` was written to ``path`` (``content_hash``: sha256 of its bytes)."""
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO playlists(name, path, marker, content_hash, written_at) "
                       "VALUES (?, ?, ?, ?, ?)", (name, path, marker, content_hash, written_at))

    def playlist_files(self) -> list[tuple[str, str, str, float]]:
        """``(name, path, content_hash, written_at)`` of every playlist file written, newest first."""
        return [tuple(r) for r in self.query(
            "SELECT name, path, content_hash, written_at FROM playlists ORDER BY written_at DESC")]

    # meta -----------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return row[0][0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
