"""The ``discovery`` strategy: favours tracks the listener has never played."""

from __future__ import annotations

from recengine.plugin.spec import hookimpl


class DiscoveryScorer:
    name = "discovery"

    def score(self, candidates, profile, context):
        return [(0.0, "") if t.track_id in profile.play_counts else (1.0, "new to you") for t in candidates]


@hookimpl
def register_scorers(register):
    register(DiscoveryScorer())
