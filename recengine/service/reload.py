"""Re-reading the config while the daemon runs: ``SIGHUP``, which ``systemctl reload`` sends.

The signal handler only sets a flag (:meth:`ConfigReloader.request`); the daemon's loop calls
:meth:`ConfigReloader.poll` between two pieces of work, so nothing in flight is interrupted. The
file the engine was opened from is read again and validated as at start-up, against the options of
the plugins already loaded (no plugin is imported again), recipes and outputs included. A file
that fails is logged and the running config kept. One that passes replaces the engine's config
in place (:func:`reconfigure`): the playlist recipes, outputs and index weights come from it from
then on (other settings, such as the library folders and ``daemon.*``, need a restart), the catalog
stays open, and the service manager hears ``RELOADING=1`` then ``READY=1``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from recengine.config import Config, ConfigError
from recengine.playlists import Recipes
from recengine.plugin.boot import validate_settings
from recengine.service.systemd import notify_ready, notify_reloading

log = logging.getLogger(__name__)


def read_config(engine: Any) -> Config:
    """The engine's config file read and validated again, recipes and outputs included; raises
    :class:`ConfigError` (a mistake, with file and key) or ``OSError`` (the file is unreadable)."""
    if engine.config.source == "<defaults>":
        raise ConfigError("<defaults>", "", "the daemon runs on the built-in defaults: no file to re-read")
    path = Path(engine.config.source)
    config = validate_settings(path, engine.plugins)
    Recipes.from_config(config, playlist_writers=set(engine.writers.names()),
                        strategies=set(engine.scorers.names()))
    return config


#: The engine's parts built from what a reload changes: the recipes and outputs, and the index
#: weights (the index, and what queries it). Everything else keeps running as it was started.
RELOADED_PARTS = ("recipes", "playlists", "index", "similarity", "recommender", "player")


def reconfigure(engine: Any, config: Config) -> None:
    """Make ``config`` the engine's: the parts in :data:`RELOADED_PARTS` (cached properties) are
    dropped and built again from it on first use; the catalog stays open, the old index is closed.
    The index loads the generation made with the new weights, or none (then it is rebuilt)."""
    index = vars(engine).get("index")
    engine.config = config
    for name in RELOADED_PARTS:
        if name in vars(engine):
            delattr(engine, name)  # how a cached property is cleared
    if index is not None:
        index.close()


class ConfigReloader:
    """A pending reload, asked for by a signal, carried out by the daemon's loop."""

    def __init__(self) -> None:
        self._requested = threading.Event()

    @property
    def pending(self) -> bool:
        return self._requested.is_set()

    def request(self, *_: object) -> None:
        """The ``SIGHUP`` handler: only marks a reload as due (safe in a signal handler)."""
        self._requested.set()

    def poll(self, engine: Any) -> bool:
        """Carry out a requested reload; True when the engine now has the new config."""
        if not self._requested.is_set():
            return False
        self._requested.clear()
        notify_reloading()
        try:
            config = read_config(engine)
        except (ConfigError, OSError) as exc:
            log.error("config reload failed, the running config is kept: %s", exc)
            return False
        except Exception:  # a plugin's addoption, say: the daemon goes on with what it has
            log.exception("config reload failed, the running config is kept")
            return False
        else:
            reconfigure(engine, config)
            log.info("config reloaded from %s: %d playlist recipes", config.source, len(engine.recipes))
            return True
        finally:
            notify_ready()
