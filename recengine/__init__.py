"""recengine: a music recommendation engine that runs beside a home media server.

The public API for plugin authors and scripts: ``hookimpl`` for plugins, the record dataclasses,
and :class:`Engine` (``Engine.open()``) for queries from Python.
"""

from recengine.models import (
    DecodedAudio,
    HistoryEvent,
    Playlist,
    PlaylistEntry,
    Profile,
    Recommendation,
    Tags,
    Track,
)
from recengine.plugin.spec import hookimpl

__version__ = "0.1.0"

__all__ = [
    "DecodedAudio",
    "Engine",
    "HistoryEvent",
    "Playlist",
    "PlaylistEntry",
    "Profile",
    "Recommendation",
    "Tags",
    "Track",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str):
    if name == "Engine":  # imported lazily: plugins import recengine for hookimpl only
        from recengine.engine import Engine

        return Engine
    raise AttributeError(name)
