"""Errors of the playback stage."""

from __future__ import annotations


class BackendUnavailable(RuntimeError):
    """The backend cannot play on this machine or cannot reach its player; one-line message."""
