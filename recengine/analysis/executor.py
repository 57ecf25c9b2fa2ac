"""Where feature jobs run: the :class:`FeatureExecutor` contract, and :class:`FeaturePool`, the local
implementation on a recycled pool of worker processes.

Workers are recycled after a number of files; a worker that dies is replaced and its file retried
once alone; a second crash leaves the track pending (``deferred``), since a crash is no property
of the file that the failure ledger could hold. Results come back to the parent, which alone
writes the catalog. Each worker reports its pid when it is ready, so that a pool whose workers never
start says so instead of failing its files. The pool keeps every worker process it ever started (its
multiprocessing context records them), so that closing it stops each of them: a worker left alive
after another was killed can wait for ever on the task queue's lock, and the interpreter joins the
pool's workers when it exits.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from recengine.analysis.blas import ONE_THREAD, limit_blas_threads
from recengine.analysis.decode import pid_alive
from recengine.analysis.decode.scratch import sweep_batch_dirs
from recengine.analysis.jobs import FeatureJob, FeatureResult
from recengine.analysis.worker import Worker, WorkerSettings

log = logging.getLogger(__name__)

TASKS_PER_WORKER = 100
#: A pool none of whose workers is ready after this long (s) with work waiting did not start.
START_TIMEOUT_S = 60.0
#: Jobs per worker call: their files are decoded by one ffmpeg process (one start-up for two).
BATCH_SIZE = 2


class FeatureExecutor(Protocol):
    """Runs feature jobs somewhere and yields their results as they complete."""

    def map(self, jobs: list[FeatureJob], *, stop: Callable[[], bool]) -> Iterator[FeatureResult]: ...

    def close(self) -> None: ...


class WorkersDidNotStart(RuntimeError):
    """The worker processes died before they were ready: the engine's problem, never a file's."""


class ExecutorUnavailable(RuntimeError):
    """The executor cannot run jobs (a cluster's scheduler unreachable or lost, its workers unlike
    this engine): the scan stops with this one-line message and keeps what it committed."""


# --- in the worker process -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def worker_for(settings: WorkerSettings) -> Worker:
    """This process's worker for ``settings``, built on first use. A cache keyed by the settings
    value instead of a module global: every task names its settings, so there is nothing to set up
    or forget, and the initializer only warms it."""
    return Worker(settings)


def _exit_with_parent(parent_pid: int) -> None:
    """A worker's parent is the forkserver, so PDEATHSIG cannot tell it that the scanning process
    died (kill -9): poll it, and leave at once (ffmpeg children die with us through PDEATHSIG)."""
    while True:
        time.sleep(0.5)
        if not pid_alive(parent_pid):
            os._exit(1)


def _init_worker(settings: WorkerSettings, ready: multiprocessing.SimpleQueue) -> None:
    # workers fork from a long-lived forkserver: take the parent's environment as it is now
    os.environ.clear()
    os.environ.update(settings.env)
    limit_blas_threads(int(settings.env.get("OPENBLAS_NUM_THREADS", "1") or 1))
    logging.basicConfig(level=settings.log_level)
    threading.Thread(target=_exit_with_parent, args=(settings.parent_pid,), daemon=True).start()
    worker_for(settings)
    ready.put(os.getpid())


def _run_batch(jobs: list[FeatureJob], settings: WorkerSettings) -> list[FeatureResult]:
    return worker_for(settings).featurise(jobs)


def check_not_bootstrapping() -> None:
    """A worker re-runs the parent's main script when it starts (forkserver and spawn do): a script
    that scans without an ``if __name__ == "__main__":`` guard would scan inside each worker. Called
    before a scan starts (ahead of anything that waits for the parent, such as the writer lock) and
    before a pool starts; raises :class:`WorkersDidNotStart` in such a worker."""
    # While a child imports the parent's script, the script runs as a module of its own under the
    # name "__mp_main__" (elsewhere that name is an alias of __main__), and the child does not know
    # its parent process yet (multiprocessing sets it once the import is done).
    importing = sys.modules.get("__mp_main__", sys.modules.get("__main__")) is not sys.modules.get("__main__")
    if importing and multiprocessing.parent_process() is None:
        raise WorkersDidNotStart("a worker process is importing the main script, which starts a scan: "
                                 "put the script's calls under `if __name__ == \"__main__\":`")


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _is_pool_worker(pid: int) -> bool:
    """``pid`` still runs and is a forkserver child (a recycled worker's pid may have been reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"forkserver" in fh.read() and pid_alive(pid)
    except OSError:
        return False


# --- in the parent --------------------------------------------------------------------------------


class _RecordingContext:
    """A multiprocessing context that remembers each process made through it: the pool's workers
    (``ProcessPoolExecutor`` makes them with its ``mp_context.Process``), replacements included."""

    def __init__(self, context: multiprocessing.context.BaseContext):
        self._context = context
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def Process(self, *args: object, **kwargs: object) -> multiprocessing.process.BaseProcess:  # noqa: N802
        process = self._context.Process(*args, **kwargs)
        self.processes.append(process)
        return process

    def __getattr__(self, name: str) -> object:
        return getattr(self._context, name)


class FeaturePool:
    """The local :class:`FeatureExecutor`: a recycled process pool that yields results as they
    complete and survives worker deaths."""

    def __init__(self, settings: WorkerSettings, workers: int):
        self.settings = settings
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._context: _RecordingContext | None = None
        self._ready: multiprocessing.SimpleQueue | None = None
        self._pids: set[int] = set()
        self._started = 0.0

    @classmethod
    def for_config(cls, config_path: str | None, raw: dict, workers: int,
                   env: dict[str, str] | None = None) -> FeaturePool:
        """A pool whose workers load the config at ``config_path`` (None: defaults) with ``raw``
        values, in the current environment plus one BLAS thread each unless it says otherwise."""
        base = dict(os.environ if env is None else env)
        return cls(WorkerSettings(config_path, raw, {**ONE_THREAD, **base}), workers)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        check_not_bootstrapping()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["recengine.analysis.executor", "numpy", "scipy.fft"])
        self._context = _RecordingContext(ctx)
        self._ready = ctx.SimpleQueue()
        self._pids = set()
        self._started = time.monotonic()
        return cf.ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_init_worker,
                                      initargs=(self.settings, self._ready), max_tasks_per_child=TASKS_PER_WORKER)

    def _collect_pids(self) -> None:
        while self._ready is not None and not self._ready.empty():
            self._pids.add(self._ready.get())

    def map(self, jobs: list[FeatureJob], *, stop: Callable[[], bool] = lambda: False) -> Iterator[FeatureResult]:
        """Featurise ``jobs``, yielding each result as it completes (a bounded number in flight).

        When ``stop()`` turns true, work in flight is abandoned at once (workers and their ffmpeg
        children are killed; those tracks stay pending for next time). Otherwise the workers are
        kept for the next call until :meth:`close`. Raises :class:`WorkersDidNotStart` when the
        pool's workers die before any is ready (every track stays pending)."""
        queue: list[list[FeatureJob]] = [jobs[i:i + BATCH_SIZE] for i in range(0, len(jobs), BATCH_SIZE)][::-1]
        crashes: dict[int, int] = {}
        in_flight: dict[cf.Future, list[FeatureJob]] = {}
        limit = self.workers * 2
        try:
            while queue or in_flight:
                if self._pool is None:
                    self._pool = self._new_pool()
                while queue and len(in_flight) < limit and not stop():
                    batch = queue.pop()
                    in_flight[self._pool.submit(_run_batch, batch, self.settings)] = batch
                if not in_flight:
                    break
                done, _ = cf.wait(in_flight, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                broken = False
                for fut in done:
                    batch = in_flight.pop(fut)
                    try:
                        results = fut.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        for job in batch:  # each retried alone; a second crash leaves it pending
                            crashes[job.track_id] = crashes.get(job.track_id, 0) + 1
                            if crashes[job.track_id] >= 2:
                                yield FeatureResult(job, deferred="the analysis worker crashed twice on this file")
                            else:
                                queue.append([job])
                        continue
                    yield from results
                self._collect_pids()
                if not self._pids and (broken or time.monotonic() - self._started > START_TIMEOUT_S):
                    raise WorkersDidNotStart(
                        f"the analysis worker processes {'exited' if broken else 'were not ready in time'} "
                        "before they could take work (if you run recengine from a script, put its calls "
                        "under `if __name__ == \"__main__\":`, since workers import the main script); "
                        "no track was marked failed")
                if broken:
                    for fut, batch in list(in_flight.items()):
                        queue.extend([job] for job in batch)
                        in_flight.pop(fut)
                    self._shutdown()
                if stop():
                    self._shutdown(cancel=True)
                    return
        except BaseException:
            self._shutdown(cancel=True)
            raise

    def close(self) -> None:
        self._shutdown(cancel=True)

    def __enter__(self) -> FeaturePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shutdown(self, cancel: bool = False) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if not cancel:
                pool.shutdown(wait=True, cancel_futures=True)
                return
            # Stop taking work, then stop every worker this pool started, ready or still starting,
            # and wait for them by pid (joining them here would race the pool's manager thread for
            # their exit status). One left alive could block for ever on the task queue's lock that a
            # killed one held, and the pool's manager, and the interpreter at exit, would wait for it.
            pool.shutdown(wait=False, cancel_futures=True)
            self._collect_pids()
            processes = self._context.processes if self._context is not None else []
            ours = [p.pid for p in processes if p.pid is not None and _is_pool_worker(p.pid)]
            _signal_all(ours, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while any(_is_pool_worker(pid) for pid in ours) and time.monotonic() < deadline:
                time.sleep(0.02)
            _signal_all([pid for pid in ours if _is_pool_worker(pid)], signal.SIGKILL)
            sweep_batch_dirs()  # workers stopped mid-batch leave scratch folders; their pids are gone now
