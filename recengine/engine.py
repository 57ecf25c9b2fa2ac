"""An engine instance: validated config + its own plugin manager + the catalog.

``Engine.open()`` is the documented entry point for Python callers and the CLI alike::

    from recengine import Engine
    with Engine.open("config.yaml") as engine:
        engine.scan()
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import config as configmod
from .catalog import Catalog
from .plugins import PluginSet, call_each, get_plugin_manager
from .registry import Registry, collect

log = logging.getLogger(__name__)


def load_settings(path: Path | None, raw: dict[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
                  entrypoints: bool = True, report_failures: bool = True) -> tuple[configmod.Config, PluginSet]:
    """Read and validate the config and load the plugins it asks for.

    Two passes: the core keys decide which plugins load; then every plugin's ``addoption`` declares
    its keys and the whole file is validated against core + plugin keys.
    """
    env = os.environ if env is None else env
    if raw is None:
        raw = configmod.read_yaml(path) if path is not None else {}
    core = configmod.build_config(path, configmod.core_options(), raw, env=env, loaded_plugins=set())
    plugin_set = get_plugin_manager(
        plugin_dirs=[Path(p) for p in core["plugin_dirs"]],
        disabled=core["disabled_plugins"],
        load_plugins=core["load_plugins"],
        entrypoints=entrypoints,
        env=env,
    )
    if report_failures:
        for info in plugin_set.failures:
            log.error("plugin %s (%s) left out: %s", info.name, info.location, info.error)
    spec = configmod.core_options()
    plugin_set.pm.hook.addoption.call_historic(kwargs={"spec": spec})
    config = configmod.build_config(path, spec, raw, env=env, loaded_plugins=plugin_set.names)
    plugin_set.pm.hook.configure.call_historic(kwargs={"config": config})
    return config, plugin_set


class Engine:
    """One recengine: config, plugins and catalog, with the operations built on them."""

    def __init__(self, config: configmod.Config, plugins: PluginSet, *, catalog: Catalog | None = None):
        self.config = config
        self.plugins = plugins
        self._catalog = catalog

    @classmethod
    def open(cls, config_path: str | os.PathLike[str] | None = None, *, raw: dict[str, Any] | None = None,
             env: Mapping[str, str] | None = None, entrypoints: bool = True, **overrides: Any) -> Engine:
        """Open an engine from a config file (``None``: ``RECENGINE_CONFIG`` or ``./config.yaml``,
        else the built-in defaults), or from ``raw`` config data. ``overrides`` set dotted keys."""
        path = configmod.config_path(config_path, env) if raw is None else (Path(config_path) if config_path else None)
        config, plugins = load_settings(path, raw, env=env, entrypoints=entrypoints)
        for key, value in overrides.items():
            config.values[key.replace("__", ".")] = value
        return cls(config, plugins)

    # parts ---------------------------------------------------------------------------------------

    @property
    def pm(self):
        return self.plugins.pm

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.config.data_dir / "catalog.db")
        return self._catalog

    @functools.cached_property
    def extractors(self) -> Registry:
        return collect(self.pm, "extractors")

    @functools.cached_property
    def scorers(self) -> Registry:
        return collect(self.pm, "scorers")

    @functools.cached_property
    def backends(self) -> Registry:
        return collect(self.pm, "backends")

    @functools.cached_property
    def writers(self) -> Registry:
        return collect(self.pm, "playlist_writers")

    def extractor_versions(self) -> dict[str, int]:
        return {e.name: e.version for e in self.extractors}

    def emit(self, hook: str, **kwargs: Any) -> None:
        """Broadcast an event hook, isolating each implementation."""
        call_each(self.pm, hook, **kwargs)

    # operations ----------------------------------------------------------------------------------

    def scan(self, **kwargs: Any):
        """Reconcile the library folders with the catalog and featurise what is new or changed."""
        from .scanner import Scanner

        return Scanner(self).run(**kwargs)

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
