"""Feature jobs on a dask.distributed cluster: :class:`DaskExecutor`, the second
:class:`~recengine.analysis.executor.FeatureExecutor` (``scan.executor: dask``).

Optional: ``pip install 'recengine[dask]'``; the engine imports this module only when the config
asks for it. The parent (the scan or the daemon) stays the catalog's only writer: it sends batches
of jobs to the scheduler (up to 16 a task on a large scan, in the local pool's batches of two),
keeps a bounded number of tasks in flight (two per worker thread), and yields each result as its
task completes, exactly as the local pool does. Paths go out through
``scan.dask.path_map`` (the library as the workers see it) and results come back with the parent's
own jobs.

Faults. A worker that dies mid-task: the scheduler runs its tasks again elsewhere, and a result
reaches the parent once per job. A batch whose workers keep dying (Dask's ``KilledWorker``, after
``distributed.scheduler.allowed-failures``) may only have been beside the file that kills them:
once the rest is done, each of its jobs runs again alone on the cluster, and a job that still kills
its workers then is ``deferred``, as the local pool does with a file that crashes a worker twice:
reported, the track left pending, not retried again in this scan, and not the file's failure in
the ledger (a crash is the decoder's or a plugin's fault, never a property of the file). A
scheduler that cannot be reached, or is lost mid-scan, or has no worker for a minute, ends the call
with :class:`~recengine.analysis.executor.ExecutorUnavailable`; what was committed stays, and the
next call connects again (the daemon's next pass).

In the workers, :func:`featurise_remote` builds a :class:`~recengine.analysis.worker.Worker` (config,
plugins, extractors, the neural model) once per worker thread and reuses it for every later task
with the same settings. The first task in a worker process sets it up as the local pool's
processes are: one BLAS thread, glibc's malloc thresholds as in a plain process (the nanny's
``MALLOC_TRIM_THRESHOLD_`` doubled the CPU) and Dask's 10 ms stack sampling off.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from distributed import Client, Future, wait
from distributed.client import FuturesCancelledError
from distributed.scheduler import KilledWorker

from recengine.analysis.blas import limit_blas_threads
from recengine.analysis.executor import BATCH_SIZE, START_TIMEOUT_S, ExecutorUnavailable
from recengine.analysis.jobs import FeatureJob, FeatureResult
from recengine.analysis.worker import Worker, WorkerSettings

log = logging.getLogger(__name__)

#: Batches in flight per worker thread of the cluster (the local pool keeps two per worker, too).
IN_FLIGHT_PER_THREAD = 2
#: Most jobs in one task: the scheduler spends ~2.6 ms of CPU per task and the parent ~2 ms whatever
#: its size (bench/executor_overhead.py), so large scans send several batches per task.
MAX_JOBS_PER_TASK = 16
MIN_TASKS_PER_THREAD = 32
#: How often the parent asks the scheduler how many worker threads it has (s).
THREADS_REFRESH_S = 1.0
#: After this long without a single worker, a warning says that the scan is waiting for one (s).
NO_WORKER_WARN_S = 5.0
#: distributed's own chatter that would bury the scan's one-line errors, unless --debug.
QUIET_LOGGERS = ("distributed.client", "distributed.core", "distributed.comm", "distributed.batched")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class WorkerMismatch(ExecutorUnavailable):
    """A worker's recengine or plugins are not the parent's (an extractor missing, another version)."""


# --- paths --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PathMap:
    """``scan.dask.path_map``: a file under a local prefix is read by the workers under theirs
    (the longest matching prefix wins; a prefix matches whole path components only)."""

    prefixes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_config(cls, mapping: Mapping[str, str]) -> PathMap:
        pairs = [(os.path.normpath(local), os.path.normpath(remote)) for local, remote in mapping.items()]
        return cls(tuple(sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)))

    def to_worker(self, path: str) -> str:
        for local, remote in self.prefixes:
            if path == local or path.startswith(local.rstrip("/") + "/"):
                return remote + path[len(local):] if local != "/" else os.path.join(remote, path[1:])
        return path

    def job(self, job: FeatureJob) -> FeatureJob:
        mapped = self.to_worker(job.path)
        return job if mapped == job.path else dataclasses.replace(job, path=mapped)


def forwarded_env(raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    """What of the parent's environment the workers need to read the config as the parent did: the
    ``RECENGINE_*`` switches and the ``${VAR}`` the config names (not the whole environment, which
    would travel to every worker with every task)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            names.update(_ENV_REF.findall(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(raw)
    return {k: v for k, v in env.items() if k.startswith("RECENGINE_") or k in names}


# --- in the Dask worker -------------------------------------------------------------------------

_idle: dict[str, list[Worker]] = {}  # settings key -> Workers built in this process, not in use
_idle_lock = threading.Lock()
_process_ready = False


#: glibc's mallopt parameters, and the largest values its dynamic thresholds reach on 64-bit
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
DYNAMIC_MMAP_MAX, DYNAMIC_TRIM_MAX = 32 << 20, 64 << 20


def _malloc_as_by_default() -> None:
    """Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand memory back to the
    OS), which also switches off glibc's dynamic mmap threshold: every array over 128 KiB is then a
    fresh mmap with its page faults, and featurising took twice the CPU (4.9 s instead of 2.5 s of
    CPU for 4 tracks, bench notes in SCALE.md). The thresholds are set to the ceilings that the
    dynamic ones reach in a plain process."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DYNAMIC_TRIM_MAX)


def _stop_dask_profiler() -> None:
    """A Dask worker samples the stacks of its running tasks every 10 ms for the dashboard's profile
    page; on featurising that cost about a sixth more CPU (SCALE.md), so this worker process stops
    sampling (Dask's own switch is ``distributed.worker.profile.enabled``)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not in a Dask worker (a test calling featurise_remote directly)
        return
    for name in ("profile", "profile-cycle"):
        callback = worker.periodic_callbacks.get(name)
        if callback is not None:
            worker.loop.add_callback(callback.stop)  # the worker's event loop owns its callbacks


def _take_worker(settings: WorkerSettings) -> Worker:
    """A Worker for ``settings`` that no other thread of this process is using, built on first use:
    one per worker thread, kept for the next task. Workers for other settings are let go."""
    global _process_ready
    key = settings.key()
    with _idle_lock:
        for other in [k for k in _idle if k != key]:
            del _idle[other]
        idle = _idle.setdefault(key, [])
        if idle:
            return idle.pop()
        if not _process_ready:
            limit_blas_threads(1)  # the worker threads are the parallelism, as the local pool's processes
            _malloc_as_by_default()
            _stop_dask_profiler()
            _process_ready = True
    here = WorkerSettings(settings.config_path, settings.raw, {**os.environ, **settings.env},
                          parent_pid=settings.parent_pid, log_level=settings.log_level)
    return Worker(here)


def _give_back(settings: WorkerSettings, worker: Worker) -> None:
    with _idle_lock:
        _idle.setdefault(settings.key(), []).append(worker)


def _check_extractors(worker: Worker, jobs: list[FeatureJob]) -> None:
    have = {ext.name: ext.version for ext in worker.extractors}
    for job in jobs:
        for name, version in job.extractors:
            if have.get(name) != version:
                found = f"version {have[name]}" if name in have else "no such extractor"
                raise WorkerMismatch(
                    f"the Dask worker on {socket.gethostname()} has {found} where the scan wants extractor "
                    f"{name} version {version}: install the same recengine and plugins on every worker")


def featurise_remote(jobs: list[FeatureJob], settings: WorkerSettings) -> list[FeatureResult]:
    """One task: featurise ``jobs`` with this thread's Worker, :data:`BATCH_SIZE` at a time (the
    local pool's calls: one ffmpeg process per batch)."""
    worker = _take_worker(settings)
    try:
        _check_extractors(worker, jobs)
        return [result for i in range(0, len(jobs), BATCH_SIZE) for result in worker.featurise(jobs[i:i + BATCH_SIZE])]
    finally:
        _give_back(settings, worker)


# --- in the parent ------------------------------------------------------------------------------


def jobs_per_task(jobs: int, threads: int) -> int:
    """Jobs per task: a whole number of batches, up to :data:`MAX_JOBS_PER_TASK`, and small enough
    that every worker thread gets at least :data:`MIN_TASKS_PER_THREAD` tasks (the last tasks of a
    scan, while other threads have nothing left, stay short)."""
    per_task = jobs // max(1, MIN_TASKS_PER_THREAD * threads) // BATCH_SIZE * BATCH_SIZE
    return max(BATCH_SIZE, min(MAX_JOBS_PER_TASK, per_task))


@dataclasses.dataclass
class _WorkerWatch:
    """A scan waits for workers to join (a warning after a few seconds), but not for ever."""

    scheduler: str
    since: float | None = None
    warned: bool = False

    def check(self, threads: int) -> None:
        if threads:
            self.since = None
            return
        now = time.monotonic()
        self.since = self.since or now
        if now - self.since > START_TIMEOUT_S:
            raise ExecutorUnavailable(f"no Dask worker joined the scheduler at {self.scheduler} in "
                                      f"{START_TIMEOUT_S:.0f} s: start some with `dask worker {self.scheduler}`")
        if now - self.since > NO_WORKER_WARN_S and not self.warned:
            self.warned = True
            log.warning("waiting for a Dask worker to join the scheduler at %s", self.scheduler)


@dataclasses.dataclass
class _Run:
    """One :meth:`DaskExecutor.map` call's work: batches to send, batches in flight (and whether
    each runs alone), and suspects: jobs of batches whose workers kept dying. Dask counts a death
    against every task the worker held, so a suspect may be innocent; each is sent again alone,
    once nothing else is in flight, and only one that still kills its workers then is guilty."""

    queue: list[list[FeatureJob]]
    in_flight: dict[Future, tuple[list[FeatureJob], bool]] = dataclasses.field(default_factory=dict)
    suspects: list[FeatureJob] = dataclasses.field(default_factory=list)

    def next_batches(self, limit: int, stop: Callable[[], bool]) -> Iterator[tuple[list[FeatureJob], bool]]:
        while self.queue and len(self.in_flight) < limit and not stop():
            yield self.queue.pop(), False
        if not self.queue and not self.in_flight and self.suspects and not stop():
            yield [self.suspects.pop(0)], True

    def sent(self, future: Future, batch: list[FeatureJob], alone: bool) -> None:
        self.in_flight[future] = (batch, alone)


class DaskExecutor:
    """Featurises on the workers of the Dask scheduler at ``scheduler``; see the module docstring."""

    def __init__(self, settings: WorkerSettings, scheduler: str, *, path_map: PathMap | None = None,
                 connect_timeout_s: float = 10.0):
        self.settings = settings
        self.scheduler = scheduler
        self.path_map = path_map or PathMap()
        self.connect_timeout_s = connect_timeout_s
        self._client: Client | None = None
        self._threads_n, self._threads_at = 0, float("-inf")

    @classmethod
    def for_config(cls, config_path: str | None, raw: dict, scheduler: str, *,
                   path_map: Mapping[str, str] | None = None, connect_timeout_s: float = 10.0,
                   env: Mapping[str, str] | None = None) -> DaskExecutor:
        """Workers that read the config at ``config_path`` with ``raw`` values as the parent does."""
        env = os.environ if env is None else env
        settings = WorkerSettings(config_path, raw, forwarded_env(raw, env))
        return cls(settings, scheduler, path_map=PathMap.from_config(path_map or {}),
                   connect_timeout_s=connect_timeout_s)

    # connection ---------------------------------------------------------------------------------

    def _connect(self) -> Client:
        if self._client is not None and self._client.status == "running":
            return self._client
        self._drop_client()
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            self._client = Client(self.scheduler, timeout=self.connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorUnavailable(
                f"cannot reach the Dask scheduler at {self.scheduler} ({exc}): start it with `dask scheduler` "
                "and its workers with `dask worker ADDRESS`, or set scan.executor: local") from None
        return self._client

    def _lost(self) -> ExecutorUnavailable:
        self._drop_client()
        return ExecutorUnavailable(
            f"lost the Dask scheduler at {self.scheduler} mid-scan; what was analysed is kept, and the next "
            "scan continues from there")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._threads_at = float("-inf")
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=5)

    def _threads(self, client: Client) -> int:
        """The cluster's worker threads (asked again after THREADS_REFRESH_S: workers come and go)."""
        now = time.monotonic()
        if now - self._threads_at > THREADS_REFRESH_S:
            self._threads_n = sum(client.nthreads().values())
            self._threads_at = now
        return self._threads_n

    # jobs ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _talking(self) -> Iterator[None]:
        """Around calls to the scheduler: a connection that broke means the scheduler was lost."""
        try:
            yield
        except (OSError, FuturesCancelledError, asyncio.CancelledError):
            raise self._lost() from None

    def map(self, jobs: list[FeatureJob], *, stop: Callable[[], bool] = lambda: False) -> Iterator[FeatureResult]:
        """Featurise ``jobs`` on the cluster, yielding each result as its batch completes.

        When ``stop()`` turns true, work in flight is cancelled (those tracks stay pending). Raises
        :class:`ExecutorUnavailable` when the scheduler cannot be reached or is lost, or when no
        worker joins it for a minute."""
        if not jobs:
            return
        client = self._connect()
        with self._talking():
            size = jobs_per_task(len(jobs), self._threads(client))
        run = _Run([jobs[i:i + size] for i in range(0, len(jobs), size)][::-1])
        watch = _WorkerWatch(self.scheduler)
        try:
            while run.queue or run.in_flight or run.suspects:
                with self._talking():
                    if client.status != "running":
                        raise self._lost()
                    threads = self._threads(client)
                    for batch, alone in run.next_batches(max(2, IN_FLIGHT_PER_THREAD * threads), stop):
                        future = client.submit(featurise_remote, [self.path_map.job(job) for job in batch],
                                               self.settings, pure=False)
                        run.sent(future, batch, alone)
                    if not run.in_flight:
                        break
                    try:
                        with client.as_current():
                            done = wait(list(run.in_flight), timeout=0.5, return_when="FIRST_COMPLETED").done
                    except TimeoutError:
                        done = set()
                yield from self._collect(client, done, run)
                watch.check(threads)
                if stop():
                    self._cancel(client, run.in_flight)
                    return
        except BaseException:
            self._cancel(client, run.in_flight)
            raise

    def _collect(self, client: Client, done: set[Future], run: _Run) -> Iterator[FeatureResult]:
        """The results of the ``done`` batches (fetched together), with the parent's own jobs; the
        jobs of a batch whose workers died become suspects, and a suspect that killed its workers
        when it ran alone is deferred."""
        finished = [f for f in done if f.status == "finished"]
        for future in done:
            if future.status == "cancelled":
                raise self._lost()
            if future.status == "finished":
                continue
            batch, alone = run.in_flight.pop(future)
            exc = future.exception()
            if not isinstance(exc, KilledWorker):
                raise exc
            if not alone:
                run.suspects.extend(batch)
                continue
            log.warning("%s: the Dask workers running it died (%s)", batch[0].path, exc)
            yield FeatureResult(batch[0], deferred="the Dask workers that ran this file died, even with no "
                                                   "other file beside it")
        if not finished:
            return
        with self._talking():
            answers = client.gather(finished)
        for future, results in zip(finished, answers, strict=True):
            batch, _ = run.in_flight.pop(future)
            for job, result in zip(batch, results, strict=True):
                result.job = job  # the parent's path, not the worker's
                yield result

    def _cancel(self, client: Client, in_flight: dict[Future, tuple[list[FeatureJob], bool]]) -> None:
        futures = list(in_flight)
        in_flight.clear()
        if futures and client.status == "running":
            with contextlib.suppress(Exception):
                client.cancel(futures)

    def close(self) -> None:
        self._drop_client()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
