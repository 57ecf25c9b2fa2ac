"""Featurising in worker processes: decode once, run only the extractors a track is missing.

Each worker process builds its own plugin manager from the same config (no shared state), decodes
through the ``load_audio`` hook and runs each extractor separately, checking its output. Workers are
recycled after a number of files; a worker that dies is replaced and its file retried once, then
recorded as a failure. Results come back to the parent, which alone writes the catalog.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import DecodeFailure, DecoderMissing, read_tags
from .faults import faultpoint
from .models import Tags

log = logging.getLogger(__name__)

TASKS_PER_WORKER = 200


@dataclass(frozen=True)
class FeatureJob:
    track_id: int
    path: str
    content_sig: str
    size: int
    mtime_ns: int
    extractors: tuple[tuple[str, int], ...]  # (name, version) still missing for this content


@dataclass
class FeatureResult:
    job: FeatureJob
    blocks: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    tags: Tags | None = None
    duration: float | None = None
    failure: tuple[str, str] | None = None
    extractor_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class WorkerSettings:
    """What a worker needs to build the same plugins and config as the parent (picklable)."""

    config_path: str | None
    raw: dict[str, Any]
    env: dict[str, str]
    parent_pid: int = field(default_factory=os.getpid)


class _Worker:
    """Per-process state: the plugin manager, config and extractors, built once per worker."""

    def __init__(self, settings: WorkerSettings):
        from .engine import load_settings

        self.config, self.plugins = load_settings(
            Path(settings.config_path) if settings.config_path else None, settings.raw, env=settings.env)
        from .registry import collect

        self.extractors = collect(self.plugins.pm, "extractors", self.config)


_worker: _Worker | None = None


def _exit_with_parent(parent_pid: int) -> None:
    """A worker's parent is the forkserver, so PDEATHSIG cannot tell it that the scanning process
    died (kill -9): poll it, and leave at once (ffmpeg children die with us through PDEATHSIG)."""
    while True:
        time.sleep(0.5)
        if not _alive(parent_pid):
            os._exit(1)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _init_worker(settings: WorkerSettings) -> None:
    global _worker
    # workers fork from a long-lived forkserver: take the parent's environment as it is now
    os.environ.clear()
    os.environ.update(settings.env)
    logging.basicConfig(level=logging.WARNING)
    threading.Thread(target=_exit_with_parent, args=(settings.parent_pid,), daemon=True).start()
    _worker = _Worker(settings)


def run_extractors(extractors, wanted: Iterable[tuple[str, int]], samples: np.ndarray, sr: int,
                   ) -> tuple[dict[str, tuple[int, np.ndarray]], list[str]]:
    """Run the wanted extractors one by one; keep outputs that are finite and of the declared size."""
    blocks: dict[str, tuple[int, np.ndarray]] = {}
    errors: list[str] = []
    for name, version in wanted:
        if name not in extractors:
            continue
        ext = extractors[name]
        try:
            vec = np.asarray(ext.extract(samples, sr), dtype=np.float32).ravel()
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if vec.size != ext.dim:
            errors.append(f"{name}: returned {vec.size} values, declared dim {ext.dim}")
        elif not np.all(np.isfinite(vec)):
            errors.append(f"{name}: returned NaN or infinite values")
        else:
            blocks[name] = (version, vec)
    return blocks, errors


def featurize_one(job: FeatureJob, worker: _Worker | None = None) -> FeatureResult:
    """Decode ``job.path`` once and run the missing extractors (runs in a worker process)."""
    worker = worker or _worker
    assert worker is not None, "worker not initialised"
    started = time.process_time()
    result = FeatureResult(job)
    path = Path(job.path)
    try:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DecodeFailure("vanished", "the file disappeared before it could be read") from None
        except PermissionError:
            raise DecodeFailure("permission", "permission denied") from None
        if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
            raise DecodeFailure("vanished", "the file changed since it was scanned; it will be picked up again")
        result.tags = read_tags(path)
        audio = worker.plugins.pm.hook.load_audio(path=path, config=worker.config)
        if audio is None:
            raise DecodeFailure("decode_error", "no decoder accepted the file")
        faultpoint("after_decode")
        try:  # re-check: a file rewritten while it was decoded is analysed again next time
            st = os.stat(path)
        except OSError:
            raise DecodeFailure("vanished", "the file disappeared while it was decoded") from None
        if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
            raise DecodeFailure("vanished", "the file changed while it was decoded; it will be picked up again")
        result.duration = result.tags.duration or audio.duration
        result.blocks, result.extractor_errors = run_extractors(
            worker.extractors, job.extractors, audio.samples, audio.sample_rate)
    except DecodeFailure as exc:
        result.failure = (exc.reason, exc.message)
    except DecoderMissing:
        raise  # not this file's fault: ends the scan with the install hint
    except MemoryError:
        result.failure = ("decode_error", "out of memory while decoding")
    except Exception as exc:  # a plugin decoder that raises something else
        result.failure = ("decode_error", f"{type(exc).__name__}: {exc}")
    result.seconds = time.process_time() - started
    return result


class FeaturePool:
    """A recycled process pool that yields results as they complete and survives worker deaths."""

    def __init__(self, settings: WorkerSettings, workers: int):
        self.settings = settings
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: cf.ProcessPoolExecutor | None = None

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # one BLAS thread per worker: the workers are the parallelism (threaded BLAS made the
        # extractors 1.5-2x slower in CPU time); the forkserver copies this environment once
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["recengine.featurize", "numpy", "scipy.fft"])
        return cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                      initargs=(self.settings,), max_tasks_per_child=TASKS_PER_WORKER)

    def map(self, jobs: list[FeatureJob], *, stop: Callable[[], bool] = lambda: False) -> Iterator[FeatureResult]:
        """Featurise ``jobs``, yielding each result as it completes (a bounded number in flight).

        When ``stop()`` turns true, work in flight is abandoned at once (workers and their ffmpeg
        children are killed; those tracks stay pending for next time). Otherwise the workers are
        kept for the next call until :meth:`close`."""
        queue = list(reversed(jobs))
        crashes: dict[int, int] = {}
        in_flight: dict[cf.Future, FeatureJob] = {}
        limit = self.workers * 4
        try:
            while queue or in_flight:
                if self._pool is None:
                    self._pool = self._new_pool()
                while queue and len(in_flight) < limit and not stop():
                    job = queue.pop()
                    in_flight[self._pool.submit(featurize_one, job)] = job
                if not in_flight:
                    break
                done, _ = cf.wait(in_flight, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                broken = False
                for fut in done:
                    job = in_flight.pop(fut)
                    try:
                        yield fut.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        crashes[job.track_id] = crashes.get(job.track_id, 0) + 1
                        if crashes[job.track_id] >= 2:
                            yield FeatureResult(job, failure=("decode_error", "the analysis worker crashed on this file"))
                        else:
                            queue.append(job)
                if broken:
                    for fut, job in list(in_flight.items()):
                        queue.append(job)
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
            if cancel:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    if proc.is_alive():
                        proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
