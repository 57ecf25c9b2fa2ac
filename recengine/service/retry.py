"""What the daemon does when a turn of work fails: back off, say what fails, or give up.

A failure is retried after 1, 2, 4 ... seconds, at most :data:`RETRY_MAX_S` apart, with one traceback
and then one line per retry. :attr:`Backoff.problem` is what ``status`` shows (``error``, ``since``,
``attempts``, ``retry_in_s``) until a turn succeeds. A catalog that cannot be used at all is no
case for retrying: :data:`EXIT_CATALOG_UNUSABLE` is the daemon's exit code then.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("recengine.service.daemon")

#: A failing turn is retried after 1, 2, 4 ... s, at most this long apart.
RETRY_MAX_S = 60.0
#: The daemon's exit code when the catalog cannot be used (after the message saying why).
EXIT_CATALOG_UNUSABLE = 3


class Backoff:
    """The failure being retried, if any."""

    def __init__(self) -> None:
        self.problem: dict[str, Any] | None = None

    def failed(self, exc: Exception, *, traceback: bool = True) -> float:
        """Note one more failed attempt; the seconds to wait before the next."""
        attempts = 1 + (self.problem["attempts"] if self.problem else 0)
        delay = min(RETRY_MAX_S, 2.0 ** (attempts - 1))
        error = f"{type(exc).__name__}: {exc}"
        if attempts == 1 and traceback:
            log.exception("daemon error; retrying with a full reconcile in %.0f s", delay)
        else:
            log.error("still failing (%d attempts), retrying in %.0f s: %s", attempts, delay, error)
        since = self.problem["since"] if self.problem else time.time()
        self.problem = {"error": error, "since": since, "attempts": attempts, "retry_in_s": delay}
        return delay

    def unusable(self, exc: Exception) -> int:
        """The catalog cannot be used: say so; the exit code to stop with."""
        log.critical("%s; stopping (exit code %d)", exc, EXIT_CATALOG_UNUSABLE)
        self.problem = {"error": str(exc), "since": time.time(), "attempts": 1, "retry_in_s": None}
        return EXIT_CATALOG_UNUSABLE

    def succeeded(self) -> bool:
        """A turn worked: True when it ends a run of failures (which is logged)."""
        if self.problem is None:
            return False
        log.info("working again after %d failed attempts", self.problem["attempts"])
        self.problem = None
        return True
