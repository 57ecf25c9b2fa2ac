"""The ``command`` playback backend: runs a configured external player program.

Config (``plugins.command.*``):

- ``argv``: the command as a list, run directly (never through a shell), e.g.
  ``["mpv", "--no-video", "--really-quiet", "{path}"]``. ``{path}`` anywhere in an argument is
  replaced by the track's absolute path and the command runs once per track; an argument that is
  exactly ``{paths}`` becomes one argument per track and the command runs once per ``play`` call.
  With neither placeholder the path is appended as the last argument (once per track). Only
  these placeholders are replaced (no ``str.format``), so braces elsewhere are kept.
- ``user``: whose history the plays go to (default ``default``).

API (beyond the backend protocol ``name`` / ``play(tracks, mode, record) -> int``): ``play``
returns at once and the tracks play one after another on a background thread; ``wait(timeout)``
blocks until the queue is done; ``now_playing()``, ``skip()``, ``stop()`` and ``close()`` end the
running command (SIGTERM to its process group, SIGKILL after 2 s); there is no time limit.
``check()`` raises :class:`BackendUnavailable` when ``argv`` is empty or its program is missing.

Events: one process per track follows :mod:`recengine.playback.tracker`: the command exiting 0 is a
play (the command is trusted to have played the track); a play is also recorded once the
command has run for half the track or 4 minutes; ending it early through ``skip``/``stop``/a new
``play`` before 30 s is a skip; any other exit status records nothing (logged with the end of
its stderr). With ``{paths}`` recengine cannot tell which tracks were heard: exit 0 records a
play for every track (``listened_s`` unknown) and anything else records nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence

from recengine.models import Track
from recengine.playback.errors import BackendUnavailable
from recengine.playback.process_queue import ProcessQueuePlayer
from recengine.plugin.spec import hookimpl

log = logging.getLogger(__name__)

__all__ = ["BackendUnavailable", "CommandBackend", "expand_argv"]

PATH = "{path}"
PATHS = "{paths}"


def expand_argv(template: Sequence[str], paths: Sequence[str]) -> list[str]:
    """The argv for ``paths`` (one path unless the template has ``{paths}``)."""
    if any(arg == PATHS for arg in template):
        out: list[str] = []
        for arg in template:
            if arg == PATHS:
                out.extend(paths)
            else:
                out.append(arg)
        return out
    if len(paths) != 1:
        raise ValueError("a template without {paths} plays one path at a time")
    if any(PATH in arg for arg in template):
        return [arg.replace(PATH, paths[0]) for arg in template]
    return [*template, paths[0]]


class CommandBackend(ProcessQueuePlayer):
    """Runs ``argv`` per track (or once with ``{paths}``); see the module docstring."""

    name = "command"
    source = "command"

    def __init__(self, argv: Sequence[str] = (), *, user: str = "default"):
        super().__init__(user=user)
        self.template = [str(a) for a in argv]
        if any(a == PATHS for a in self.template) and any(PATH in a for a in self.template):
            raise ValueError("plugins.command.argv: use {path} or {paths}, not both")
        self.batch = any(a == PATHS for a in self.template)

    def check(self) -> None:
        if not self.template:
            raise BackendUnavailable(
                'command backend: set plugins.command.argv, e.g. ["mpv", "--no-video", "{path}"]'
            )
        program = self.template[0]
        if shutil.which(program) is None:
            raise BackendUnavailable(f"command backend: program {program!r} not found or not executable")

    def argv(self, tracks: list[Track]) -> list[str]:
        return expand_argv(self.template, [os.fspath(t.path) for t in tracks])


def _check_argv(argv: list[str]) -> str | None:
    if any(a == PATHS for a in argv) and any(PATH in a for a in argv):
        return "use {path} (once per track) or {paths} (all tracks at once), not both"
    return None


@hookimpl
def addoption(spec):
    spec.add(
        "plugins.command.argv",
        "list[str]",
        [],
        'player command run without a shell; {path} = one track, {paths} = all, e.g. ["mpv", "{path}"]',
        check=_check_argv,
    )
    spec.add("plugins.command.user", "str", "default", "whose history the command backend's plays go to")


@hookimpl
def register_backends(register, config):
    get = config.get if config is not None else (lambda key, default=None: default)
    register(
        CommandBackend(get("plugins.command.argv", []) or [], user=get("plugins.command.user", "default"))
    )
