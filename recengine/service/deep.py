"""The daemon's deep pass: deep extractors (musicnn) on tracks already searchable on the fast ones.

The live path (a new or changed file) runs the fast pass only, on the daemon's own pool, so its
latency does not depend on the deep extractors. When the live queue is empty, :meth:`DeepPass.turn`
runs the deep extractors on a small batch of the tracks that lack their current version, on a pool
of its own made through the same executor factory; a hint arriving meanwhile stops that batch at
once (its workers are stopped, the tracks stay pending) and the live path runs on a pool that was
never busy with deep work. There is no queue to keep: what is pending is "tracks lacking the deep
version", so a restart resumes where the last run stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from recengine.library import Scanner, ScanReport

log = logging.getLogger(__name__)

#: Tracks per deep batch, per worker: small, so a batch is never long in the way of anything.
BATCH_PER_WORKER = 2


class DeepPass:
    """Deep batches for a daemon: ``busy()`` says a live hint is waiting (the batch yields to it)."""

    def __init__(self, scanner: Scanner, busy: Callable[[], bool], stopping: Callable[[], bool],
                 changed: Callable[[int], None]):
        """``changed(n)``: n tracks' deep blocks were committed (the daemon refreshes the index)."""
        self.scanner = scanner
        self.busy = busy
        self.stopping = stopping
        self.changed = changed
        self.pool: Any = None
        self.done = 0  # deep blocks committed by this process
        self.state = "idle" if scanner.deep_versions else "none"  # none, idle (nothing pending), running
        self._nothing_until_change = not scanner.deep_versions

    @property
    def enabled(self) -> bool:
        return bool(self.scanner.deep_versions)

    def wake(self) -> None:
        """The library changed (the fast pass committed tracks): there may be deep work again."""
        self._nothing_until_change = not self.enabled

    def turn(self) -> ScanReport | None:
        """One small deep batch when there is one, nothing live is waiting and no other process
        holds the writer lock; its report, or None."""
        if self._nothing_until_change or self.busy() or self.stopping():
            return None
        with self.scanner.writing(wait=False) as mine:
            report = self._batch() if mine else None
        if report is not None and report.deep_featurised:
            self.changed(report.deep_featurised)  # their vectors get the deep block
        return report

    def _batch(self) -> ScanReport | None:
        workers = self.scanner.settings.workers
        limit = BATCH_PER_WORKER * max(workers, 1) if workers else BATCH_PER_WORKER * 2
        report = ScanReport()
        if not self.scanner.jobs(deep=True)[:1]:
            self._nothing_until_change, self.state = True, "idle"
            self.close()  # its workers hold the deep models: give the memory back while idle
            return None
        self.state = "running"
        if self.pool is None:
            self.pool = self.scanner.new_pool()
        started = time.monotonic()
        self.scanner.featurise(report, pool=self.pool, deep=True, limit=limit,
                               stop=lambda: self.busy() or self.stopping())
        self.done += report.deep_featurised
        if report.deep_featurised:
            log.debug("deep pass: %d tracks in %.1f s", report.deep_featurised, time.monotonic() - started)
        return report

    def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.close()
