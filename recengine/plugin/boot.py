"""Config and plugins in one step: the core keys decide which plugins load, then every plugin's
``addoption`` declares its keys and the whole config is validated against core + plugin keys."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recengine import config as configmod
from recengine.plugin.manager import PluginSet, get_plugin_manager

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
