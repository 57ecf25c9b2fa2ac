"""Config and plugins in one step: the core keys decide which plugins load, then every plugin's
``addoption`` declares its keys and the whole config is validated against core + plugin keys.

Drop-in folders run code as the user running recengine, so, as ssh does with keys, a folder is
refused (none of its files load) when it, anything in it, or a folder above it (unless sticky, as
``/tmp``) can be changed by another user: writable by group or others, or owned by someone other
than this user or root.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recengine import config as configmod
from recengine.plugin.manager import PluginInfo, PluginSet, get_plugin_manager

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
    folders = [Path(p) for p in core["plugin_dirs"]]
    refused = {folder: why for folder in folders if (why := drop_in_refusal(folder)) is not None}
    plugin_set = get_plugin_manager(
        plugin_dirs=[folder for folder in folders if folder not in refused],
        disabled=core["disabled_plugins"],
        load_plugins=core["load_plugins"],
        entrypoints=entrypoints,
        env=env,
    )
    for folder, why in refused.items():
        plugin_set.infos.append(PluginInfo(folder.name, "file", "", str(folder), error=why))
    if report_failures:
        for info in plugin_set.failures:
            log.error("plugin %s (%s) left out: %s", info.name, info.location, info.error)
    config = validate_settings(path, plugin_set, raw, env=env)
    plugin_set.pm.hook.configure.call_historic(kwargs={"config": config})
    return config, plugin_set


def validate_settings(path: Path | None, plugin_set: PluginSet, raw: dict[str, Any] | None = None, *,
                      env: Mapping[str, str] | None = None) -> configmod.Config:
    """The config at ``path`` (or ``raw``) validated against the core keys and those the loaded
    plugins declare in ``addoption``; nothing is imported (a running daemon's reload)."""
    if raw is None:
        raw = configmod.read_yaml(path) if path is not None else {}
    spec = configmod.core_options()
    plugin_set.pm.hook.addoption.call_historic(kwargs={"spec": spec})
    return configmod.build_config(path, spec, raw, env=env, loaded_plugins=plugin_set.names)


def drop_in_refusal(folder: Path) -> str | None:
    """Why the drop-in ``folder`` must not be loaded (see the module docstring), or None."""
    if not folder.is_dir():
        return None
    above = [(parent, True) for parent in folder.resolve().parents]
    inside = [(Path(root) / name, False) for root, dirs, files in os.walk(folder) for name in dirs + files]
    for path, ancestor in [(folder, False), *above, *inside]:
        problem = _changeable_by_others(path, ancestor=ancestor)
        if problem is not None:
            return f"drop-in folder refused: {problem}"
    return None


def _changeable_by_others(path: Path, *, ancestor: bool) -> str | None:
    try:
        st = path.stat()
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if st.st_uid not in (os.getuid(), 0):
        return (f"{path} is owned by {_user_name(st.st_uid)}, not by {_user_name(os.getuid())} or root "
                f"(chown it, or move the plugin elsewhere)")
    sticky_dir = ancestor and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
        return f"{path} is writable by other users (chmod go-w {path})"
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
