"""The HTTP server's settings, read once from the validated config (``http.*`` keys)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WebSettings:
    """Where the server listens and which token it was configured with (None: not configured)."""

    enabled: bool
    host: str
    port: int
    token: str | None
    data_dir: Path
    source: str = "config"  # the config file the settings come from, for messages

    @classmethod
    def from_config(cls, config: Any, *, host: str | None = None, port: int | None = None) -> WebSettings:
        """Settings from ``config``; ``host``/``port`` (the command line's) override the config's."""
        return cls(
            enabled=config["http.enabled"],
            host=config["http.host"] if host is None else host,
            port=config["http.port"] if port is None else port,
            token=config["http.token"] or None,
            data_dir=Path(config.data_dir),
            source=str(config.source),
        )

    @property
    def loopback(self) -> bool:
        """True when the server is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port if port is None else port}/"
