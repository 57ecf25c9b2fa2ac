"""What the daemon reads from the config (``daemon.*``), built once from the validated config.

The defaults live in the option spec (:func:`recengine.config.options.core_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recengine.config import Config


@dataclass(frozen=True)
class DaemonSettings:
    """The ``daemon.*`` options."""

    settle_s: float
    poll_settle_s: float
    poll_interval_s: float
    force_polling: bool
    reconcile_interval_s: float
    watch_backend: bool
    topup_user: str
    topup_playlist: str | None
    backups: int  # daily catalog copies kept (0: none)

    @classmethod
    def from_config(cls, config: Config) -> DaemonSettings:
        return cls(
            settle_s=float(config["daemon.settle_s"]),
            poll_settle_s=float(config["daemon.poll_settle_s"]),
            poll_interval_s=float(config["daemon.poll_interval_s"]),
            force_polling=bool(config["daemon.force_polling"]),
            reconcile_interval_s=float(config["daemon.reconcile_interval_s"]),
            watch_backend=bool(config["daemon.watch_backend"]),
            topup_user=config["daemon.topup_user"],
            topup_playlist=config["daemon.topup_playlist"],
            backups=config["catalog.backups"],
        )
