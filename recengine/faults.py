"""Fault points for crash tests: ``RECENGINE_FAULTPOINT=<name>[:n]`` makes the process exit
abruptly (``os._exit(137)``, as after SIGKILL) at the n-th time it reaches that point.

Unset, :func:`faultpoint` is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os

_hits: dict[str, int] = {}


def faultpoint(name: str) -> None:
    spec = os.environ.get("RECENGINE_FAULTPOINT")
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(count or 1):
        os._exit(137)
