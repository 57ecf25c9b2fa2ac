"""Recommendations: candidates -> weighted scoring strategies -> ranked, explained tracks.

Candidates are every track of a small library; in a large one, the index neighbours of the seeds
and of the listener's positive examples, plus a sample of the rest of the library (so discovery
has something to find). Disliked tracks and tracks filtered out never enter. Each strategy named
by the recipe scores every candidate in [0, 1] with a reason; the weighted mean ranks them, and a
strategy with a ``rerank`` method (the built-in ``diversity``) reorders the top of the list last.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recengine.models import Profile, Recommendation, Track
from recengine.recommend.history import profile_for
from recengine.recommend.similarity import Filters

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = {"taste": 1.0, "diversity": 0.5, "discovery": 0.1}
#: Libraries up to this size are scored whole; larger ones through index neighbours and a sample.
SCORE_ALL_UP_TO = 1000


@dataclass
class Request:
    """What to recommend: for whom, how many, from which seeds, with which strategies."""

    user: str = "default"
    n: int = 20
    seeds: list[int] = field(default_factory=list)
    strategies: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STRATEGIES))
    filters: Filters = field(default_factory=Filters)
    diversity: dict[str, Any] = field(default_factory=dict)
    now: float | None = None
    include_known: bool = False  # also offer tracks the listener already liked or played


def _candidates(engine, profile: Profile, req: Request) -> list[int]:
    index = engine.index
    present = engine.catalog.present_ids()
    blocked = profile.disliked | set(req.seeds) | req.filters.exclude_tracks
    if not req.include_known:
        blocked |= set(profile.positives)
    if len(present) <= SCORE_ALL_UP_TO:  # a small library: score every track, nothing left to chance
        return sorted(t for t in present if t not in blocked)
    pool: set[int] = set()
    anchors = list(req.seeds)
    anchors += [t for t, _ in sorted(profile.positives.items(), key=lambda kv: -kv[1])[:30]]
    per_anchor = max(20, 3 * req.n // max(1, len(anchors)) + 10)
    for tid in anchors:
        vec = index.vector(tid)
        if vec is not None:
            pool.update(t for t, _ in index.query(vec, per_anchor))
    rest = sorted(present - pool)
    # the same listener gets the same sample for an hour (a stable seed, unlike hash() of a str)
    rng = random.Random(zlib.crc32(f"{req.user}:{int((req.now or time.time()) // 3600)}".encode()))
    pool.update(rng.sample(rest, min(len(rest), max(50, 2 * req.n))))
    return [t for t in pool if t in present and t not in blocked]


def recommend(engine, req: Request) -> list[Recommendation]:
    """Rank tracks for ``req``; every result carries a short reason (``Recommendation.why``)."""
    now = req.now or time.time()
    profile = profile_for(engine, req.user, now=now)
    scorers = engine.scorers
    unknown = [s for s in req.strategies if s not in scorers]
    if unknown:
        raise LookupError(
            f"unknown strategy {unknown[0]!r} (available: {', '.join(sorted(scorers.names()))})"
        )
    ids = _candidates(engine, profile, req)
    tracks: dict[int, Track] = engine.catalog.tracks_by_ids(ids)
    cands = [tracks[t] for t in ids if t in tracks and req.filters.allows(tracks[t])]
    if not cands:
        return []
    index = engine.index
    needed = set(tracks) | set(profile.positives) | set(profile.negatives) | set(req.seeds)
    vectors = {t: v for t in needed if (v := index.vector(t)) is not None}
    names = {
        t.track_id: t.display
        for t in engine.catalog.tracks_by_ids(
            set(profile.positives) | set(profile.negatives) | set(req.seeds)
        ).values()
    }
    context = {
        "config": engine.config,
        "now": now,
        "n": req.n,
        "vectors": vectors,
        "metric": index.metric,
        "seed_vectors": {s: vectors[s] for s in req.seeds if s in vectors},
        "names": names,
        "user": req.user,
        "diversity": req.diversity,
    }
    total = np.zeros(len(cands))
    weight_sum = 0.0
    reasons: list[list[tuple[float, str]]] = [[] for _ in cands]
    for name, weight in req.strategies.items():
        if weight <= 0:
            continue
        try:
            scored = scorers[name].score(cands, profile, context)
        except Exception:
            log.exception("strategy %s failed; ranking without it", name)
            continue
        if len(scored) != len(cands):
            log.error(
                "strategy %s returned %d scores for %d candidates; ignored", name, len(scored), len(cands)
            )
            continue
        values = np.nan_to_num(np.clip(np.array([s for s, _ in scored], float), 0, 1))
        spread = values.max() - values.min()
        if spread > 1e-9:  # each strategy spans [0, 1] over the candidates, so weights mean shares
            values = (values - values.min()) / spread
        total += weight * values
        weight_sum += weight
        for i, (value, why) in enumerate(scored):
            if why:
                reasons[i].append((weight * value, why))
    total /= max(weight_sum, 1e-9)
    order = np.argsort(-total, kind="stable")
    ranked = []
    for i in order:
        why = "; ".join(w for _, w in sorted(reasons[i], key=lambda r: -r[0])[:2]) or "from your library"
        ranked.append(Recommendation(cands[i], float(total[i]), why=why))
    for name in req.strategies:
        rerank = getattr(scorers[name], "rerank", None) if name in scorers else None
        if rerank is not None and req.strategies[name] > 0:
            ranked = rerank(ranked, profile, context)
    return ranked[: req.n]
