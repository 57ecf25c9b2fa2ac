"""``data_dir/status.json``: what the running daemon is doing, for ``recengine status`` and the web page.

The daemon rewrites it atomically every few seconds (and at stop); readers never see half a file.
Its keys are described at :meth:`recengine.service.daemon.Daemon.health`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recengine.fileio import atomic_write

STATUS_FILE = "status.json"


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATUS_FILE


def write_status(data_dir: Path, status: dict[str, Any]) -> None:
    atomic_write(status_path(data_dir), json.dumps(status, indent=2, default=str).encode())


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last status the daemon wrote, or None (never written, or unreadable)."""
    try:
        return json.loads(status_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
