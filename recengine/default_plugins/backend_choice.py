"""Default answer to ``choose_backend``: the backend named by the ``backend:`` config key."""

from __future__ import annotations

from recengine.plugin.spec import hookimpl


@hookimpl(trylast=True)
def choose_backend(config, backends):
    name = config.get("backend", "null")
    return backends.get(name)
