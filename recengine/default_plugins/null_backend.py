"""The ``null`` playback backend: plays nothing. For media servers that read playlist files."""

from __future__ import annotations

from recengine.plugin.spec import hookimpl


class NullBackend:
    name = "null"

    def play(self, tracks, mode="replace", record=None):
        """Accept the tracks and do nothing; returns how many were handed over."""
        return len(tracks)


@hookimpl
def register_backends(register):
    register(NullBackend())
