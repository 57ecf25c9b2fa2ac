"""A listener's history split by time, and a catalog that only shows the history before a moment.

The split: everything before the cut-off is the history the recommender is given; the plays and
likes after it are the truth it is scored against. The default cut-off leaves the newest
``TRUTH_SHARE`` of the events (at least ``TRUTH_MIN_S`` of time) as the truth. Too little
history is :class:`TooLittleHistory`, whose message says how much is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recengine.catalog.evaluation import event_times, events_between
from recengine.models import HistoryEvent

if TYPE_CHECKING:
    from recengine.catalog import Catalog

DAY = 86400.0
TRUTH_SHARE = 0.2
TRUTH_MIN_S = DAY
#: At least this many plays or likes before the cut-off, and this many tracks played or liked after it.
MIN_HISTORY = 5
MIN_TRUTH = 2
_POSITIVE = ("play", "like")


class TooLittleHistory(Exception):
    """The history cannot be split into a history and a truth; the message says what is needed."""


@dataclass(frozen=True)
class Split:
    """A listener's history at ``cutoff``: what was known before it, and what happened after."""

    user: str
    cutoff: float
    before: list[HistoryEvent]
    after: list[HistoryEvent]

    @property
    def known(self) -> set[int]:
        """Tracks played, liked or skipped before the cut-off (disliked ones are never offered)."""
        return {e.track_id for e in self.before if e.kind in ("play", "like", "skip")}

    @property
    def truth(self) -> set[int]:
        """Tracks played or liked after the cut-off."""
        return {e.track_id for e in self.after if e.kind in _POSITIVE}

    @property
    def negatives(self) -> set[int]:
        """Tracks skipped or disliked after the cut-off and neither played nor liked then."""
        return {e.track_id for e in self.after if e.kind in ("skip", "dislike")} - self.truth


def default_cutoff(times: list[float]) -> float:
    """The newest ``TRUTH_SHARE`` of the events, but at least ``TRUTH_MIN_S`` before the newest."""
    at_share = times[min(len(times) - 1, int(len(times) * (1 - TRUTH_SHARE)))]
    return min(at_share, times[-1] - TRUTH_MIN_S)


def split_history(catalog: Catalog, user: str, *, cutoff: float | None = None) -> Split:
    """Split ``user``'s history at ``cutoff`` (default: :func:`default_cutoff`); raises
    :class:`TooLittleHistory` when either side is too small to measure anything."""
    times = event_times(catalog, user)
    need = (f"the replay needs at least {MIN_HISTORY} plays or likes before the cut-off and "
            f"{MIN_TRUTH} tracks played or liked after it")
    if not times:
        raise TooLittleHistory(f"{user!r} has no listening history yet: {need} (default cut-off: the newest "
                               f"{TRUTH_SHARE:.0%} of the events, at least a day)")
    if cutoff is None:
        cutoff = default_cutoff(times)
    before = events_between(catalog, user, 0.0, cutoff)
    after = events_between(catalog, user, cutoff, float("inf"))
    split = Split(user, cutoff, before, after)
    n_before = sum(e.kind in _POSITIVE for e in before)
    if n_before < MIN_HISTORY or len(split.truth) < MIN_TRUTH:
        span = (times[-1] - times[0]) / DAY
        raise TooLittleHistory(
            f"too little history for {user!r}: {need}; it has {n_before} before and {len(split.truth)} after "
            f"(of {len(times)} events over {span:.1f} days)")
    return split


class HistoryBefore:
    """A read-only catalog whose history ends just before ``before``: what a recommender would
    have seen then. Every other read is the catalog's own."""

    def __init__(self, catalog: Catalog, before: float):
        self.catalog = catalog
        self.before = before

    def events(self, user: str | None = None, since: float = 0.0) -> list[HistoryEvent]:
        return events_between(self.catalog, user, since, self.before)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.catalog, name)
