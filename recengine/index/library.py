"""Keeps the Annoy index (:class:`recengine.index.store.IndexStore`) in step with the catalog.

A build fits the vector scaling over the library (``vectors.Scaler``, then ``vectors.Projection``),
writes a new generation with the scaling and the extractor versions in its manifest, and swaps it
in. Tracks featurised after that build are assembled with the same scaling and searched exactly
(the delta); tracks gone since are hidden at once. :meth:`LibraryIndex.refresh` brings the delta
up to date cheaply (only the rows committed since the build are read), so a new track is
searchable as soon as its features are committed.

Opening is explicit: :meth:`LibraryIndex.open` loads the newest generation made with today's
extractors, weights, metric and dimensions, or none; it never builds. A query on an index with
nothing loaded raises :class:`IndexNotReady` (unless the library has nothing to index). Building
happens in :meth:`build`, :meth:`catch_up` (``scan``) and :meth:`refresh` when nothing is loaded
yet (the daemon, after library changes).

The rebuild rule lives here and only here (:meth:`needs_rebuild`): rebuild when there is no
generation, after ``index.rebuild_after_changes`` changes, or after ``index.rebuild_quiet_s``
without a change once there was one, or when a deep block's coverage has doubled since the build.

Deep extractors (``deep: True``, e.g. musicnn) run in a pass after the others, so a track may be
indexed before its deep block exists: the block is imputed with the scaler's centre (the library
median), i.e. zeros after standardisation. Zeros add nothing to a dot product, so under the angular
metric such a track is compared on its other blocks only (they are what its cosine is made of),
and it does not drift toward tracks near the median of the missing block (which a made-up value
would do). A deep block enters the scaling once at least :data:`MIN_DEEP_FIT` tracks (or every
track of a smaller library) have it; until then it is left out of every vector. When a track's deep
block arrives it is a fresh row of the delta like any changed track, and its vector now has it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recengine.index.protocols import IndexNotReady
from recengine.index.settings import ExtractorInfo, IndexSettings
from recengine.index.store import IndexStore
from recengine.index.vectors import Projection, Scaler

if TYPE_CHECKING:
    from recengine.catalog import Catalog

log = logging.getLogger(__name__)

#: the index folder inside the data dir
INDEX_DIR = "index"
#: A deep block is fitted into the scaling once this many indexed tracks (or all, if fewer) have it.
MIN_DEEP_FIT = 8


def index_directory(data_dir: Path) -> Path:
    return Path(data_dir) / INDEX_DIR


class LibraryIndex:
    """The library's similarity index: generation + delta, built from the catalog."""

    def __init__(self, catalog: Catalog, settings: IndexSettings, extractors: Mapping[str, ExtractorInfo], *,
                 data_dir: Path, emit: Callable[..., None]):  # fmt: skip
        self.catalog = catalog
        self.settings = settings
        self.versions = {name: info.version for name, info in extractors.items()}
        self.deep = {name: info.version for name, info in extractors.items() if info.deep}
        self.required = {name: v for name, v in self.versions.items() if name not in self.deep}
        self.weights = {name: settings.weights.get(name, info.weight) for name, info in extractors.items()}
        self._emit = emit
        self.store = IndexStore(index_directory(data_dir), metric=settings.metric, n_trees=settings.trees,
                                search_k=settings.search_k, shards=settings.shards)  # fmt: skip
        self._lock = threading.RLock()
        self.scaler: Scaler | None = None
        self.projection: Projection | None = None
        self.built_at = 0.0
        self._changes = 0  # counted since this object was made
        self._changes_at_build: int | None = None  # None: no build tried yet
        self._last_change = 0.0
        self._deep_fitted: dict[str, int] = {}  # deep block -> tracks that had it when the scaler was fitted
        self._deep_arrivals: dict[str, int] = {}  # deep block -> fresh tracks (in the delta) that have it

    @property
    def metric(self) -> str:
        return self.settings.metric

    @property
    def dim(self) -> int | None:
        if self.scaler is None:
            return None
        return self.projection.dim if self.projection is not None else self.scaler.dim

    def expected_meta(self) -> dict[str, Any]:
        """What a generation's manifest must say to be loaded."""
        return {"versions": self.versions, "weights": self.weights, "metric": self.metric,
                "dimensions": self.settings.dimensions}  # fmt: skip

    def _index_vectors(self, rows: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Feature blocks -> index vectors (scaled, weighted, projected)."""
        assert self.scaler is not None
        full = self.scaler.transform_many(rows)
        return self.projection.transform(full) if self.projection is not None and len(full) else full

    # loading and building -------------------------------------------------------------------------

    def open(self) -> bool:
        """Load the newest valid generation made with today's extractors and weights (never a
        build), then refresh its delta. Returns True when one is loaded."""
        with self._lock:
            if self.store.load(expect_meta=self.expected_meta()) is None:
                return False
            meta = self.store.meta
            self.scaler = Scaler.from_dict(meta["scaler"])
            self.projection = Projection.from_dict(meta["projection"]) if meta.get("projection") else None
            self.built_at = float(meta["built_at"])
            self._deep_fitted = {n: int(c) for n, c in (meta.get("deep_fitted") or {}).items()}
            self._refresh_delta()
            return True

    def build(self) -> int | None:
        """Build a new generation from every present, featurised track; None if there is none."""
        with self._lock:
            started, changes = time.time(), self._changes
            ids, rows = self.catalog.feature_blocks(self.required, self.deep)
            if not ids:
                self._changes_at_build = changes
                return None
            have = {name: sum(1 for r in rows if name in r) for name in self.deep}
            fitted = {n: c for n, c in have.items() if c and c >= min(MIN_DEEP_FIT, len(ids))}
            order = [n for n in sorted(self.versions) if n in self.required or n in fitted]
            scaler = Scaler.fit(rows, weights=self.weights, order=order)
            full = scaler.transform_many(rows)
            k = self.settings.dimensions
            projection = Projection.fit(full, k) if k else None
            vectors = projection.transform(full) if projection is not None else full
            meta = {**self.expected_meta(), "scaler": scaler.to_dict(), "built_at": started, "deep_fitted": fitted,
                    "projection": projection.to_dict() if projection is not None else None}
            number = self.store.build(np.asarray(ids, np.int64), vectors, meta)
            self.scaler, self.projection, self.built_at = scaler, projection, started
            self._changes_at_build, self._deep_fitted = changes, fitted
            self._refresh_delta()
            log.info("index generation %d: %d tracks in %.1f s", number, len(ids), time.time() - started)
        self._emit("index_rebuilt", generation=number, size=len(ids))
        return number

    def refresh(self) -> int:
        """Bring the index up to date with the catalog without a rebuild the rule does not ask
        for: put tracks committed since the build into the delta and hide removed ones. With no
        generation loaded yet there is nothing to refresh against: the newest matching one on
        disk is loaded (another process may have built it), else the first one is built.
        Returns the number of fresh tracks."""
        with self._lock:
            if self.scaler is None and not self.open():
                self.build()
                return 0
            return self._refresh_delta()

    def _refresh_delta(self) -> int:
        if self.scaler is None:
            return 0
        fresh = self.catalog.featurised_since(self.built_at, self.required, self.deep)
        self._deep_arrivals = {n: sum(1 for b in fresh.values() if n in b) for n in self.deep}
        ids = list(fresh)
        vectors = self._index_vectors([fresh[t] for t in ids]) if ids else np.zeros((0, self.dim), np.float32)
        in_generation = self.store.generation_ids()
        removed = in_generation[~np.isin(in_generation, np.fromiter(self.catalog.present_ids(), np.int64))]
        self.store.set_delta(np.asarray(ids, np.int64), vectors, removed=removed.tolist())
        return len(ids)

    # the rebuild rule -----------------------------------------------------------------------------

    def note_change(self, n: int = 1) -> None:
        """Count ``n`` library changes (featurised, removed, moved tracks) toward the rebuild rule."""
        if n > 0:
            self._changes += n
            self._last_change = time.monotonic()

    @property
    def changes_since_build(self) -> int:
        return self._changes - (self._changes_at_build or 0)

    def needs_rebuild(self) -> bool:
        """True when there is no generation (unless the last build found nothing to index and
        nothing changed since), after ``index.rebuild_after_changes`` changes, or after
        ``index.rebuild_quiet_s`` without changes once there was one."""
        pending = self.changes_since_build
        if self.store.generation is None:
            return self._changes_at_build is None or pending > 0
        if self.deep_coverage_grew():
            return True
        if not pending:
            return False
        if pending >= self.settings.rebuild_after_changes:
            return True
        return time.monotonic() - self._last_change >= self.settings.rebuild_quiet_s

    def deep_coverage_grew(self) -> bool:
        """A deep block arrived for at least as many tracks since the build as the scaling was fitted
        on (and for enough to be fitted at all): its statistics are refitted, 1, 2, 4 ... times over."""
        size = self.store.size or 0
        return any(n and n >= max(self._deep_fitted.get(name, 0), min(MIN_DEEP_FIT, size), 1)
                   for name, n in self._deep_arrivals.items())

    def catch_up(self, changes: int = 0) -> int | None:
        """Count ``changes``, then bring the index up to date with the catalog: a build when
        :meth:`needs_rebuild`, else :meth:`refresh`. Returns the generation built, or None."""
        self.note_change(changes)
        if not self.needs_rebuild():
            self.refresh()  # which also counts the deep blocks that arrived (deep_coverage_grew)
            if not self.needs_rebuild():
                return None
        return self.build()

    # lookups (recengine.index.protocols.IndexBackend) ---------------------------------------------

    def _check_ready(self) -> None:
        if self.scaler is None and self.catalog.present_ids():
            raise IndexNotReady("no index for the current extractors and weights yet: run `recengine scan` "
                                "(a running daemon builds it by itself)")

    def vectors(self, track_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The index vectors of ``track_ids`` that are in the index (one call for many)."""
        self._check_ready()
        return self.store.vectors(track_ids)

    def vectors_matrix(self, track_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``track_ids`` are in the index, their vectors stacked in that order)."""
        self._check_ready()
        return self.store.vectors_matrix(track_ids)

    def vector(self, track_id: int) -> np.ndarray | None:
        self._check_ready()
        return self.store.vector(track_id)

    def query(self, vector: np.ndarray, n: int, exclude: Collection[int] = frozenset()) -> list[tuple[int, float]]:
        self._check_ready()
        return self.store.query(vector, n, exclude=exclude)

    def close(self) -> None:
        self.store.close()
