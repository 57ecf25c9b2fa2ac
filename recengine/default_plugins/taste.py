"""The ``taste`` strategy: a listener's profile in feature space.

Positive examples (plays with time decay, likes) pull: a candidate scores by its similarity to
the nearest few positives (so a taste with two styles is served in both, not averaged into
neither). Negative examples (dislikes, early skips) push their whole neighbourhood down: the
penalty is the similarity to the nearest negative, weighted, so tracks *like* a rejected track
drop, not only the track itself.
"""

from __future__ import annotations

import numpy as np

from recengine.hookspecs import hookimpl
from recengine.similarity import closeness, distance

TOP_POSITIVES = 3
NEGATIVE_STRENGTH = 1.5


class TasteScorer:
    name = "taste"

    def score(self, candidates, profile, context):
        vectors = context["vectors"]
        metric = context["metric"]
        names = context.get("names", {})
        pos = [(t, w, vectors.get(t)) for t, w in profile.positives.items()]
        pos = [(t, w, v) for t, w, v in pos if v is not None]
        neg = [(t, w, vectors.get(t)) for t, w in profile.negatives.items()]
        neg = [(t, w, v) for t, w, v in neg if v is not None]
        if not pos and not neg:
            return [(0.5, "") for _ in candidates]
        pos_ids = [t for t, _, _ in pos]
        pos_w = np.array([w for _, w, _ in pos]) if pos else np.zeros(0)
        pos_w = pos_w / pos_w.max() if pos_w.size else pos_w
        pos_m = np.stack([v for _, _, v in pos]) if pos else None
        neg_w = np.array([min(1.0, w) for _, w, _ in neg]) if neg else np.zeros(0)
        neg_ids = [t for t, _, _ in neg]
        neg_m = np.stack([v for _, _, v in neg]) if neg else None
        out = []
        for track in candidates:
            vec = vectors.get(track.track_id)
            if vec is None:
                out.append((0.0, ""))
                continue
            pull, reason = 0.0, ""
            if pos_m is not None:
                sims = np.array([closeness(d, metric) for d in distance(vec, pos_m, metric)])
                weighted = sims * (0.5 + 0.5 * pos_w)
                top = np.argsort(weighted)[::-1][:TOP_POSITIVES]
                pull = float(weighted[top].mean())
                reason = f"close to {names.get(pos_ids[top[0]], 'tracks you like')}"
            push = 0.0
            if neg_m is not None:
                sims = np.array([closeness(d, metric) for d in distance(vec, neg_m, metric)])
                k = int(np.argmax(sims * neg_w))
                # only the close neighbourhood of a rejected track is pushed away
                push = float(max(0.0, sims[k] - 0.5) * 2 * neg_w[k])
                if push > 0.3:
                    reason += f"; a little like {names.get(neg_ids[k], 'something you skipped')}"
                elif neg:
                    reason += "; nothing like what you skipped"
            out.append((float(np.clip(pull - NEGATIVE_STRENGTH * push * pull, 0.0, 1.0)), reason.strip("; ")))
        return out


@hookimpl
def register_scorers(register):
    register(TasteScorer())
