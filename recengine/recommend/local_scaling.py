"""Local scaling of distances (Zelnik-Manor & Perona 2004), a hubness reduction for "more like this".

In a dense part of the space every track is close to many others; in a sparse part the nearest
track may be far. Ranking the candidates of a query by ``d(query, y) / sqrt(sigma_y)``, where
``sigma_y`` is y's distance to its k-th nearest neighbour, is for one query the same order as the
symmetric local-scaling similarity ``exp(-d^2 / (sigma_x sigma_y))``: a track that is near to
everything (a hub) no longer crowds every list. Measured on the dev corpus (k = 10, the top 100
by plain distance re-ranked): +0.017 precision@10 on the whole corpus, and gains on both label
halves.

Sigmas are computed on demand with one index query each and kept until the index is rebuilt
(``built_at`` changes); a fresh track's sigma comes from the index as it is when first asked. A
long-running server works them all out ahead of the queries
(:meth:`recengine.recommend.Similarity.warm`), so that a query meeting tracks nobody asked about
yet does not pay a hundred index queries for them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recengine.index import IndexBackend

SIGMA_FLOOR = 1e-6


class LocalScaling:
    def __init__(self, index: IndexBackend, k: int):
        self.index = index
        self.k = k
        self._sigmas: dict[int, float] = {}
        self._built_at: float | None = None  # the index build the cached sigmas belong to
        self._lock = threading.Lock()

    def sigmas(self, ids: list[int], vectors: np.ndarray) -> np.ndarray:
        """sigma of each of ``ids`` (their index ``vectors`` given, one row each)."""
        with self._lock:
            built = self.index.built_at
            if built != self._built_at:
                self._sigmas, self._built_at = {}, built
            cached = {tid: self._sigmas.get(tid) for tid in ids}  # only the ones asked for
        out = np.empty(len(ids), np.float64)
        fresh: dict[int, float] = {}
        for i, (tid, vec) in enumerate(zip(ids, vectors, strict=True)):
            sigma = cached.get(tid)
            if sigma is None:
                found = self.index.query(vec, self.k + 1, exclude={tid})
                sigma = max(float(found[min(self.k, len(found)) - 1][1]), SIGMA_FLOOR) if found else 1.0
                fresh[tid] = sigma
            out[i] = sigma
        if fresh:
            with self._lock:
                if self._built_at == built:
                    self._sigmas.update(fresh)
        return out

    @property
    def known(self) -> int:
        """How many tracks' sigmas are worked out for the index as it is now."""
        with self._lock:
            return len(self._sigmas) if self._built_at == self.index.built_at else 0

    def rerank(self, plain: np.ndarray, ids: list[int], vectors: np.ndarray) -> np.ndarray:
        """Locally scaled distances for candidates at ``plain`` distances from the query."""
        return plain / np.sqrt(self.sigmas(ids, vectors))
