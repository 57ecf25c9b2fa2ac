"""Read-only queries for the evaluation report (:mod:`recengine.evaluate`).

Functions over a catalog's public read method :meth:`query` (the caller's per-thread read
connection: they never wait for a writer, and never write): a listener's history up to a moment,
everyone's play counts up to a moment, and the size of the listener's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recengine.models import HistoryEvent

if TYPE_CHECKING:
    from recengine.catalog import Catalog

_EVENT_COLS = "u.name, e.track_id, e.kind, e.at, e.listened_s, e.source"


def events_between(catalog: Catalog, user: str | None, since: float, before: float) -> list[HistoryEvent]:
    """Events of ``user`` (None: everyone) with ``since <= at < before``, oldest first."""
    sql = (f"SELECT {_EVENT_COLS} FROM events e JOIN users u USING(user_id) WHERE e.at >= ? AND e.at < ?")
    params: list[object] = [since, before]
    if user is not None:
        sql += " AND u.name=?"
        params.append(user)
    return [HistoryEvent(*r) for r in catalog.query(sql + " ORDER BY e.at, e.event_id", params)]


def play_counts(catalog: Catalog, before: float) -> dict[int, int]:
    """How often each track was played by anyone before ``before``."""
    return {tid: n for tid, n in catalog.query(
        "SELECT track_id, count(*) FROM events WHERE kind='play' AND at < ? GROUP BY track_id", (before,))}


def event_times(catalog: Catalog, user: str) -> list[float]:
    """The times of every event of ``user``, oldest first (for choosing a cut-off)."""
    return [r[0] for r in catalog.query(
        "SELECT e.at FROM events e JOIN users u USING(user_id) WHERE u.name=? ORDER BY e.at", (user,))]
