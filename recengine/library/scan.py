"""``recengine scan``: reconcile the library folders with the catalog, then featurise.

Reconciling is :mod:`recengine.library.reconcile`. Featurising runs on a feature executor (the
worker-process pool of :mod:`recengine.analysis.executor`); every result is committed as it
arrives, so an interrupted scan loses nothing and the next one continues.

Featurising is two passes. The fast pass runs the extractors that are not ``deep`` on every new or
changed track (a track is searchable once they are committed); the deep pass then runs the deep
ones (musicnn) on the tracks through the fast pass that lack their current version. Each job names
only its pass's extractors, on the same executor. A deep pass is resumed by the next one (it is
only "tracks lacking the deep version"), and a deep failure never marks the track failed: it stays
searchable on its fast blocks, and the deep extractor is tried again on the next scan. One process at a time
reconciles and featurises a catalog (:meth:`Scanner.writing`): ``recengine scan`` waits, saying
so, while the daemon works on the same data dir, and the daemon waits while a scan runs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path

from recengine.analysis import FeatureExecutor, FeatureJob, FeatureResult
from recengine.catalog import Catalog
from recengine.fileio import PidLock
from recengine.library.reconcile import Reconciler
from recengine.library.report import ScanReport
from recengine.library.settings import ScanSettings

log = logging.getLogger(__name__)

#: The writer lock beside the catalog: one process reconciles and featurises a data dir at a time.
WRITER_LOCK = "writer.lock"


class Scanner:
    """Reconcile + featurise on one catalog.

    ``versions``: extractor name -> version wanted; ``deep``: the names among them that run in the
    deep pass; ``executor(workers)`` makes a feature executor
    with that many workers (0: one per core); ``emit(hook, **kwargs)`` announces ``track_added``,
    ``track_changed`` and ``track_removed`` (not for deep blocks: the track was announced when its
    fast pass was committed); ``ignore_dirs`` (playlist output folders) are never walked.
    """

    def __init__(self, catalog: Catalog, settings: ScanSettings, versions: Mapping[str, int],
                 executor: Callable[[int], FeatureExecutor], emit: Callable[..., None], *,
                 ignore_dirs: Iterable[Path] = (), progress: bool | None = None, out=None,
                 deep: Collection[str] = ()):  # fmt: skip
        self.catalog = catalog
        self.settings = settings
        self.versions = dict(versions)
        self.fast_versions = {n: v for n, v in self.versions.items() if n not in deep}
        self.deep_versions = {n: v for n, v in self.versions.items() if n in deep}
        #: (track, content) whose deep pass failed in this process: not tried again until the next one
        self.deep_failed: set[tuple[int, str]] = set()
        self._executor = executor
        self.emit = emit
        self.reconciler = Reconciler(catalog, settings, emit, ignore_dirs=ignore_dirs)
        self.writer_lock = PidLock(catalog.path.parent / WRITER_LOCK)
        self.out = out if out is not None else sys.stderr
        self.progress = self.out.isatty() if progress is None else progress

    @contextlib.contextmanager
    def writing(self, *, wait: bool) -> Iterator[bool]:
        """Hold the catalog's writer lock for a reconcile and featurise (yields True), or, when
        another process holds it and not ``wait``, yield False at once."""
        mine = self.writer_lock.acquire()
        if not mine and wait:
            log.warning("another recengine (pid %s, the daemon?) is updating %s; waiting until it has "
                        "finished its current work (the daemon keeps the library up to date by itself; "
                        "Ctrl-C stops waiting)", self.writer_lock.holder(), self.catalog.path.parent)
            mine = self.writer_lock.acquire(blocking=True)
        try:
            yield mine
        finally:
            if mine:
                self.writer_lock.release()

    # reconcile ----------------------------------------------------------------------------------

    def reconcile(self, report: ScanReport, *, confirm_mass_delete: bool = False) -> None:
        self.reconciler.reconcile(report, confirm_mass_delete=confirm_mass_delete)

    def reconcile_paths(self, report: ScanReport, settled: Iterable[Path] = (), removed: Iterable[Path] = ()) -> None:
        self.reconciler.reconcile_paths(report, settled=settled, removed=removed)

    # featurise ----------------------------------------------------------------------------------

    def jobs(self, *, retry_failed: bool = False, deep: bool = False) -> list[FeatureJob]:
        """The fast pass's jobs (tracks lacking a non-deep extractor), or with ``deep`` the deep
        pass's (tracks through the fast pass lacking a deep one, less those that failed it here)."""
        versions = self.deep_versions if deep else self.fast_versions
        having = self.fast_versions if deep else None
        out = []
        for track in self.catalog.needs_features(versions, retry_failed=retry_failed, having=having):
            if deep and (track.track_id, track.content_sig) in self.deep_failed:
                continue
            missing = self.catalog.missing_extractors(track.track_id, versions)
            out.append(FeatureJob(track.track_id, str(track.path), track.content_sig, track.size, track.mtime_ns,
                                  tuple(sorted(missing.items()))))
        return out

    def new_pool(self, workers: int | None = None) -> FeatureExecutor:
        return self._executor(self.settings.workers if workers is None else workers)

    def featurise(self, report: ScanReport, *, retry_failed: bool = False, workers: int | None = None,
                  stop: Callable[[], bool] = lambda: False, pool: FeatureExecutor | None = None,
                  deep: bool = False, limit: int | None = None) -> None:
        """Featurise every track that lacks the fast pass's features (``deep``: the deep pass's),
        committing each result as it arrives. ``pool``: a long-lived executor (the daemon's); else
        one is made for this call. ``limit``: at most this many tracks (the daemon's small batches)."""
        jobs = self.jobs(retry_failed=retry_failed, deep=deep)[:limit]
        if not jobs:
            return
        own = pool is None
        pool = pool or self.new_pool(workers)
        label = f"deep pass ({', '.join(sorted(self.deep_versions))})" if deep else ""
        bar = Progress(len(jobs), self.out, enabled=self.progress, label=label)
        try:
            for result in pool.map(jobs, stop=stop):
                if deep:
                    self.commit_deep(result, report)
                else:
                    self.commit(result, report)
                bar.step()
            if stop():
                report.interrupted = True
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        finally:
            bar.close()
            if own:
                pool.close()

    def commit(self, result: FeatureResult, report: ScanReport) -> None:
        job = result.job
        for err in result.extractor_errors:
            log.warning("%s: extractor %s", job.path, err)
        if result.deferred is not None:  # the engine's or a plugin's fault: the track stays pending
            log.warning("%s: not analysed this time: %s", job.path, result.deferred)
            return
        if result.failure is not None:
            reason, message = result.failure
            if reason == "vanished":
                return  # not a property of the file: the next reconcile decides
            self.catalog.record_failure(job.track_id, reason, message, job.size, job.mtime_ns)
            report.failed[reason] += 1
            return
        if not result.blocks:
            self.catalog.record_failure(job.track_id, "decode_error",
                                        "every extractor failed: " + "; ".join(result.extractor_errors)[:300],
                                        job.size, job.mtime_ns)
            report.failed["decode_error"] += 1
            return
        before = self.catalog.track(job.track_id)
        was_ok = before is not None and before.status == "ok"
        if self.catalog.save_features(job.track_id, job.content_sig, result.blocks, result.tags, result.duration):
            report.featurised += 1
            track = self.catalog.track(job.track_id)
            if track is not None:
                self.emit("track_changed" if was_ok or job.track_id in report.changed_ids else "track_added",
                          track=track)

    def commit_deep(self, result: FeatureResult, report: ScanReport) -> None:
        """A deep pass result: its blocks join the track's (tags, duration and status stay as the
        fast pass left them). Whatever went wrong leaves the track searchable on its fast blocks
        and out of the failure ledger; it is tried again by the next scan or daemon run."""
        job = result.job
        for err in result.extractor_errors:
            log.warning("%s: deep extractor %s", job.path, err)
        problem = result.deferred or (result.failure[1] if result.failure else None)
        if result.failure is not None and result.failure[0] == "vanished":
            return  # the fast pass sees the change first, then the deep pass runs on the new content
        if problem is not None or not result.blocks:
            log.warning("%s: deep pass not done: %s", job.path, problem or "; ".join(result.extractor_errors))
            self.deep_failed.add((job.track_id, job.content_sig))
            report.deep_failed += 1
            return
        if self.catalog.save_features(job.track_id, job.content_sig, result.blocks):
            report.deep_featurised += 1

    # the whole scan -----------------------------------------------------------------------------

    def run(self, *, confirm_mass_delete: bool = False, retry_failed: bool = False, workers: int | None = None,
            featurise: bool = True, searchable: Callable[[ScanReport], None] | None = None,
            stop: Callable[[], bool] = lambda: False) -> ScanReport:
        """Reconcile, the fast pass, ``searchable(report)`` (the engine brings the index up to date
        there, so the new tracks are searchable before the deep pass starts), then the deep pass;
        one executor for both passes, and the writer lock held throughout."""
        started = time.monotonic()
        report = ScanReport()
        try:
            with self.writing(wait=True):
                self.reconcile(report, confirm_mass_delete=confirm_mass_delete)
                if featurise:
                    with contextlib.closing(_Lazy(lambda: self.new_pool(workers))) as pool:
                        self.featurise(report, retry_failed=retry_failed, pool=pool, stop=stop)
                        if searchable is not None:
                            searchable(report)
                        report.fast_seconds = time.monotonic() - started
                        if self.deep_versions and not report.interrupted:
                            self.featurise(report, retry_failed=retry_failed, pool=pool, stop=stop, deep=True)
        finally:
            report.seconds = time.monotonic() - started
        return report


class _Lazy:
    """An executor made on first use (a scan with nothing to featurise starts no workers)."""

    def __init__(self, make: Callable[[], FeatureExecutor]):
        self._make, self._pool = make, None

    def map(self, jobs: list[FeatureJob], *, stop: Callable[[], bool]) -> Iterator[FeatureResult]:
        if self._pool is None:
            self._pool = self._make()
        return self._pool.map(jobs, stop=stop)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


class Progress:
    """done/total, tracks/s and ETA on one terminal line (or a log line every 10 s otherwise)."""

    def __init__(self, total: int, out, *, enabled: bool, label: str = ""):
        self.total, self.out, self.enabled = total, out, enabled
        self.label = label + ": " if label else ""
        self.done = 0
        self.started = self.last = time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.2 or self.done == self.total):
            self.last = now
            self.out.write("\r" + self.line(now))
            self.out.flush()
        elif not self.enabled and now - self.last > 10:
            self.last = now
            log.info("featurising: %s%s", self.label, self.line(now))

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        return (f"{self.label}[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f} tracks/s ETA {int(eta) // 60}:{int(eta) % 60:02d} ")

    def close(self) -> None:
        if self.enabled and self.done:
            self.out.write("\n")
            self.out.flush()
