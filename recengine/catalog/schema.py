"""The catalog's schema: versioned (``PRAGMA user_version``), forward migrations only.

Each migration runs in one transaction, after a backup of the file (``<catalog>.bak-v<N>``, the
version it had) when it held data. :data:`MIGRATIONS` ``[i]`` takes the schema from version ``i``
to ``i + 1``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from recengine.catalog.backup_files import migration_backup
from recengine.catalog.db import CatalogError, Database
from recengine.faults import faultpoint

log = logging.getLogger(__name__)


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


def _v5(db: sqlite3.Connection) -> None:
    """Listens from scrobblers: per-user tokens, listens not matched to a track yet (kept until the
    file arrives), recording MBIDs of tracks, and one event per (user, track, time, kind), so an
    import read twice adds nothing the second time."""
    _script(db,
        """
        CREATE TABLE scrobble_tokens (
            token_hash TEXT PRIMARY KEY,
            user_id    INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
            created_at REAL NOT NULL
        );
        CREATE TABLE pending_listens (
            listen_id  INTEGER PRIMARY KEY,
            user_id    INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
            artist     TEXT NOT NULL,
            title      TEXT NOT NULL,
            album      TEXT,
            mbid       TEXT,
            duration   REAL,
            at         REAL NOT NULL,
            source     TEXT NOT NULL DEFAULT '',
            UNIQUE (user_id, artist, title, at)
        );
        ALTER TABLE tracks ADD COLUMN mbid TEXT;
        CREATE INDEX tracks_mbid ON tracks(mbid);
        DELETE FROM events WHERE event_id NOT IN
            (SELECT min(event_id) FROM events GROUP BY user_id, track_id, at, kind);
        CREATE UNIQUE INDEX events_once ON events(user_id, track_id, at, kind);
        """
    )


def _v6(db: sqlite3.Connection) -> None:
    """Files a scan leaves out and why (FIFOs, devices, symlink loops, symlinks out of the library,
    unreadable folders), so a user can see why a file is not in the catalog."""
    _script(db,
        """
        CREATE TABLE skipped (
            root_id INTEGER NOT NULL REFERENCES roots(root_id),
            relpath TEXT NOT NULL,
            reason  TEXT NOT NULL,
            detail  TEXT NOT NULL DEFAULT '',
            at      REAL NOT NULL,
            PRIMARY KEY (root_id, relpath)
        );
        """
    )


#: MIGRATIONS[i] takes the schema from version i to i + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6)
SCHEMA_VERSION = len(MIGRATIONS)


class Schema(Database):
    """Schema version and migrations of the catalog file."""

    def schema_version(self) -> int:
        return int(self.pragma("user_version"))

    def check_schema(self) -> None:
        """Refuse a file whose schema is not this recengine's (for read-only opens)."""
        if self.schema_version() != SCHEMA_VERSION:
            raise CatalogError(f"{self.path}: schema version {self.schema_version()}, expected {SCHEMA_VERSION}")

    def migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise CatalogError(f"{self.path}: made by a newer recengine (schema {version}, "
                               f"this one knows {SCHEMA_VERSION}); upgrade recengine")
        if version == SCHEMA_VERSION:
            return
        if version > 0:
            backup = migration_backup(self.path, version)
            self.backup(backup)
            log.info("catalog schema %d -> %d; backup at %s", version, SCHEMA_VERSION, backup)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.write() as db:
                MIGRATIONS[target - 1](db)
                faultpoint("mid_migration")
                db.execute(f"PRAGMA user_version={target}")
