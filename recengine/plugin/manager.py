"""Finding, loading and isolating plugins.

Discovery order (documented in the README):

1. block list: ``disabled_plugins:`` in config and ``RECENGINE_DISABLE_PLUGINS`` (comma separated);
2. built-ins (:data:`DEFAULT_PLUGINS`, registered exactly like third-party code);
3. entry points in the group ``recengine`` (only those named in ``load_plugins:`` when it is set;
   ``RECENGINE_LOAD_PLUGINS=""`` loads none, so a broken install never locks a user out);
4. drop-in ``.py`` files and packages in the configured plugin folders (default ``plugins/``).

A plugin that fails to import, or implements a hook that does not exist (a misspelt name), is
reported with its name, file and error, and left out; everything else keeps working. One plugin
manager is built per engine instance; nothing is loaded at import time.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from recengine.plugin import spec as hookspecs
from recengine.plugin.isolation import PluginManager, results_by_plugin

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "recengine"

#: Built-in plugins, in registration order. Their short name is the last dotted part.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "recengine.default_plugins.pydub_decoder",
    "recengine.default_plugins.timbre",
    "recengine.default_plugins.spectral",
    "recengine.default_plugins.dynamics",
    "recengine.default_plugins.rhythm",
    "recengine.default_plugins.tonal",
    "recengine.default_plugins.fluctuation",
    "recengine.default_plugins.musicnn_extractor",
    "recengine.default_plugins.m3u8",
    "recengine.default_plugins.xspf",
    "recengine.default_plugins.similar_scorer",
    "recengine.default_plugins.taste",
    "recengine.default_plugins.diversity",
    "recengine.default_plugins.discovery",
    "recengine.default_plugins.null_backend",
    "recengine.default_plugins.mpd_backend",
    "recengine.default_plugins.local_backend",
    "recengine.default_plugins.command_backend",
    "recengine.default_plugins.backend_choice",
)

#: Built-ins that cannot be blocked: without them nothing works.
ESSENTIAL_PLUGINS: frozenset[str] = frozenset({"pydub_decoder"})


@dataclass
class PluginInfo:
    """What ``recengine plugins`` shows for one plugin."""

    name: str
    source: str  # "built-in", "entry point" or "file"
    version: str = ""
    location: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    blocked: bool = False


@dataclass
class PluginSet:
    """A plugin manager plus what was found while loading it."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo]

    @property
    def names(self) -> set[str]:
        return {i.name for i in self.infos if i.error is None and not i.blocked}

    @property
    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error is not None]



def _split_env_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _recengine_version() -> str:
    from recengine import __version__

    return __version__


def get_plugin_manager(
    *,
    plugin_dirs: Iterable[Path] = (),
    disabled: Iterable[str] = (),
    load_plugins: list[str] | None = None,
    entrypoints: bool = True,
    builtins: Iterable[str] = DEFAULT_PLUGINS,
    env: Mapping[str, str] | None = None,
) -> PluginSet:
    """Build a fresh plugin manager with every plugin found, in the documented order."""
    env = os.environ if env is None else env
    pm = PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if env.get("RECENGINE_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(
            lambda name, impls, kw: log.debug("hook %s -> %s", name, [i.plugin_name for i in impls]),
            lambda outcome, name, impls, kw: None,
        )
    blocked = set(disabled) | set(_split_env_list(env.get("RECENGINE_DISABLE_PLUGINS", "")))
    infos: list[PluginInfo] = []
    plugin_set = PluginSet(pm, infos)

    for name in blocked - ESSENTIAL_PLUGINS:
        pm.set_blocked(name)
    for dotted in builtins:
        short = dotted.rsplit(".", 1)[-1]
        if short in blocked and short not in ESSENTIAL_PLUGINS:
            infos.append(PluginInfo(short, "built-in", _recengine_version(), dotted, blocked=True))
            continue
        _load(plugin_set, short, "built-in", dotted, lambda d=dotted: importlib.import_module(d),
              _recengine_version)

    if "RECENGINE_LOAD_PLUGINS" in env:
        load_plugins = _split_env_list(env["RECENGINE_LOAD_PLUGINS"])
    if entrypoints:
        for ep in _entry_points():
            if load_plugins is not None and ep.name not in load_plugins:
                continue
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else ""
            if ep.name in blocked:
                infos.append(PluginInfo(ep.name, "entry point", version, ep.value, blocked=True))
                continue
            _load(plugin_set, ep.name, "entry point", ep.value, ep.load, lambda v=version: v)

    for folder in plugin_dirs:
        for name, path in _drop_ins(Path(folder)):
            if name in blocked:
                infos.append(PluginInfo(name, "file", "", str(path), blocked=True))
                continue
            _load(plugin_set, name, "file", str(path), lambda p=path, n=name: _import_file(n, p),
                  None)
    return plugin_set


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _drop_ins(folder: Path) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            found.append((entry.stem, entry))
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            found.append((entry.name, entry / "__init__.py"))
    return found


def _import_file(name: str, path: Path) -> ModuleType:
    module_name = f"recengine_dropin_{name}"
    spec = importlib.util.spec_from_file_location(
        module_name, path, submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _load(plugin_set: PluginSet, name: str, source: str, location: str, loader, version) -> None:
    pm = plugin_set.pm
    info = PluginInfo(name, source, "", location)
    plugin_set.infos.append(info)
    if pm.has_plugin(name) or pm.is_blocked(name):
        info.error = f"a plugin named {name!r} is already loaded" if pm.has_plugin(name) else None
        info.blocked = pm.is_blocked(name)
        return
    try:
        module = loader()
    except (Exception, SystemExit) as exc:  # a plugin must never stop recengine
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" ({frame.filename}:{frame.lineno})" if frame else ""
        info.error = f"failed to import: {type(exc).__name__}: {exc}{where}"
        return
    info.version = version() if version else str(getattr(module, "__version__", ""))
    if isinstance(module, ModuleType) and getattr(module, "__file__", None) and source != "built-in":
        info.location = module.__file__ or location
    try:
        pm.register(module, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        info.error = f"invalid plugin: {exc}"
        return
    unknown = [hc.name for hc in pm.get_hookcallers(module) or [] if hc.spec is None]
    if unknown:
        pm.unregister(module)
        known = hook_names()
        hints = []
        for hook in unknown:
            close = difflib.get_close_matches(hook, known, n=1)
            hints.append(f"{hook!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        info.error = f"implements unknown hook {', '.join(hints)}"
        return
    info.hooks = sorted(hc.name for hc in pm.get_hookcallers(module) or [])


# --- calling hooks one implementation at a time -------------------------------------------------


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a broadcast hook through pluggy (wrappers included); an implementation that raises is
    logged and skipped, the others still run (see :mod:`recengine.plugin.isolation`). Returns
    ``[(plugin name, result), ...]`` in pluggy's order."""
    return results_by_plugin(lambda: getattr(pm.hook, hook_name)(**kwargs))


def hook_names() -> list[str]:
    """Every hook declared in :mod:`recengine.plugin.spec`."""
    return sorted(
        name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, hookspecs.PROJECT + "_spec")
    )
