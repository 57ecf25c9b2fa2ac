"""Featurising inside one worker process: decode once, run only the extractors a track is missing.

A :class:`Worker` builds its own plugin manager from the same config as the parent (no shared
state), decodes through the ``load_audio`` hook (or, when the built-in decoder is the only one,
several files per ffmpeg process) and runs each extractor separately, checking its output.
Extractors may declare ``setup()`` (called once in this process before their first use),
``sample_rate`` (their audio comes at that rate) and ``extract_batch(items)`` (called once per
batch of tracks); built-ins take the shared analysis through ``extract_analysis(analysis)``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recengine.analysis.decode import DecodeFailure, DecoderMissing, FfmpegDecoder, decoder_for, read_tags
from recengine.analysis.decode.scratch import sweep_batch_dirs
from recengine.analysis.decode.tags import finite_duration
from recengine.analysis.jobs import FeatureJob, FeatureResult
from recengine.analysis.settings import AnalysisSettings
from recengine.analysis.track import TrackAudio
from recengine.faults import faultpoint
from recengine.models import DecodedAudio

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class WorkerSettings:
    """What a worker needs to build the same plugins and config as the parent (picklable), and the
    environment it runs in (the parent's own is never changed for it)."""

    config_path: str | None
    raw: dict[str, Any]
    env: dict[str, str]
    parent_pid: int = field(default_factory=os.getpid)
    #: the workers' log level: warnings, or more when the parent logs more (``--debug``)
    log_level: int = field(default_factory=lambda: min(logging.WARNING, logging.getLogger().getEffectiveLevel()))

    def key(self) -> str:
        """The settings as one string: equal settings, equal keys."""
        return json.dumps([self.config_path, self.raw, sorted(self.env.items()), self.parent_pid, self.log_level],
                          sort_keys=True, default=str)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkerSettings) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


class Worker:
    """Per-process state: the plugin manager, config, extractors and decoder, built once per worker."""

    def __init__(self, settings: WorkerSettings):
        from recengine.plugin.boot import load_settings
        from recengine.plugin.registry import collect

        self.config, self.plugins = load_settings(
            Path(settings.config_path) if settings.config_path else None, settings.raw, env=settings.env)
        self.analysis = AnalysisSettings.from_config(self.config)
        self.extractors = collect(self.plugins.pm, "extractors", self.config)
        sweep_batch_dirs()  # scratch folders of workers that were killed mid-batch
        impls = self.plugins.pm.hook.load_audio.get_hookimpls()
        self.builtin_decoder_only = [i.plugin_name for i in impls] == ["pydub_decoder"]
        self._setup: dict[str, str | None] = {}  # extractor name -> None (ready) or why its setup failed

    @property
    def decoder(self) -> FfmpegDecoder:
        return decoder_for(self.analysis)

    # --- jobs ----------------------------------------------------------------------------------

    def featurise_one(self, job: FeatureJob) -> FeatureResult:
        """Decode ``job.path`` through the ``load_audio`` hook and run the missing extractors."""
        return self.featurise([job])[0]

    def featurise(self, jobs: Sequence[FeatureJob]) -> list[FeatureResult]:
        """Several jobs in one call. When the built-in decoder is the only ``load_audio``
        implementation, their files are decoded by one ffmpeg process (same samples, one process
        start instead of several); otherwise each goes through the hook on its own."""
        if len(jobs) >= 2 and self.builtin_decoder_only:
            items = [(Path(job.path), read_tags(Path(job.path))) for job in jobs]
            batch = self.decoder.decode_batch(items)
            sources: list[Callable[[], Any]] = [lambda audio=audio: audio for audio in batch]
        else:
            sources = [lambda job=job: self.plugins.pm.hook.load_audio(path=Path(job.path), config=self.config)
                       for job in jobs]
        results, tracks = [], []
        for job, source in zip(jobs, sources, strict=True):
            result, track = self._decode(job, source)
            results.append(result)
            tracks.append(track)
        self._extract(results, tracks)
        return results

    def _decode(self, job: FeatureJob, decoded: Callable[[], Any]) -> tuple[FeatureResult, TrackAudio | None]:
        """One job's checks, ``decoded()`` for its audio and the re-check; failures classified."""
        started = time.process_time()
        result = FeatureResult(job)
        track = None
        try:
            _unchanged(job, "before it could be read")
            result.tags = read_tags(Path(job.path))
            audio = decoded()
            if isinstance(audio, DecodeFailure):
                raise audio
            if audio is None:
                raise DecodeFailure("decode_error", "no decoder accepted the file")
            if not isinstance(audio, DecodedAudio):
                raise TypeError(f"a load_audio implementation returned {type(audio).__name__}, not DecodedAudio")
            faultpoint("after_decode")
            _unchanged(job, "while it was decoded")  # a file rewritten meanwhile is analysed next time
            # the decoder's duration: the tags' when they have a right one, else the demuxer's or what was read
            result.duration = finite_duration(audio.duration) or result.tags.duration
            track = TrackAudio(audio, self._redecode(job, audio))
        except DecodeFailure as exc:
            result.failure = (exc.reason, exc.message)
        except DecoderMissing:
            raise  # not this file's fault: ends the scan with the install hint
        except MemoryError:
            result.failure = ("decode_error", "out of memory while decoding")
        except Exception as exc:  # noqa: BLE001 - a plugin's bad answer or our bug: never the file's fault
            result.deferred = f"{type(exc).__name__}: {exc}"
            log.error("%s: %s", job.path, result.deferred)
        result.seconds = time.process_time() - started
        return result, track

    def _redecode(self, job: FeatureJob, audio: DecodedAudio) -> Callable[[int], np.ndarray] | None:
        if audio.decoder not in ("ffmpeg", "soundfile"):
            return None  # a plugin decoder's audio: other rates are resampled from it
        plan = list(audio.windows)
        return lambda rate: self.decoder.decode_windows(Path(job.path), plan, rate)

    # --- extractors ----------------------------------------------------------------------------

    def _extract(self, results: list[FeatureResult], tracks: list[TrackAudio | None]) -> None:
        """Run each wanted extractor over the batch's decoded tracks (one ``extract_batch`` call
        when it has one); keep outputs that are finite and of the declared size."""
        started = time.process_time()
        wanted: dict[str, list[tuple[int, int]]] = {}  # extractor -> [(result index, version)]
        for i, (result, track) in enumerate(zip(results, tracks, strict=True)):
            if track is None:
                continue
            for name, version in result.job.extractors:
                if name in self.extractors:
                    wanted.setdefault(name, []).append((i, version))
        for name, items in wanted.items():
            ext = self.extractors[name]
            outputs = self._run(name, ext, [tracks[i] for i, _ in items])  # type: ignore[misc]
            for (i, version), out in zip(items, outputs, strict=True):
                if isinstance(out, str):
                    results[i].extractor_errors.append(out)
                else:
                    results[i].blocks[name] = (version, out)
        live = [r for r, t in zip(results, tracks, strict=True) if t is not None]
        for result in live:
            result.seconds += (time.process_time() - started) / len(live)

    def _run(self, name: str, ext: Any, tracks: list[TrackAudio]) -> list[np.ndarray | str]:
        """``ext``'s checked vector for each track, or an error message."""
        problem = self._ready(name, ext)
        if problem is not None:
            return [problem] * len(tracks)
        rate = int(getattr(ext, "sample_rate", None) or tracks[0].sample_rate)
        try:
            if hasattr(ext, "extract_batch"):
                vecs = list(ext.extract_batch([(t.samples(rate), rate) for t in tracks]))
                if len(vecs) != len(tracks):
                    return [f"{name}: extract_batch returned {len(vecs)} vectors for {len(tracks)} tracks"] * len(tracks)
            else:
                vecs = []
                for t in tracks:
                    try:
                        vecs.append(_call(ext, t, rate))
                    except Exception as exc:  # noqa: BLE001 - one extractor's failure for one file
                        vecs.append(exc)
        except Exception as exc:  # noqa: BLE001 - the whole batch call failed
            vecs = [exc] * len(tracks)
        return [_checked(name, ext.dim, v) for v in vecs]

    def _ready(self, name: str, ext: Any) -> str | None:
        """Call ``ext.setup()`` the first time ``ext`` is used in this process; why it is unusable, or None."""
        if name not in self._setup:
            self._setup[name] = None
            setup = getattr(ext, "setup", None)
            if callable(setup):
                try:
                    setup()
                except Exception as exc:  # noqa: BLE001 - reported for every file it would have run on
                    self._setup[name] = f"{name}: setup failed: {type(exc).__name__}: {exc}"
                    log.error("extractor %s", self._setup[name])
        return self._setup[name]


def _call(ext: Any, track: TrackAudio, rate: int) -> Any:
    if hasattr(ext, "extract_analysis"):
        return ext.extract_analysis(track.analysis(rate))
    return ext.extract(track.samples(rate), rate)


def _checked(name: str, dim: int, value: Any) -> np.ndarray | str:
    if isinstance(value, BaseException):
        return f"{name}: {type(value).__name__}: {value}"
    vec = np.asarray(value, dtype=np.float32).ravel()
    if vec.size != dim:
        return f"{name}: returned {vec.size} values, declared dim {dim}"
    if not np.all(np.isfinite(vec)):
        return f"{name}: returned NaN or infinite values"
    return vec


def _unchanged(job: FeatureJob, when: str) -> None:
    """The file is still the one the job was made for, else ``vanished`` (the next pass redoes it)."""
    try:
        st = os.stat(job.path)
    except FileNotFoundError:
        raise DecodeFailure("vanished", f"the file disappeared {when}") from None
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
        raise DecodeFailure("vanished", f"the file changed {when}; it will be picked up again")
