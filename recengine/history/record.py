"""Recording plays, skips, likes and dislikes.

Every event is committed durably (``synchronous=FULL``) before :func:`record_events` returns, then
the ``history_recorded`` hook fires for each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from recengine.models import EVENT_KINDS, HistoryEvent

if TYPE_CHECKING:
    from recengine.catalog import Catalog


def check_event(e: HistoryEvent) -> None:
    """Raise ``ValueError`` for an event that cannot be recorded."""
    if e.kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {e.kind!r} (expected one of {', '.join(EVENT_KINDS)})")
    if not e.user or not isinstance(e.user, str):
        raise ValueError("an event needs a user name")


def record_events(catalog: Catalog, emit: Callable[..., Any], events: Iterable[HistoryEvent]) -> list[HistoryEvent]:
    """Validate and commit ``events``; fire ``history_recorded`` for each. Returns them."""
    events = list(events)
    for e in events:
        check_event(e)
    if not events:
        return []
    catalog.add_events(events)
    for e in events:
        emit("history_recorded", event=e)
    return events
