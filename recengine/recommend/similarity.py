"""Similarity queries: tracks near one or several seeds, and paths from one track to another.

Candidates come from the index (generation + fresh delta); seeds and exact duplicates of a seed
(same content under another path, or the same audio at distance ~0) are left out, and
:class:`Filters` apply before ranking, asking the index for more candidates when they thin the
list out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from recengine.models import NotInIndex, Recommendation, Track
from recengine.recommend.distance import DUPLICATE_DISTANCE, closeness, distance
from recengine.recommend.filters import Filters
from recengine.recommend.local_scaling import LocalScaling

log = logging.getLogger(__name__)

#: Tracks per step of :meth:`Similarity.warm` (one vectors call each).
WARM_CHUNK = 256
#: How often (s) a warming thread looks whether the index was rebuilt (its sigmas are then new).
WARM_RECHECK_S = 30.0

if TYPE_CHECKING:
    from recengine.catalog import Catalog
    from recengine.index import IndexBackend


class Similarity:
    """Queries over an index (generation + delta) and the catalog's track records."""

    def __init__(self, catalog: Catalog, index: IndexBackend, *, local_scaling_k: int = 0, candidates: int = 0):
        self.catalog = catalog
        self.index = index
        self.metric = index.metric
        self.local_scaling = LocalScaling(index, local_scaling_k) if local_scaling_k > 0 else None
        self.candidates = candidates  # at least this many are ranked per query (re-ranking needs a pool)

    def warm(self, stop: threading.Event) -> None:
        """Keep the local scaling of every indexed track worked out until ``stop`` is set: now, and
        again after each rebuild of the index. For a long-running server (the web server starts it on
        a thread): a query then never waits for the neighbourhoods of the candidates it meets. Does
        nothing without local scaling; never raises (a failure is logged and tried again later)."""
        if self.local_scaling is None:
            return
        warmed_for: float | None = None
        while not stop.is_set():
            built = self.index.built_at
            if built and built != warmed_for:
                try:
                    ids = sorted(self.catalog.present_ids())
                    for start in range(0, len(ids), WARM_CHUNK):
                        if stop.is_set() or self.index.built_at != built:
                            break
                        found = self.index.vectors(ids[start:start + WARM_CHUNK])
                        if found:
                            self.local_scaling.sigmas(list(found), np.stack(list(found.values())))
                    else:
                        warmed_for = built
                        log.debug("local scaling worked out for %d tracks", len(ids))
                except Exception as exc:  # noqa: BLE001 - the queries still work, only slower
                    log.warning("could not work out the local scaling ahead of queries: %s", exc)
            stop.wait(WARM_RECHECK_S)

    def _seed_vectors(self, seeds: Iterable[int]) -> dict[int, np.ndarray]:
        return self.index.vectors(list(dict.fromkeys(seeds)))

    def _candidates(self, query: np.ndarray, want: int, exclude: set[int], filters: Filters,
                    seed_sigs: set[str]) -> dict[int, Track]:
        """Up to ``want`` allowed tracks near ``query``, widening the search while filters reject."""
        catalog = self.catalog
        ask = want * 3 + 10
        kept: dict[int, Track] = {}
        while True:
            found = self.index.query(query, ask, exclude=exclude)
            tracks = catalog.tracks_by_ids(t for t, _ in found)
            sigs = set(seed_sigs)
            kept = {}
            for tid, d in found:
                track = tracks.get(tid)
                if track is None or not filters.allows(track) or track.content_sig in sigs:
                    continue
                if d < DUPLICATE_DISTANCE and seed_sigs:
                    continue
                sigs.add(track.content_sig)  # one copy of each audio file
                kept[tid] = track
            if len(kept) >= want or len(found) < ask or ask > 20000:
                return kept
            ask *= 4

    def similar(self, seeds: list[int], n: int = 10, filters: Filters | None = None) -> list[Recommendation]:
        """Tracks near the group of ``seeds`` (mean distance to all seeds), best first."""
        filters = filters or Filters()
        vectors = self._seed_vectors(seeds)
        if not vectors:
            return []
        seed_tracks = self.catalog.tracks_by_ids(vectors)
        seed_sigs = {t.content_sig for t in seed_tracks.values()}
        exclude = set(seeds) | filters.exclude_tracks
        pool: dict[int, Track] = {}
        per_seed = max(n, (2 * n) // len(vectors) + 5, self.candidates // len(vectors))
        for vec in vectors.values():
            pool.update(self._candidates(vec, per_seed, exclude, filters, seed_sigs))
        if len(vectors) > 1:  # the middle of the group finds tracks between the seeds too
            centre = np.mean([v / max(np.linalg.norm(v), 1e-12) for v in vectors.values()], axis=0)
            pool.update(self._candidates(centre, n, exclude, filters, seed_sigs))
        if not pool:
            return []
        ids = list(pool)
        found = self.index.vectors(ids)
        cand = np.stack([found[t] for t in ids])
        seed_mat = list(vectors.items())
        dists = np.stack([distance(v, cand, self.metric) for _, v in seed_mat])  # (seeds, cands)
        mean = dists.mean(axis=0)
        rank = mean if self.local_scaling is None else self.local_scaling.rerank(mean, ids, cand)
        order = np.argsort(rank, kind="stable")[:n]
        names = {s: seed_tracks[s].display for s in vectors if s in seed_tracks}
        out = []
        for i in order:
            nearest = seed_mat[int(np.argmin(dists[:, i]))][0]
            why = f"close to {names.get(nearest, 'the seed')}" if len(vectors) > 1 else "sounds alike"
            out.append(Recommendation(pool[ids[i]], score=closeness(float(mean[i]), self.metric), why=why,
                                      distance=float(mean[i])))
        return out

    def path(self, a: int, b: int, n: int = 12, filters: Filters | None = None) -> list[Recommendation]:
        """``n`` tracks walking from ``a`` to ``b`` through the tracks between them, no repeats."""
        filters = filters or Filters()
        vectors = self._seed_vectors([a, b])
        if len(vectors) < 2:
            missing = [t for t in (a, b) if t not in vectors]
            raise NotInIndex(f"track {missing[0]} is not in the index (not analysed yet, or it failed: see `recengine failures`)")
        va, vb = vectors[a], vectors[b]
        if self.metric == "angular":
            va, vb = va / np.linalg.norm(va), vb / np.linalg.norm(vb)
        tracks = self.catalog.tracks_by_ids([a, b])
        used = {a, b} | filters.exclude_tracks
        sigs = {t.content_sig for t in tracks.values()}
        steps: list[Recommendation] = [Recommendation(tracks[a], 1.0, why="start", distance=0.0)]
        prev = va
        for i in range(1, max(n - 1, 1)):
            t = i / (n - 1)
            target = (1 - t) * va + t * vb
            cands = self._candidates(target, 8, used, filters, sigs)
            if not cands:
                break
            ids = list(cands)
            found = self.index.vectors(ids)
            mat = np.stack([found[c] for c in ids])
            cost = distance(target, mat, self.metric) + 0.5 * distance(prev, mat, self.metric)
            best = int(np.argmin(cost))
            tid = ids[best]
            used.add(tid)
            sigs.add(cands[tid].content_sig)
            prev = mat[best]
            d = float(distance(target, mat[best:best + 1], self.metric)[0])
            steps.append(Recommendation(cands[tid], closeness(d, self.metric),
                                        why=f"step {i} of {n - 1} toward {tracks[b].display}", distance=d))
        steps.append(Recommendation(tracks[b], 1.0, why="destination", distance=0.0))
        return steps[:n] if n >= 2 else steps[:1]
