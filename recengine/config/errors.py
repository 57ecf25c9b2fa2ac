"""Configuration errors: ``<file>: <dotted key>: <what was expected>``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


class ConfigError(Exception):
    """A configuration mistake: ``<file>: <dotted key>: <what was expected>``."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key, self.message = source, key, message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")




def unknown_key_error(source: str, key: str, name: str, known: list[str]) -> ConfigError:
    """The error for an unknown setting ``key`` (last part ``name``), with a "did you mean" from ``known``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
    return ConfigError(source, key, f"unknown setting{hint}")


@dataclass(frozen=True)
class UnsetVariable:
    """A config value that names an environment variable which is not set: reading it raises ``error``."""

    name: str
    error: ConfigError

    def __str__(self) -> str:
        return f"${{{self.name}}} (not set)"
