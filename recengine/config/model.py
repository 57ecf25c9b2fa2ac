"""The validated configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recengine.config.errors import ConfigError, UnsetVariable
from recengine.config.options import OptionSpec

REDACTED = "********"


@dataclass
class Config:
    """The effective, validated configuration: flat dotted keys, with the spec that typed them."""

    values: dict[str, Any]
    spec: OptionSpec
    source: str = "<defaults>"
    base: Path = field(default_factory=Path.cwd)
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self.values else default

    def __getitem__(self, key: str) -> Any:
        value = self.values[key]
        if isinstance(value, UnsetVariable):
            raise value.error
        return value

    @property
    def data_dir(self) -> Path:
        return Path(self["data_dir"])

    @property
    def library_folders(self) -> list[Path]:
        return [Path(p) for p in self["library.folders"]]

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.source, key, message)

    def nested(self, redact: bool = True) -> dict[str, Any]:
        """The effective config as nested data, secrets redacted, for ``config show``."""
        out: dict[str, Any] = {}
        for key in sorted(self.values):
            value = self.values[key]
            opt = self.spec.options.get(key)
            if isinstance(value, UnsetVariable):
                value = str(value)
            elif redact and opt is not None and opt.secret and value:
                value = REDACTED
            node = out
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return out
