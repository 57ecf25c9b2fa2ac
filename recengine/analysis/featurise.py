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

from recengine.analysis.audio import (
    DecodeFailure,
    DecoderMissing,
    decode_batch,
    find_ffmpeg,
    pid_alive,
    read_tags,
    sweep_batch_dirs,
)
from recengine.faults import faultpoint
from recengine.models import Tags

log = logging.getLogger(__name__)

TASKS_PER_WORKER = 100
#: Jobs per worker call: their files are decoded by one ffmpeg process (one start-up for two).
BATCH_SIZE = 2


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
        from recengine.plugin.boot import load_settings

        self.config, self.plugins = load_settings(
            Path(settings.config_path) if settings.config_path else None, settings.raw, env=settings.env)
        from recengine.plugin.registry import collect

        self.extractors = collect(self.plugins.pm, "extractors", self.config)
        sweep_batch_dirs()  # scratch folders of workers that were killed mid-batch
        impls = self.plugins.pm.hook.load_audio.get_hookimpls()
        self.builtin_decoder_only = [i.plugin_name for i in impls] == ["pydub_decoder"]
        self._ffmpeg: str | None = None

    @property
    def ffmpeg(self) -> str:
        if self._ffmpeg is None:
            self._ffmpeg = find_ffmpeg(self.config.get("analysis.ffmpeg", "auto"))
        return self._ffmpeg


_worker: _Worker | None = None


def _exit_with_parent(parent_pid: int) -> None:
    """A worker's parent is the forkserver, so PDEATHSIG cannot tell it that the scanning process
    died (kill -9): poll it, and leave at once (ffmpeg children die with us through PDEATHSIG)."""
    while True:
        time.sleep(0.5)
        if not pid_alive(parent_pid):
            os._exit(1)


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


def _unchanged(job: FeatureJob, when: str) -> None:
    """The file is still the one the job was made for, else ``vanished`` (the next pass redoes it)."""
    path = Path(job.path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DecodeFailure("vanished", f"the file disappeared {when}") from None
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
        raise DecodeFailure("vanished", f"the file changed {when}; it will be picked up again")


def _analyse(job: FeatureJob, worker: _Worker, decoded: Callable[[], Any]) -> FeatureResult:
    """One job: checks, ``decoded()`` for its audio, re-check, extractors; failures classified."""
    started = time.process_time()
    result = FeatureResult(job)
    try:
        _unchanged(job, "before it could be read")
        result.tags = read_tags(Path(job.path))
        audio = decoded()
        if isinstance(audio, DecodeFailure):
            raise audio
        if audio is None:
            raise DecodeFailure("decode_error", "no decoder accepted the file")
        faultpoint("after_decode")
        _unchanged(job, "while it was decoded")  # a file rewritten meanwhile is analysed next time
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


def featurize_one(job: FeatureJob, worker: _Worker | None = None) -> FeatureResult:
    """Decode ``job.path`` through the ``load_audio`` hook and run the missing extractors."""
    worker = worker or _worker
    assert worker is not None, "worker not initialised"
    return _analyse(job, worker, lambda: worker.plugins.pm.hook.load_audio(path=Path(job.path), config=worker.config))


def featurize_jobs(jobs: list[FeatureJob], worker: _Worker | None = None) -> list[FeatureResult]:
    """Several jobs in one call (runs in a worker process). When the built-in decoder is the only
    ``load_audio`` implementation, their files are decoded by one ffmpeg process
    (:func:`recengine.analysis.audio.decode_batch`: same samples, one process start instead of several);
    otherwise, or for a single job, each goes through the hook on its own."""
    worker = worker or _worker
    assert worker is not None, "worker not initialised"
    if len(jobs) < 2 or not worker.builtin_decoder_only:
        return [featurize_one(job, worker) for job in jobs]
    cfg = worker.config
    items = []
    for job in jobs:
        try:
            _unchanged(job, "before it could be read")
        except DecodeFailure:
            pass  # _analyse reports it
        items.append((Path(job.path), read_tags(Path(job.path))))
    decoded = decode_batch(
        items, ffmpeg=worker.ffmpeg, sample_rate=cfg.get("analysis.sample_rate", 22050),
        windows=cfg.get("analysis.windows", 3), window_s=cfg.get("analysis.window_s", 20.0),
        timeout_s=cfg.get("analysis.timeout_s", 60.0), min_duration_s=cfg.get("analysis.min_duration_s", 1.0))
    return [_analyse(job, worker, lambda audio=audio: audio) for job, audio in zip(jobs, decoded, strict=True)]


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
        ctx.set_forkserver_preload(["recengine.analysis.featurise", "numpy", "scipy.fft"])
        return cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                      initargs=(self.settings,), max_tasks_per_child=TASKS_PER_WORKER)

    def map(self, jobs: list[FeatureJob], *, stop: Callable[[], bool] = lambda: False) -> Iterator[FeatureResult]:
        """Featurise ``jobs``, yielding each result as it completes (a bounded number in flight).

        When ``stop()`` turns true, work in flight is abandoned at once (workers and their ffmpeg
        children are killed; those tracks stay pending for next time). Otherwise the workers are
        kept for the next call until :meth:`close`."""
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
                    in_flight[self._pool.submit(featurize_jobs, batch)] = batch
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
                        for job in batch:  # each retried alone; a second crash condemns the file
                            crashes[job.track_id] = crashes.get(job.track_id, 0) + 1
                            if crashes[job.track_id] >= 2:
                                yield FeatureResult(job, failure=("decode_error", "the analysis worker crashed on this file"))
                            else:
                                queue.append([job])
                        continue
                    yield from results
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
            if cancel:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    if proc.is_alive():
                        proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            if cancel:  # workers stopped mid-batch leave scratch folders; their pids are gone now
                sweep_batch_dirs()
