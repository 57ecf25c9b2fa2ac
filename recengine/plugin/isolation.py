"""One plugin's failure never stops recengine: every hook implementation runs inside a guard.

:class:`PluginManager` registers each plugin through an :class:`IsolatedPlugin`, a proxy whose hook
functions are guarded copies of the plugin's own. Hooks are still called through pluggy (so
``wrapper=True`` implementations see every call), but an implementation that raises is logged once
per plugin and hook, remembered in :attr:`PluginManager.hook_failures`, and answers ``None``: the
other implementations of a broadcast hook still run, and a ``firstresult`` hook (``load_audio``)
falls through to the next implementation (the built-in decoder). Exceptions derived from
:class:`HookSignal` are a hook's answer on purpose (a decoder's "this file is broken") and reach
the caller unchanged.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from recengine.plugin.spec import PROJECT

log = logging.getLogger(__name__)

#: The plugin whose hook implementation is running (``register`` callbacks name their owner by it).
current_plugin: contextvars.ContextVar[str | None] = contextvars.ContextVar("recengine_current_plugin",
                                                                           default=None)
#: Set by :func:`results_by_plugin`: guarded implementations append ``(plugin name, result)`` here.
_collector: contextvars.ContextVar[list[tuple[str, Any]] | None] = contextvars.ContextVar(
    "recengine_hook_results", default=None)


class HookSignal(Exception):
    """Raised by a hook implementation on purpose, as its answer: passed to the caller, not isolated."""


@dataclass(frozen=True)
class HookFailure:
    """An implementation that raised: which plugin, in which hook, what, and where it lives."""

    plugin: str
    hook: str
    error: str
    location: str = ""


class IsolatedPlugin:
    """A plugin as pluggy sees it: guarded hook functions; any other attribute is the plugin's own."""

    def __init__(self, target: object, name: str, on_failure: Callable[[HookFailure, BaseException], None]):
        self.__dict__["_target"] = target
        location = getattr(target, "__file__", None) or getattr(type(target), "__module__", "")
        for attr in dir(target):
            try:
                fn = getattr(target, attr)
            except Exception:  # a property that raises is no hook
                continue
            opts = getattr(fn, f"{PROJECT}_impl", None) if inspect.isroutine(fn) else None
            if opts is None:
                continue
            if opts.get("wrapper") or opts.get("hookwrapper"):
                self.__dict__[attr] = fn  # a wrapper sees the call as it is
                continue
            hook = opts.get("specname") or attr
            self.__dict__[attr] = _guarded(fn, name, hook, str(location), on_failure)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.__dict__["_target"], attr)

    @property
    def target(self) -> object:
        return self.__dict__["_target"]


def _guarded(fn: Callable[..., Any], plugin: str, hook: str, location: str,
             on_failure: Callable[[HookFailure, BaseException], None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        token = current_plugin.set(plugin)
        try:
            result = fn(*args, **kwargs)
        except HookSignal:
            raise
        except Exception as exc:
            on_failure(HookFailure(plugin, hook, f"{type(exc).__name__}: {exc}", location), exc)
            return None
        finally:
            current_plugin.reset(token)
        collected = _collector.get()
        if collected is not None:
            collected.append((plugin, result))
        return result

    return guarded


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, with every registered plugin isolated (see the module docstring)."""

    def __init__(self, project_name: str):
        super().__init__(project_name)
        self.hook_failures: list[HookFailure] = []
        self._proxies: dict[int, IsolatedPlugin] = {}
        self._reported: set[tuple[str, str]] = set()

    def _failed(self, failure: HookFailure, exc: BaseException) -> None:
        self.hook_failures.append(failure)
        key = (failure.plugin, failure.hook)
        if key in self._reported:  # once per plugin and hook: a decoder failing on every file is one line
            log.debug("plugin %s failed in hook %s again: %s", failure.plugin, failure.hook, failure.error)
            return
        self._reported.add(key)
        where = f" ({failure.location})" if failure.location else ""
        log.error("plugin %s failed in hook %s%s; continuing without it: %s", failure.plugin, failure.hook,
                  where, failure.error, exc_info=exc)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        if plugin is None or isinstance(plugin, IsolatedPlugin):
            return super().register(plugin, name)
        proxy = IsolatedPlugin(plugin, name or self.get_canonical_name(plugin), self._failed)
        registered = super().register(proxy, name or self.get_canonical_name(plugin))
        if registered is not None:
            self._proxies[id(plugin)] = proxy
        return registered

    def _proxy(self, plugin: object) -> object:
        return self._proxies.get(id(plugin), plugin)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        proxy = self._proxy(plugin) if plugin is not None else None
        removed = super().unregister(proxy, name)
        if isinstance(removed, IsolatedPlugin):
            self._proxies.pop(id(removed.target), None)
            return removed.target
        return removed

    def is_registered(self, plugin: object) -> bool:
        return super().is_registered(self._proxy(plugin))

    def get_name(self, plugin: object) -> str | None:
        return super().get_name(self._proxy(plugin))

    def get_hookcallers(self, plugin: object) -> list[pluggy.HookCaller] | None:
        return super().get_hookcallers(self._proxy(plugin))


def results_by_plugin(call: Callable[[], object]) -> list[tuple[str, Any]]:
    """Run ``call`` (a hook call through pluggy) and return ``[(plugin name, result), ...]`` of the
    implementations that answered, in pluggy's order."""
    collected: list[tuple[str, Any]] = []
    token = _collector.set(collected)
    try:
        call()
    finally:
        _collector.reset(token)
    return collected
