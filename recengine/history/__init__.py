"""Listening history: recording events and folding them into a listener's profile."""

from recengine.history.profile import build_profile
from recengine.history.record import check_event, record_events

__all__ = ["build_profile", "check_event", "record_events"]
