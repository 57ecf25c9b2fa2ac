"""The ``similar`` strategy: closeness to the seed tracks of a recipe (or of the context)."""

from __future__ import annotations

import numpy as np

from recengine.plugin.spec import hookimpl
from recengine.recommend.distance import closeness, distance


class SimilarScorer:
    name = "similar"

    def score(self, candidates, profile, context):
        seeds = context.seed_vectors
        if not seeds:
            return [(0.0, "") for _ in candidates]
        vectors = context.vectors
        metric = context.metric
        names = context.names
        seed_items = list(seeds.items())
        out = []
        for track in candidates:
            vec = vectors.get(track.track_id)
            if vec is None:
                out.append((0.0, ""))
                continue
            dists = np.array([float(distance(v, vec[None, :], metric)[0]) for _, v in seed_items])
            best = int(np.argmin(dists))
            out.append((closeness(float(dists.mean()), metric),
                        f"close to {names.get(seed_items[best][0], 'the seed')}"))
        return out


@hookimpl
def register_scorers(register):
    register(SimilarScorer())
