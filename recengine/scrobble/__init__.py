"""Listens from where people listen: a ListenBrainz-compatible submission API over the catalog."""

from recengine.scrobble.listenbrainz import ListenBrainzService, ScrobbleError, SubmitResult

__all__ = ["ListenBrainzService", "ScrobbleError", "SubmitResult"]
