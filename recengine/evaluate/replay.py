"""Personal replay: would the strategies have found what the listener went on to play?

The history is split at a cut-off (:mod:`recengine.evaluate.history`). Each strategy the
recipes use is asked, through :class:`~recengine.recommend.ranking.Recommender` over a catalog
whose history ends at the cut-off, to rank the *whole* library (``n`` = its size; no sampled
negatives), once per strategy: its scores come back spread over [0, 1] as the recommender spreads
them, so a recipe's mix is their weighted mean, ranked as the recommender ranks it, and a
re-ranking strategy (``diversity``) then reorders the top as it does for a playlist.

Two rankings are scored per mix: **repeats** (only tracks heard before the cut-off; the truth is
those played or liked again after it) and **discoveries** (only tracks never heard; the truth is
the new ones played or liked after it). Per ranking: hit rate@K (the share of the truth in the top
K, out of ``min(K, truth)``, as ``bench/personal.py`` counts it), NDCG@K (binary relevance), and
how many tracks skipped or disliked after the cut-off the top K holds. Baselines: popularity (plays
by everyone before the cut-off) and random (its expected value, exactly).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recengine.catalog.evaluation import play_counts
from recengine.evaluate.history import HistoryBefore, Split
from recengine.models import Profile, Recommendation
from recengine.plugin.protocols import ScoringContext
from recengine.recommend.ranking import Recommender, Request

if TYPE_CHECKING:
    from recengine.catalog import Catalog
    from recengine.config import Config
    from recengine.index import IndexBackend
    from recengine.plugin.registry import Registry

K = 10
POPULAR, RANDOM = "popularity", "random"
#: name -> (the recipes using it, strategies and weights, diversity options)
Mixes = Mapping[str, tuple[tuple[str, ...], dict[str, float], dict[str, Any]]]


def hit_rate(ranked: Sequence[int], truth: set[int], k: int = K) -> float:
    """The share of ``truth`` in the top ``k``, out of ``min(k, len(truth))``."""
    return len(set(ranked[:k]) & truth) / max(1, min(k, len(truth)))


def ndcg(ranked: Sequence[int], truth: set[int], k: int = K) -> float:
    """NDCG@k with binary relevance (1 for a track of ``truth``)."""
    dcg = sum(1.0 / math.log2(i + 2) for i, t in enumerate(ranked[:k]) if t in truth)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(truth))))
    return dcg / ideal if ideal else 0.0


@dataclass(frozen=True)
class Score:
    """One ranking scored against one truth."""

    truth: int  # tracks in the truth
    candidates: int  # tracks ranked
    hit_rate: float
    ndcg: float
    negatives: float  # tracks skipped or disliked after the cut-off in the top K


def score_ranking(ranked: Sequence[int], truth: set[int], negatives: set[int], candidates: int,
                  k: int = K) -> Score:
    """``ranked`` (best first, perhaps cut by a re-ranking) out of ``candidates`` tracks."""
    return Score(len(truth), candidates, hit_rate(ranked, truth, k), ndcg(ranked, truth, k),
                 float(len(set(ranked[:k]) & negatives)))


def expected_random(candidates: int, truth: int, negatives: int, k: int = K) -> Score:
    """What a random ranking of ``candidates`` tracks scores on average (each top-K slot holds a
    truth track with probability truth / candidates)."""
    if not candidates:
        return Score(truth, 0, 0.0, 0.0, 0.0)
    p, slots = truth / candidates, min(k, candidates)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, truth)))
    gain = sum(p / math.log2(i + 2) for i in range(slots))
    return Score(truth, candidates, slots * p / max(1, min(k, truth)), gain / ideal if ideal else 0.0,
                 slots * negatives / candidates)


@dataclass(frozen=True)
class MixResult:
    """A strategy mix (a recipe's, or a baseline with no strategies) on both rankings."""

    name: str
    recipes: tuple[str, ...]
    strategies: dict[str, float]
    repeats: Score
    discoveries: Score


class Replay:
    """Replays a listener's split history through the recommender's strategies."""

    def __init__(self, catalog: Catalog, index: IndexBackend, scorers: Registry, config: Config, *,
                 progress: Callable[[float], None] = lambda done: None):
        self.catalog = catalog
        self.index = index
        self.scorers = scorers
        self.config = config
        self.progress = progress

    def run(self, split: Split, mixes: Mixes, k: int = K) -> list[MixResult]:
        """``mixes``: name -> (recipe names, strategies, diversity options). Baselines come last."""
        view = HistoryBefore(self.catalog, split.cutoff)
        recommender = Recommender(view, self.index, self.scorers, self.config)
        library = sorted(self.catalog.present_ids())
        scored = [s for _, strategies, _ in mixes.values() for s, w in strategies.items()
                  if w > 0 and not hasattr(self.scorers[s], "rerank")]
        wanted = list(dict.fromkeys(scored))
        per_strategy: dict[str, dict[int, Recommendation]] = {}
        for i, name in enumerate(wanted):
            recs = recommender.recommend(Request(user=split.user, n=len(library), strategies={name: 1.0},
                                                 now=split.cutoff, include_known=True))
            per_strategy[name] = {r.track.track_id: r for r in recs}
            self.progress((i + 1) / (len(wanted) + 1))
        profile = recommender.profile(split.user, split.cutoff)
        ranked_ids = sorted(set().union(*per_strategy.values())) if per_strategy else \
            [t for t in library if t not in profile.disliked]
        vectors = self.index.vectors(ranked_ids)
        known, truth, negatives = split.known, split.truth, split.negatives
        groups = {"repeats": (lambda t: t in known, truth & known),
                  "discoveries": (lambda t: t not in known, truth - known)}
        results = []
        for name, (recipes, strategies, diversity) in mixes.items():
            order = self._combine(per_strategy, strategies, ranked_ids)
            scores = {}
            for group, (member, group_truth) in groups.items():
                ranking = [r for r in order if member(r.track.track_id)]
                served = self._rerank(ranking, strategies, profile, split, diversity, vectors, k)
                scores[group] = score_ranking([r.track.track_id for r in served], group_truth, negatives,
                                              len(ranking), k)
            results.append(MixResult(name, recipes, dict(strategies), scores["repeats"], scores["discoveries"]))
        results += self._baselines(split, ranked_ids, groups, negatives, k)
        self.progress(1.0)
        return results

    def _combine(self, per_strategy: dict[str, dict[int, Recommendation]], strategies: dict[str, float],
                 ids: list[int]) -> list[Recommendation]:
        """The weighted mean of the strategies' spread scores, best first (ties: track id)."""
        used = [(s, w) for s, w in strategies.items() if w > 0 and s in per_strategy]
        total = np.zeros(len(ids))
        for s, w in used:
            total += w * np.array([per_strategy[s][t].score if t in per_strategy[s] else 0.0 for t in ids])
        total /= max(sum(w for _, w in used), 1e-9)
        order = np.lexsort((np.asarray(ids), -total))
        tracks = {t: r.track for recs in per_strategy.values() for t, r in recs.items()}
        if not tracks:
            tracks = self.catalog.tracks_by_ids(ids)
        return [Recommendation(tracks[ids[i]], float(total[i])) for i in order if ids[i] in tracks]

    def _rerank(self, ranked: list[Recommendation], strategies: dict[str, float], profile: Profile, split: Split,
                diversity: dict[str, Any], vectors: Mapping[int, np.ndarray], k: int) -> list[Recommendation]:
        """The mix's re-ranking strategies applied as the recommender applies them for ``k`` tracks."""
        for name, weight in strategies.items():
            rerank = getattr(self.scorers[name], "rerank", None)
            if rerank is not None and weight > 0:
                context = ScoringContext(config=self.config, now=split.cutoff, n=k, metric=self.index.metric,
                                         vectors=vectors, user=split.user, diversity=diversity)
                ranked = rerank(ranked, profile, context)
        return ranked

    def _baselines(self, split: Split, ids: list[int], groups, negatives: set[int], k: int) -> list[MixResult]:
        plays = play_counts(self.catalog, split.cutoff)
        popular = sorted(ids, key=lambda t: (-plays.get(t, 0), t))
        out = {POPULAR: {}, RANDOM: {}}
        for group, (member, group_truth) in groups.items():
            members = [t for t in popular if member(t)]
            out[POPULAR][group] = score_ranking(members, group_truth, negatives, len(members), k)
            out[RANDOM][group] = expected_random(len(members), len(group_truth & set(members)),
                                                 len(negatives & set(members)), k)
        return [MixResult(name, (), {}, s["repeats"], s["discoveries"]) for name, s in out.items()]
