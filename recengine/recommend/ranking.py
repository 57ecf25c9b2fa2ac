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
from typing import TYPE_CHECKING, Any

import numpy as np

from recengine.history import build_profile
from recengine.models import Profile, Recommendation, Track
from recengine.plugin.protocols import ScoringContext
from recengine.recommend.filters import Filters

if TYPE_CHECKING:
    from recengine.catalog import Catalog
    from recengine.config import Config
    from recengine.index import IndexBackend
    from recengine.plugin.registry import Registry

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


class Recommender:
    """Ranks candidates from the catalog and index with the registered scorers."""

    def __init__(self, catalog: Catalog, index: IndexBackend, scorers: Registry, config: Config):
        self.catalog = catalog
        self.index = index
        self.scorers = scorers
        self.config = config

    def profile(self, user: str, now: float | None = None) -> Profile:
        return build_profile(self.catalog.events(user), user, now=now)

    def _candidates(self, profile: Profile, req: Request) -> list[int]:
        index = self.index
        present = self.catalog.present_ids()
        blocked = profile.disliked | set(req.seeds) | req.filters.exclude_tracks
        if not req.include_known:
            blocked |= set(profile.positives)
        if len(present) <= SCORE_ALL_UP_TO:  # a small library: score every track, nothing left to chance
            return sorted(t for t in present if t not in blocked)
        pool: set[int] = set()
        anchors = list(req.seeds)
        anchors += [t for t, _ in sorted(profile.positives.items(), key=lambda kv: -kv[1])[:30]]
        per_anchor = max(20, 3 * req.n // max(1, len(anchors)) + 10)
        for vec in index.vectors(anchors).values():
            pool.update(t for t, _ in index.query(vec, per_anchor))
        rest = sorted(present - pool)
        # the same listener gets the same sample for an hour (a stable seed, unlike hash() of a str)
        rng = random.Random(zlib.crc32(f"{req.user}:{int((req.now or time.time()) // 3600)}".encode()))
        pool.update(rng.sample(rest, min(len(rest), max(50, 2 * req.n))))
        return [t for t in pool if t in present and t not in blocked]

    def recommend(self, req: Request) -> list[Recommendation]:
        """Rank tracks for ``req``; every result carries a short reason (``Recommendation.why``)."""
        now = req.now or time.time()
        profile = self.profile(req.user, now=now)
        scorers = self.scorers
        unknown = [s for s in req.strategies if s not in scorers]
        if unknown:
            raise LookupError(
                f"unknown strategy {unknown[0]!r} (available: {', '.join(sorted(scorers.names()))})"
            )
        ids = self._candidates(profile, req)
        tracks: dict[int, Track] = self.catalog.tracks_by_ids(ids)
        cands = [tracks[t] for t in ids if t in tracks and req.filters.allows(tracks[t])]
        cands = self._same_audio_as_known(cands, profile, req)
        if not cands:
            return []
        known = set(profile.positives) | set(profile.negatives) | set(req.seeds)
        vectors = self.index.vectors(set(tracks) | known)
        names = {t.track_id: t.display for t in self.catalog.tracks_by_ids(known).values()}
        context = ScoringContext(
            config=self.config, now=now, n=req.n, metric=self.index.metric, vectors=vectors,
            seed_vectors={s: vectors[s] for s in req.seeds if s in vectors}, names=names, user=req.user,
            diversity=req.diversity)
        ranked = self._rank(cands, profile, context, req.strategies)
        for name, weight in req.strategies.items():
            rerank = getattr(scorers[name], "rerank", None)
            if rerank is not None and weight > 0:
                ranked = rerank(ranked, profile, context)
        return ranked[: req.n]

    def _same_audio_as_known(self, cands: list[Track], profile: Profile, req: Request) -> list[Track]:
        """Same audio is the same track: a copy of a disliked, already known or seed track is left
        out like the track itself, and a copy of a recently played one counts as recently played."""
        blocked = profile.disliked | set(req.seeds) | (set() if req.include_known else set(profile.positives))
        known = self.catalog.tracks_by_ids(blocked | set(profile.recent))
        blocked_sigs = {t.content_sig for tid, t in known.items() if tid in blocked}
        recent_sigs: dict[str, float] = {}
        for tid, at in profile.recent.items():
            if tid in known:
                sig = known[tid].content_sig
                recent_sigs[sig] = max(recent_sigs.get(sig, 0.0), at)
        kept = []
        for track in cands:
            if track.content_sig in blocked_sigs:
                continue
            if track.content_sig in recent_sigs:
                profile.recent[track.track_id] = max(profile.recent.get(track.track_id, 0.0),
                                                     recent_sigs[track.content_sig])
            kept.append(track)
        return kept

    def _rank(self, cands: list[Track], profile: Profile, context: ScoringContext,
              strategies: dict[str, float]) -> list[Recommendation]:
        """The weighted mean of each strategy's scores (each spread over [0, 1]), best first."""
        total = np.zeros(len(cands))
        weight_sum = 0.0
        reasons: list[list[tuple[float, str]]] = [[] for _ in cands]
        for name, weight in strategies.items():
            if weight <= 0:
                continue
            try:
                scored = self.scorers[name].score(cands, profile, context)
            except Exception:
                log.exception("strategy %s failed; ranking without it", name)
                continue
            if len(scored) != len(cands):
                log.error("strategy %s returned %d scores for %d candidates; ignored", name, len(scored), len(cands))
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
        return ranked
