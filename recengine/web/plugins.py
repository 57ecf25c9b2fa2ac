"""Endpoints and pages from plugins: the ``register_routes`` hook (as in datasette).

A plugin implements ``register_routes(register, config)`` and calls
``register(path, endpoint, methods=("GET",), summary="")`` for each route, where ``endpoint`` is a
Starlette endpoint (``def endpoint(request) -> Response``; sync ones run on the thread pool).
Paths under ``/api/`` need the token like every API call; ``summary`` lists the route in the
OpenAPI document. ``request.app.state.web.engine`` is the engine. A plugin whose hook raises is
logged and left out (the others' routes still load).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import Route

from recengine.plugin.manager import call_each

log = logging.getLogger(__name__)

HOOK = "register_routes"


class PluginRoutes:
    """The routes plugins registered, and their OpenAPI rows."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.described: list[tuple[str, str, str]] = []

    def register(self, path: str, endpoint: Callable[..., Any], methods: Sequence[str] = ("GET",),
                 summary: str = "") -> None:
        if not path.startswith("/") or not callable(endpoint):
            raise ValueError(f"register_routes: a route needs a path starting with / and an endpoint, got {path!r}")
        self.routes.append(Route(path, endpoint, methods=list(methods)))
        if summary:
            self.described.extend((m.lower(), path, summary) for m in methods)


def collect_routes(pm: Any, config: Any) -> PluginRoutes:
    """Ask every plugin for its routes."""
    found = PluginRoutes()
    call_each(pm, HOOK, register=found.register, config=config)
    return found
