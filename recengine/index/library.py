"""Keeps the Annoy index (``index.IndexStore``) in step with the catalog.

A build fits the vector scaling over the library (``vectors.Scaler``), writes a new generation
with the scaling and the extractor versions in its manifest, and swaps it in. Tracks featurised
after that build are assembled with the same scaling and searched exactly (the delta); tracks gone
since are hidden at once. :meth:`LibraryIndex.refresh` brings the delta up to date cheaply (only
the rows committed since the build are read), so a new track is searchable as soon as its
features are committed. :meth:`LibraryIndex.needs_rebuild` applies the rebuild policy.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from recengine.index.store import IndexStore
from recengine.index.vectors import METRIC, Projection, Scaler

log = logging.getLogger(__name__)


class LibraryIndex:
    """The engine's similarity index: generation + delta, built from the catalog."""

    def __init__(self, engine: Any):
        self.engine = engine
        cfg = engine.config
        metric = cfg.get("index.metric", "auto")
        self.metric = METRIC if metric == "auto" else metric
        self.store = IndexStore(engine.config.data_dir / "index", metric=self.metric,
                                n_trees=cfg.get("index.trees") or None, search_k=cfg.get("index.search_k") or None,
                                shards=cfg.get("index.shards") or None)
        self._lock = threading.RLock()
        self.scaler: Scaler | None = None
        self.projection: Projection | None = None
        self.built_at = 0.0
        self._refreshed_at = 0.0
        self.changes_since_build = 0
        self.last_change = 0.0

    # weights and versions ---------------------------------------------------------------------------

    def weights(self) -> dict[str, float]:
        overrides = self.engine.config.get("index.weights") or {}
        return {e.name: float(overrides.get(e.name, getattr(e, "weight", 1.0))) for e in self.engine.extractors}

    def expected_meta(self) -> dict[str, Any]:
        return {"versions": self.engine.extractor_versions(), "weights": self.weights(), "metric": self.metric,
                "dimensions": self.engine.config.get("index.dimensions", 64)}

    def vectors_of(self, rows: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Feature blocks -> index vectors (scaled, weighted, projected)."""
        assert self.scaler is not None
        full = self.scaler.transform_many(rows)
        return self.projection.transform(full) if self.projection is not None and len(full) else full

    # loading and building -------------------------------------------------------------------------

    def open(self) -> bool:
        """Load the newest valid generation made with today's extractors and weights; build one if
        there is none (or it does not match). Returns True when an index is ready."""
        with self._lock:
            number = self.store.load(expect_meta=self.expected_meta())
            if number is None:
                return self.build() is not None
            meta = self._manifest_meta(number)
            self.scaler = Scaler.from_dict(meta["scaler"])
            self.projection = Projection.from_dict(meta["projection"]) if meta.get("projection") else None
            self.built_at = float(meta["built_at"])
            self._refreshed_at = 0.0
            self.refresh()
            return True

    def _manifest_meta(self, number: int) -> dict[str, Any]:
        import json

        path = self.store.directory / f"gen-{number:06d}.json"
        return json.loads(path.read_text())["meta"]

    def build(self) -> int | None:
        """Build a new generation from every present, featurised track; None if there is none."""
        with self._lock:
            started = time.time()
            catalog = self.engine.catalog
            versions = self.engine.extractor_versions()
            ids, blocks = catalog.feature_matrix(versions)
            if not ids:
                return None
            rows = [{name: blocks[name][i] for name in blocks} for i in range(len(ids))]
            scaler = Scaler.fit(rows, weights=self.weights(), order=sorted(versions))
            full = scaler.transform_many(rows)
            k = self.engine.config.get("index.dimensions", 64)
            projection = Projection.fit(full, k) if k else None
            vectors = projection.transform(full) if projection is not None else full
            meta = {**self.expected_meta(), "scaler": scaler.to_dict(), "built_at": started,
                    "projection": projection.to_dict() if projection is not None else None}
            number = self.store.build(np.asarray(ids, np.int64), vectors, meta)
            self.scaler, self.projection, self.built_at = scaler, projection, started
            self._refreshed_at = 0.0
            self.changes_since_build = 0
            self.refresh()
            log.info("index generation %d: %d tracks in %.1f s", number, len(ids), time.time() - started)
        self.engine.emit("index_rebuilt", generation=number, size=len(ids))
        return number

    def refresh(self) -> int:
        """Put tracks committed since the build into the delta and hide removed ones.
        Returns the number of fresh tracks."""
        with self._lock:
            if self.scaler is None:
                return 0
            catalog = self.engine.catalog
            versions = self.engine.extractor_versions()
            fresh = catalog.featurised_since(self.built_at, versions)
            ids = list(fresh)
            dim = self.projection.dim if self.projection is not None else self.scaler.dim
            vectors = self.vectors_of([fresh[t] for t in ids]) if ids else np.zeros((0, dim), np.float32)
            present = catalog.present_ids()
            removed = [t for t in self.store.generation_ids() if t not in present]
            self.store.set_delta(np.asarray(ids, np.int64), vectors, removed=removed)
            self._refreshed_at = time.time()
            return len(ids)

    def note_change(self, n: int = 1) -> None:
        """Count library changes toward the rebuild policy."""
        self.changes_since_build += n
        self.last_change = time.monotonic()

    def needs_rebuild(self) -> bool:
        """After ``index.rebuild_after_changes`` changes, or ``index.rebuild_quiet_s`` of quiet after
        at least one change."""
        if self.store.generation is None:
            return True
        if not self.changes_since_build:
            return False
        cfg = self.engine.config
        if self.changes_since_build >= cfg.get("index.rebuild_after_changes", 200):
            return True
        return time.monotonic() - self.last_change >= cfg.get("index.rebuild_quiet_s", 30.0)

    # lookups ---------------------------------------------------------------------------------------

    def vector(self, track_id: int) -> np.ndarray | None:
        return self.store.vector(track_id)

    def vectors(self, track_ids) -> dict[int, np.ndarray]:
        """The index vectors of ``track_ids`` that are in the index (one call for many)."""
        return {t: v for t in track_ids if (v := self.store.vector(t)) is not None}

    def query(self, vector: np.ndarray, n: int, exclude: set[int] = frozenset()) -> list[tuple[int, float]]:
        return self.store.query(vector, n, exclude=exclude)

    def close(self) -> None:
        self.store.close()
