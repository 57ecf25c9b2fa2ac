"""Playing recommendations through a backend, with plays and skips flowing back into history.

:func:`play_playlist` renders a recipe and hands its tracks to a backend (chosen by name, or by the
``choose_backend`` hook). Backends report plays and skips through a ``record`` callback that
commits them like ``recengine history`` does. :func:`keep_playing` runs a backend's watch loop
(MPD): it records history and, when fewer than N tracks remain, tops the queue up with fresh
recommendations, like Lyrion's "Don't Stop The Music".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from recengine.models import HistoryEvent, Track

log = logging.getLogger(__name__)


def choose(engine, name: str | None = None):
    """The backend named ``name``, else the one the ``choose_backend`` hook picks."""
    backends = engine.backends
    if name:
        if name not in backends:
            raise LookupError(f"no playback backend named {name!r} (available: {', '.join(sorted(backends.names()))})")
        return backends[name]
    chosen = engine.pm.hook.choose_backend(config=engine.config, backends=backends.items)
    if chosen is None:
        raise LookupError(f"backend {engine.config.get('backend')!r} is not available "
                          f"(available: {', '.join(sorted(backends.names()))})")
    return chosen


def recorder(engine) -> Callable[[HistoryEvent], None]:
    """A ``record`` callback for backends (safe to call from their threads); never raises."""

    def record(event: HistoryEvent) -> None:
        try:
            engine.record_events([event])
        except Exception:
            log.exception("could not record %s of track %s", event.kind, event.track_id)

    return record


def play_playlist(engine, name: str, *, backend: str | None = None, mode: str = "replace") -> tuple[Any, list[Track]]:
    """Render recipe ``name`` and start playing it; returns the backend and the tracks sent."""
    recipe = engine.playlists.get(name)
    chosen = choose(engine, backend or recipe.backend)
    if hasattr(chosen, "resolve"):
        chosen.resolve = engine.catalog.track_by_path
    tracks = [r.track for r in engine.playlists.tracks_for(recipe)]
    if not tracks:
        raise LookupError(f"playlist {name!r} has no tracks yet (run `recengine scan`?)")
    chosen.play(tracks, mode, recorder(engine))
    return chosen, tracks


def keep_playing(engine, backend, stop: threading.Event, *, user: str = "default", topup_below: int | None = None,
                 recipe: str | None = None) -> None:
    """Watch ``backend`` until ``stop`` is set: record plays/skips, top the queue up when short."""
    if not hasattr(backend, "watch"):
        wait = getattr(backend, "wait", None)
        while wait is not None and not stop.is_set() and not wait(0.5):
            pass
        return

    def topup(n: int) -> list[Track]:
        try:
            if recipe:
                r = engine.playlists.get(recipe)
                recs = engine.playlists.tracks_for(r)
            else:
                recs = engine.recommend(user, max(n, 5))
            playing = backend.now_playing()
            return [x.track for x in recs if playing is None or x.track.track_id != playing.track_id][:max(n, 5)]
        except Exception:
            log.exception("could not find tracks to top up the queue")
            return []

    kwargs: dict[str, Any] = {"topup": topup}
    if topup_below is not None:
        kwargs["topup_below"] = topup_below
    backend.watch(recorder(engine), stop, resolve=engine.catalog.track_by_path, **kwargs)
