"""The ``taste`` strategy: a listener's profile in feature space.

Positive examples (plays with time decay, likes) pull: a candidate scores by its weighted
similarity to the nearest few positives (so a taste with two styles is served in both, not
averaged into neither). Negative examples (dislikes, early skips) push their neighbourhood down:
every negative within ``NEGATIVE_RADIUS`` (a cosine similarity for the angular metric) pushes in
proportion to how close it is, and the pushes add up, so a region where several tracks were
skipped drops further than one where a single track was. The push is taken off the pull on the
same scale, so tracks *like* a rejected track drop, not only the track itself.
"""

from __future__ import annotations

import numpy as np

from recengine.plugin.spec import hookimpl
from recengine.recommend.distance import distance

TOP_POSITIVES = 5  # pull: weighted mean similarity to the nearest few positives
POSITIVE_WEIGHT_FLOOR = 0.5  # a positive counts with floor + (1 - floor) * its weight / the largest
NEGATIVE_RADIUS = 0.3  # similarity (cosine for angular) beyond which a negative does not push
NEGATIVE_STRENGTH = 1.0  # a full push takes this much similarity off the pull


def similarities(vec: np.ndarray, mat: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of ``vec`` to each row of ``mat`` in [-1, 1] (cosine for angular)."""
    d = distance(vec, mat, metric)
    if metric == "angular":
        return 1.0 - d * d / 2.0
    return 2.0 / (1.0 + d) - 1.0


class TasteScorer:
    name = "taste"

    def score(self, candidates, profile, context):
        vectors = context.vectors
        metric = context.metric
        names = context.names
        pos = [(t, w, vectors[t]) for t, w in profile.positives.items() if t in vectors]
        neg = [(t, w, vectors[t]) for t, w in profile.negatives.items() if t in vectors]
        if not pos and not neg:
            return [(0.5, "") for _ in candidates]
        if pos:
            raw = np.array([w for _, w, _ in pos])
            pos_w = POSITIVE_WEIGHT_FLOOR + (1 - POSITIVE_WEIGHT_FLOOR) * raw / raw.max()
            pos_m = np.stack([v for _, _, v in pos])
        if neg:
            neg_w = np.array([min(1.0, w) for _, w, _ in neg])
            neg_m = np.stack([v for _, _, v in neg])
            skipped = any(t not in profile.disliked for t, _, _ in neg)
            pushed_by = "what you skipped" if skipped else "what you disliked"
            if skipped and any(t in profile.disliked for t, _, _ in neg):
                pushed_by = "what you skipped or disliked"
        out = []
        for track in candidates:
            vec = vectors.get(track.track_id)
            if vec is None:
                out.append((0.0, ""))
                continue
            pull, reason = 0.0, ""
            if pos:
                weighted = similarities(vec, pos_m, metric) * pos_w
                top = np.argsort(-weighted, kind="stable")[:TOP_POSITIVES]
                pull = float(weighted[top].mean())
                reason = f"close to {names.get(pos[int(top[0])][0], 'tracks you like')}"
            push = 0.0
            if neg:
                near = np.maximum(similarities(vec, neg_m, metric) - NEGATIVE_RADIUS, 0.0) / (
                    1.0 - NEGATIVE_RADIUS
                )
                pushes = near * neg_w
                push = min(1.0, float(pushes.sum()))
                if push > 0.3:
                    worst = neg[int(np.argmax(pushes))][0]
                    what = "something you disliked" if worst in profile.disliked else "something you skipped"
                    reason += f"; a little like {names.get(worst, what)}"
                else:
                    reason += f"; nothing like {pushed_by}"
            # pull and push are in [-1, 1] and [0, 1]: map their difference onto [0, 1]
            value = (pull - NEGATIVE_STRENGTH * push + 1.0) / (2.0 + NEGATIVE_STRENGTH)
            out.append((float(np.clip(value, 0.0, 1.0)), reason.strip("; ")))
        return out


@hookimpl
def register_scorers(register):
    register(TasteScorer())
