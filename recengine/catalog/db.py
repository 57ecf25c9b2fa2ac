"""The catalog's SQLite file: connections, pragmas, the one writer, per-thread readers.

WAL, foreign keys on, ``synchronous=FULL``; one writer at a time (a lock around short
``BEGIN IMMEDIATE`` transactions), readers on their own per-thread connections, so a reader never
waits for a writer. Opening runs ``PRAGMA quick_check``: a damaged file is refused before anything
reads or writes it. SQLite errors that make the catalog unusable are raised as
:class:`CatalogError` naming the file and what to do.

File names are stored losslessly: a path is bound as its file-system bytes (:func:`fs_bytes`,
``os.fsencode``) cast to TEXT (``CAST(? AS TEXT)``), and every TEXT value is read back with
``os.fsdecode``, so a name that is not valid UTF-8 comes back as the same ``str`` Python's ``os``
functions give for it (lone surrogates ``U+DCxx``), and ``os.fsencode(track.path)`` gives its
exact bytes. Valid UTF-8 names are stored exactly as before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from recengine.catalog.backup_files import restore_advice


def fs_bytes(path: str | os.PathLike[str]) -> bytes:
    """A path as bound in SQL (``CAST(? AS TEXT)``): its file-system bytes, surrogates undone."""
    return os.fsencode(path)


class CatalogError(Exception):
    """The catalog file cannot be used (corrupt, newer schema, unwritable)."""


class CatalogFull(CatalogError):
    """The disk holding the catalog is full: the change was rolled back; it works again once there is room."""


class CatalogCorrupt(CatalogError):
    """The catalog file is damaged: nothing can be done with it until it is restored or replaced."""


#: SQLite primary result codes (``sqlite3.Error.sqlite_errorcode & 0xff``).
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 11, 13, 26


class Database:
    """One SQLite file. Thread-safe: writes serialise on a lock, reads use per-thread connections."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._writer = self._connect()
        self._check_integrity()

    # connections --------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.text_factory = os.fsdecode  # names that are not UTF-8 come back as os gives them
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            error = self._translate(exc)
            raise error if isinstance(error, CatalogError) else CatalogError(
                f"{self.path}: cannot open the catalog: {exc}") from None
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

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``), committed on exit, rolled back on error
        (a full disk is raised as :class:`CatalogFull`, naming the file and what to do)."""
        with self._write_lock:
            db = self._writer
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._translate(exc) from exc
                raise

    def _translate(self, exc: sqlite3.DatabaseError) -> Exception:
        """A full disk or a damaged file as a :class:`CatalogError` saying what to do; others as they are."""
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code == SQLITE_FULL:
            return self._full(exc)
        if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return CatalogCorrupt(f"{self.path}: the catalog is damaged ({exc}); {restore_advice(self.path)}")
        return exc

    def _full(self, exc: sqlite3.Error) -> CatalogFull:
        folder = self.path.parent
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free"
        except OSError:
            free = "free space unknown"
        return CatalogFull(f"{self.path}: the disk is full ({exc}; {free} on the file system holding {folder}); "
                           "free some space there (or move data_dir to a larger disk) and run the command "
                           "again: the last change was rolled back, nothing stored before it is lost")

    def query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        """Rows of one read on this thread's own connection."""
        try:
            return self._reader().execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc

    def pragma(self, name: str) -> object:
        """The value of ``PRAGMA name`` on the writer's connection (journal_mode, synchronous, ...)."""
        with self._write_lock:
            return self._writer.execute(f"PRAGMA {name}").fetchone()[0]

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the file and truncate it (at a clean stop)."""
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def snapshot(self, dest: Path) -> None:
        """A compact, consistent copy of the catalog in a new file (``VACUUM INTO``), made on this
        thread's read connection: writers go on meanwhile."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._reader().execute("VACUUM INTO ?", (str(dest),))
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc

    def backup(self, dest: Path) -> None:
        """A consistent copy of the catalog (safe while others write)."""
        target = sqlite3.connect(dest)
        try:
            with self._write_lock:
                self._writer.backup(target)
        finally:
            target.close()

    # integrity ----------------------------------------------------------------------------------

    def _check_integrity(self) -> None:
        try:
            result = self._writer.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CatalogCorrupt(f"{self.path}: the catalog is damaged ({exc}); {restore_advice(self.path)}") from None
        if result != "ok":
            raise CatalogCorrupt(f"{self.path}: the catalog failed its integrity check ({result}); "
                                 f"{restore_advice(self.path)}")
