"""A listener's history folded into a :class:`~recengine.models.Profile`.

Plays fade with a half-life, likes pull strongly, dislikes and early skips push away (the scorers
use their neighbourhoods, not only the tracks themselves); the latest like/dislike/unlike wins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from recengine.models import HistoryEvent, Profile

HALF_LIFE_DAYS = 60.0
LIKE_WEIGHT = 3.0
PLAY_WEIGHT = 1.0
SKIP_WEIGHT = 1.0
DISLIKE_WEIGHT = 3.0
EARLY_SKIP_S = 30.0


def build_profile(events: Iterable[HistoryEvent], user: str, *, now: float | None = None,
                  half_life_days: float = HALF_LIFE_DAYS) -> Profile:
    """Fold a user's events into positive/negative track weights with time decay."""
    now = time.time() if now is None else now
    decay = math.log(2) / (half_life_days * 86400.0)
    profile = Profile(user=user)
    opinion: dict[int, str] = {}
    for e in sorted((e for e in events if e.user == user), key=lambda e: e.at):
        w = math.exp(-decay * max(0.0, now - e.at))
        tid = e.track_id
        if e.kind == "play":
            listened = e.listened_s
            full = 1.0 if listened is None else min(1.0, max(0.2, listened / 120.0))
            profile.positives[tid] = profile.positives.get(tid, 0.0) + PLAY_WEIGHT * w * full
            profile.play_counts[tid] = profile.play_counts.get(tid, 0) + 1
            profile.recent[tid] = max(profile.recent.get(tid, 0.0), e.at)
        elif e.kind == "skip":
            early = e.listened_s is None or e.listened_s < EARLY_SKIP_S
            profile.negatives[tid] = profile.negatives.get(tid, 0.0) + SKIP_WEIGHT * w * (1.0 if early else 0.3)
            profile.recent[tid] = max(profile.recent.get(tid, 0.0), e.at)
        elif e.kind in ("like", "dislike", "unlike"):
            opinion[tid] = e.kind
    for tid, kind in opinion.items():
        if kind == "like":
            profile.positives[tid] = profile.positives.get(tid, 0.0) + LIKE_WEIGHT
        elif kind == "dislike":
            profile.disliked.add(tid)
            profile.negatives[tid] = profile.negatives.get(tid, 0.0) + DISLIKE_WEIGHT
            profile.positives.pop(tid, None)
    # a track skipped more than played is not a positive example
    for tid in list(profile.positives):
        if profile.negatives.get(tid, 0.0) >= profile.positives[tid] and opinion.get(tid) != "like":
            profile.positives.pop(tid)
    return profile
