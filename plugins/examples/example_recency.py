"""Example drop-in scoring strategy with its own config section.

Scores tracks higher the longer ago they were last played (never played: 1.0). Settings live in
config.yaml under `plugins.example_recency`; use it in a recipe as `strategies: {recency: 0.3}`.
"""

import math

import recengine


class Recency:
    name = "recency"

    def score(self, candidates, profile, context):
        now = context.now
        half_life_s = context.config["plugins.example_recency.half_life_days"] * 86400
        out = []
        for track in candidates:
            last = profile.recent.get(track.track_id)
            if last is None:
                out.append((1.0, "not played recently"))
            else:
                age = max(0.0, now - last)
                out.append((1.0 - math.exp(-age * math.log(2) / half_life_s), "last played a while ago"))
        return out


@recengine.hookimpl
def addoption(spec):
    spec.add("plugins.example_recency.half_life_days", "float", 30.0, "days until a play counts half as recent")


@recengine.hookimpl
def register_scorers(register):
    register(Recency())
