"""The catalog: one SQLite file, the only source of truth.

The index and the playlist files are derived from what is stored here. :class:`Catalog` is the
facade the other stages use; each concern lives in its own module (connection and pragmas in
:mod:`.db`, migrations in :mod:`.schema`, then tracks, features, failures, history, playlists,
meta), composed here into one object.
"""

from __future__ import annotations

from pathlib import Path

from recengine.catalog.failures import FailureStore
from recengine.catalog.features import FeatureStore
from recengine.catalog.history import HistoryStore
from recengine.catalog.listens import ListenStore
from recengine.catalog.meta import MetaStore
from recengine.catalog.playlists import PlaylistStore
from recengine.catalog.schema import Schema
from recengine.catalog.skipped import SkippedStore
from recengine.catalog.tracks import TrackStore


class Catalog(TrackStore, FeatureStore, FailureStore, HistoryStore, ListenStore, PlaylistStore, MetaStore, SkippedStore,
              Schema):
    """The SQLite catalog. Thread-safe: writes serialise on a lock, reads use per-thread connections.

    Opening checks the file (``quick_check``) and brings its schema up to date (``migrate``;
    with ``migrate=False`` a file of another schema version is refused instead).

    Paths, one rule everywhere: roots, relative paths and playlist paths are stored as the file
    system's bytes of the name and given back as ``str`` decoded the way ``os`` does
    (``os.fsdecode``: a byte that is not UTF-8 becomes a lone surrogate ``U+DCxx``). So
    ``Track.path`` opens the file, compares equal to what ``os.scandir`` gives, and
    ``os.fsencode(track.path)`` is its exact bytes: what a playlist writer must write (or, for a
    format that needs UTF-8, skip with a warning: ``os.fsencode(p).decode("utf-8")`` raises
    for exactly those names).
    """

    def __init__(self, path: Path, *, migrate: bool = True):
        super().__init__(path)
        if migrate:
            self.migrate()
        else:
            self.check_schema()

    def __enter__(self) -> Catalog:
        return self
