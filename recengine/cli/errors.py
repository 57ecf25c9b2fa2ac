"""How a command ends: exit codes and the two errors commands raise."""

from __future__ import annotations

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called (exit 2)."""


class CommandFailed(Exception):
    """The command could not do its job (exit 1)."""
