"""Playing recommendations through a backend, with plays and skips flowing back into history.

:class:`Player` is built by the engine from what it needs: the backend registry and the
``choose_backend`` hook, a ``record_events`` callable (commits history like ``recengine history``
does), a path-to-track lookup, the recipes and their tracks, and recommendations for topping a
queue up. :meth:`Player.play_playlist` hands a recipe's tracks to a backend;
:meth:`Player.keep_playing` runs a backend's watch loop (MPD): it records history and, when fewer
than N tracks remain, tops the queue up with fresh recommendations, like Lyrion's "Don't Stop The
Music".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from recengine.models import HistoryEvent, Recommendation, Track
from recengine.playlists import Recipe, Recipes
from recengine.plugin.protocols import Record
from recengine.plugin.registry import Registry

log = logging.getLogger(__name__)

#: At least this many tracks are asked for when a queue is topped up.
TOPUP_MIN = 5


class Player:
    """Chooses a backend, plays recipes through it and follows what the listener does."""

    def __init__(self, backends: Registry, pick_backend: Callable[[], Any], *, configured: str | None,
                 record_events: Callable[[Iterable[HistoryEvent]], object],
                 track_by_path: Callable[[Path], Track | None], recipes: Recipes,
                 tracks_for: Callable[[Recipe], list[Recommendation]],
                 recommend: Callable[[str, int], list[Recommendation]]):
        """``pick_backend()`` asks the ``choose_backend`` hook; ``configured`` is the config's
        ``backend:`` (for messages); ``recommend(user, n)`` gives recommendations."""
        self.backends = backends
        self.pick_backend = pick_backend
        self.configured = configured
        self.record_events = record_events
        self.track_by_path = track_by_path
        self.recipes = recipes
        self.tracks_for = tracks_for
        self.recommend = recommend

    def choose(self, name: str | None = None) -> Any:
        """The backend named ``name``, else the one the ``choose_backend`` hook picks."""
        available = ", ".join(sorted(self.backends.names()))
        if name:
            if name not in self.backends:
                raise LookupError(f"no playback backend named {name!r} (available: {available})")
            return self.backends[name]
        chosen = self.pick_backend()
        if chosen is None:
            raise LookupError(f"backend {self.configured!r} is not available (available: {available})")
        return chosen

    def recorder(self) -> Record:
        """A ``record`` callback for backends (safe to call from their threads); never raises."""

        def record(event: HistoryEvent) -> None:
            try:
                self.record_events([event])
            except Exception:
                log.exception("could not record %s of track %s", event.kind, event.track_id)

        return record

    def play_playlist(self, name: str, *, backend: str | None = None, mode: str = "replace") -> tuple[Any, list[Track]]:
        """Make recipe ``name`` and start playing it; returns the backend and the tracks sent."""
        recipe = self.recipes.get(name)
        chosen = self.choose(backend or recipe.backend)
        if hasattr(chosen, "resolve"):
            chosen.resolve = self.track_by_path
        tracks = [r.track for r in self.tracks_for(recipe)]
        if not tracks:
            raise LookupError(f"playlist {name!r} has no tracks yet (run `recengine scan`?)")
        chosen.play(tracks, mode, self.recorder())
        return chosen, tracks

    def keep_playing(self, backend: Any, stop: threading.Event, *, user: str = "default",
                     topup_below: int | None = None, recipe: str | None = None) -> None:
        """Watch ``backend`` until ``stop`` is set: record plays/skips, top the queue up when short
        (from recipe ``recipe``, else ``user``'s recommendations)."""
        if not hasattr(backend, "watch"):
            wait = getattr(backend, "wait", None)
            while wait is not None and not stop.is_set() and not wait(0.5):
                pass
            return

        def topup(n: int) -> list[Track]:
            want = max(n, TOPUP_MIN)
            try:
                recs = self.tracks_for(self.recipes.get(recipe)) if recipe else self.recommend(user, want)
                playing = backend.now_playing()
                return [x.track for x in recs if playing is None or x.track.track_id != playing.track_id][:want]
            except Exception:
                log.exception("could not find tracks to top up the queue")
                return []

        kwargs: dict[str, Any] = {"topup": topup}
        if topup_below is not None:
            kwargs["topup_below"] = topup_below
        backend.watch(self.recorder(), stop, resolve=self.track_by_path, **kwargs)

