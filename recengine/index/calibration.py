"""Tuning: how many trees to build and how much of them to search.

``n_trees`` = 10 up to 10k items, +15 per decade (25 at 100k, 40 at 1M). ``search_k`` is
measured, not guessed: each build queries :data:`CALIBRATION_QUERIES` of its own items and keeps
the cheapest ``search_k = k * per_k`` (per shard) reaching recall@10 >= :data:`TARGET_RECALL`
against exact search (manifest ``search_k_per_result``; Annoy's default is badly under-recalled
on clustered data). The sample is drawn from the build's seed, so builds stay byte-identical.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from annoy import AnnoyIndex

from recengine.index.shards import search_shards

log = logging.getLogger(__name__)

#: search_k per requested result tried at build time, cheapest first (see :func:`calibrate`).
PER_K_LADDER = (25, 50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1600, 2000, 2400, 2800, 3200)
CALIBRATION_QUERIES = 200
TARGET_RECALL = 0.97
_TRUTH_BATCH = 16


def default_n_trees(n: int) -> int:
    """Trees for ``n`` items: 10 up to 10k, +15 per decade (25 at 100k, 40 at 1M), at most 50.
    Measured at 1M x 64-d clustered, search_k 32k: 30 trees recall@10 0.939, 40 trees 0.960;
    each 10 trees cost ~20 s of one-thread build time and ~90 MB of file."""
    return 10 if n <= 10_000 else int(min(50, round(10 + 15 * math.log10(n / 10_000))))


def search_k_for(per_k: int, n_items: int, n_trees: int, k: int) -> int:
    """Leaf entries Annoy inspects for ``k`` results: ``k * per_k`` (calibrated per generation;
    Annoy's default ``k * n_trees`` is badly under-recalled on clustered data, MEASUREMENTS.md),
    never fewer than 4,000 (or half the leaf entries of a small index; < 0.3 ms)."""
    return int(max(k * n_trees, k * per_k, min(n_items * n_trees // 2, 4000)))


def _exact_neighbours(x: np.ndarray, sample: np.ndarray, metric: str, k: int) -> list[set[int]]:
    """The ``k`` exact nearest rows of ``x`` to each sampled row, the row itself left out."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)
    truth = []
    for a in range(0, len(sample), _TRUTH_BATCH):
        rows = sample[a : a + _TRUTH_BATCH]
        q = x[rows]
        if metric == "angular":
            d = -(x @ q.T) / norms[:, None]
        elif metric == "euclidean":
            d = (norms**2)[:, None] - 2 * (x @ q.T)
        else:
            d = np.stack([np.abs(x - v).sum(axis=1) for v in q], axis=1)
        d[rows, np.arange(len(q))] = np.inf
        truth += [set(np.argpartition(d[:, j], k)[:k].tolist()) for j in range(len(q))]
    return truth


def calibrate(anns: list[AnnoyIndex], x: np.ndarray, metric: str, n_trees: int, *, seed: int,
              pool: ThreadPoolExecutor | None, k: int = 10) -> tuple[int, float]:  # fmt: skip
    """(per_k, recall): the smallest :data:`PER_K_LADDER` step whose recall@k on sampled items (as
    queries, themselves left out) reaches :data:`TARGET_RECALL` against exact search over ``x``;
    the last step if none does. Deterministic for given data and seed."""
    n = len(x)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, CALIBRATION_QUERIES), replace=False))
    if metric == "manhattan":
        sample = sample[:40]
    k = min(k, n - 1)
    if k < 1:
        return PER_K_LADDER[0], 1.0
    truth = _exact_neighbours(x, sample, metric, k)
    queries = x[sample].tolist()
    shard_items = anns[0].get_n_items()  # round-robin: the first shard is the largest
    recall = 0.0
    for per_k in PER_K_LADDER:
        sk = search_k_for(per_k, shard_items, n_trees, k)
        hits = sum(
            len(t & (set(search_shards(anns, q, k + 1, sk, pool)[0]) - {int(i)}))
            for q, t, i in zip(queries, truth, sample, strict=True)
        )
        recall = hits / (k * len(sample))
        if recall >= TARGET_RECALL:
            break
    if recall < TARGET_RECALL:
        log.warning("index: recall@%d %.3f < %.2f at the largest search_k", k, recall, TARGET_RECALL)
    return per_k, round(recall, 4)
