"""Similarity queries: tracks near one or several seeds, and paths from one track to another.

Candidates come from the index (generation + fresh delta); seeds and exact duplicates of a seed
(same content under another path, or the same audio at distance ~0) are left out, and
:class:`Filters` apply before ranking, asking the index for more candidates when they thin the
list out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from recengine.models import Recommendation, Track

#: Below this distance two tracks are the same audio (another encoding or copy).
DUPLICATE_DISTANCE = 1e-3


@dataclass
class Filters:
    """What a query may return."""

    exclude_tracks: set[int] = field(default_factory=set)
    exclude_artists: set[str] = field(default_factory=set)
    exclude_albums: set[str] = field(default_factory=set)
    exclude_genres: set[str] = field(default_factory=set)
    min_duration: float | None = None
    max_duration: float | None = None
    tags: dict[str, str] = field(default_factory=dict)  # field -> case-insensitive substring

    def allows(self, track: Track) -> bool:
        if track.track_id in self.exclude_tracks:
            return False
        if track.artist and track.artist.casefold() in {a.casefold() for a in self.exclude_artists}:
            return False
        if track.album and track.album.casefold() in {a.casefold() for a in self.exclude_albums}:
            return False
        if track.genre and any(g.casefold() in track.genre.casefold() for g in self.exclude_genres):
            return False
        if self.min_duration is not None and (track.duration or 0) < self.min_duration:
            return False
        if self.max_duration is not None and (track.duration or 0) > self.max_duration:
            return False
        for name, needle in self.tags.items():
            value = getattr(track, name, None)
            if value is None or str(needle).casefold() not in str(value).casefold():
                return False
        return True


def distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Distance(s) between ``a`` (d,) and ``b`` (d,) or (n, d), as Annoy computes them."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if metric == "angular":
        na = a / max(np.linalg.norm(a), 1e-12)
        nb = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
        return np.sqrt(np.maximum(2.0 - 2.0 * (nb @ na), 0.0))
    return np.linalg.norm(b - a, axis=-1)


def closeness(d: float, metric: str) -> float:
    """A distance as a score in [0, 1] (1 = identical)."""
    return float(max(0.0, 1.0 - d / 2.0)) if metric == "angular" else float(1.0 / (1.0 + d))


class Similarity:
    """Queries over an engine's :class:`~recengine.index.library.LibraryIndex`."""

    def __init__(self, engine, index):
        self.engine = engine
        self.index = index
        self.metric = index.metric

    def _seed_vectors(self, seeds: Iterable[int]) -> dict[int, np.ndarray]:
        out = {}
        for s in seeds:
            vec = self.index.vector(s)
            if vec is not None:
                out[s] = vec
        return out

    def _candidates(self, query: np.ndarray, want: int, exclude: set[int], filters: Filters,
                    seed_sigs: set[str]) -> dict[int, Track]:
        """Up to ``want`` allowed tracks near ``query``, widening the search while filters reject."""
        catalog = self.engine.catalog
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
        seed_tracks = self.engine.catalog.tracks_by_ids(vectors)
        seed_sigs = {t.content_sig for t in seed_tracks.values()}
        exclude = set(seeds) | filters.exclude_tracks
        pool: dict[int, Track] = {}
        per_seed = max(n, (2 * n) // len(vectors) + 5)
        for vec in vectors.values():
            pool.update(self._candidates(vec, per_seed, exclude, filters, seed_sigs))
        if len(vectors) > 1:  # the middle of the group finds tracks between the seeds too
            centre = np.mean([v / max(np.linalg.norm(v), 1e-12) for v in vectors.values()], axis=0)
            pool.update(self._candidates(centre, n, exclude, filters, seed_sigs))
        if not pool:
            return []
        ids = list(pool)
        cand = np.stack([self.index.vector(t) for t in ids])
        seed_mat = list(vectors.items())
        dists = np.stack([distance(v, cand, self.metric) for _, v in seed_mat])  # (seeds, cands)
        mean = dists.mean(axis=0)
        order = np.argsort(mean, kind="stable")[:n]
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
            raise KeyError(f"track {missing[0]} is not in the index")
        va, vb = vectors[a], vectors[b]
        if self.metric == "angular":
            va, vb = va / np.linalg.norm(va), vb / np.linalg.norm(vb)
        tracks = self.engine.catalog.tracks_by_ids([a, b])
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
            mat = np.stack([self.index.vector(c) for c in ids])
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
