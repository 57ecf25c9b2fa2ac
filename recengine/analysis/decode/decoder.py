"""The built-in decoder: ffmpeg through the bounded runner, one file or several per process, with the
libsndfile fallback; every outcome checked the same way (finite, long enough, not silent)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recengine.analysis.decode.argv import Output, Plan, ffmpeg_argv
from recengine.analysis.decode.errors import DecodeFailure, DecoderMissing
from recengine.analysis.decode.fallback import CHATTER_CAP, decode_soundfile
from recengine.analysis.decode.locate import find_ffmpeg
from recengine.analysis.decode.probe import probe_duration
from recengine.analysis.decode.process import RunResult, run_bounded
from recengine.analysis.decode.scratch import batch_dir
from recengine.analysis.decode.sniff import check_file, classify_ffmpeg_error, has_not_audio_magic, head_bytes
from recengine.analysis.decode.tags import finite_duration, read_tags
from recengine.analysis.decode.windows import plan_windows
from recengine.analysis.settings import AnalysisSettings
from recengine.models import DecodedAudio, Tags

log = logging.getLogger(__name__)

SILENCE_RMS = 10 ** (-90 / 20)  # below -90 dBFS over every window: silent


class FfmpegDecoder:
    """Decodes the analysis windows of files as ``settings`` say, with the ffmpeg at ``ffmpeg``.

    :meth:`configured` finds ffmpeg and points pydub at the same binary; a decoder built with an
    explicit path (tests, benches) leaves pydub alone."""

    def __init__(self, settings: AnalysisSettings, ffmpeg: str):
        self.settings = settings
        self.ffmpeg = ffmpeg

    @classmethod
    def configured(cls, settings: AnalysisSettings) -> FfmpegDecoder:
        """The decoder for ``settings``, with ffmpeg found as ``analysis.ffmpeg`` asks (DecoderMissing)."""
        exe = find_ffmpeg(settings.ffmpeg)
        from pydub import AudioSegment

        AudioSegment.converter = exe  # pydub's own calls (export, playback) use the same binary
        return cls(settings, exe)

    # --- one file ------------------------------------------------------------------------------

    def decode(self, path: Path, tags: Tags | None = None) -> DecodedAudio:
        """Decode the analysis windows of ``path``; raise DecodeFailure with a reason class.

        Raises DecoderMissing (not a property of the file) when ffmpeg itself cannot be started."""
        s = self.settings
        path = Path(path)
        check_file(path)
        if has_not_audio_magic(head_bytes(path)):
            raise DecodeFailure("not_audio", "not an audio file (an image, document, archive or playlist)")
        tags = read_tags(path) if tags is None else tags
        known = finite_duration(tags.duration)
        probed = known is None
        if probed:  # no duration in the tags: ask the demuxer, so the windows span the file
            known = probe_duration(self.ffmpeg, path, s.timeout_s)
        plan = plan_windows(known, s.windows, s.window_s)
        result, samples = self._run(path, plan, s.sample_rate)
        if self._fell_short(result, samples, plan):
            # The duration was wrong (a truncated file, a lying WAV header, a VBR file without an
            # index): the windows fell beyond the real end. Try the demuxer's duration (when the tags
            # gave a longer one), else read from the start.
            retry_known = None if probed else probe_duration(self.ffmpeg, path, s.timeout_s)
            if retry_known is not None and known is not None and retry_known >= known * 0.9:
                retry_known = None
            retry_plan = plan_windows(retry_known, s.windows, s.window_s)
            retry, retry_samples = self._run(path, retry_plan, s.sample_rate)
            if retry_known is not None and self._fell_short(retry, retry_samples, retry_plan):
                retry_known, retry_plan = None, plan_windows(None, s.windows, s.window_s)
                retry, retry_samples = self._run(path, retry_plan, s.sample_rate)
            if retry.returncode == 0 or result.returncode != 0:
                result, samples, plan = retry, retry_samples, retry_plan
                if retry.returncode == 0 and retry_samples.size:
                    known = retry_known  # a header that proved wrong does not give the duration
                # (nothing read from the start either: the header did not prove wrong, ffmpeg cannot read it)
        if known is None and result.returncode == 0 and self._silent_but_full(samples, plan):
            # Nobody knows the length and the start is quiet: never call a track silent from its
            # first minute alone. Find how far it goes, then analyse windows spread over that.
            known = self._find_end(path, plan[0][1])
            if known is not None:
                plan = plan_windows(known, s.windows, s.window_s)
                result, samples = self._run(path, plan, s.sample_rate)
        decoder = "ffmpeg"
        # nothing at all from a file whose header promises audio: ffmpeg cannot read it (e.g. 32-bit FLAC)
        unreadable = samples.size == 0 and known is not None and known >= s.min_duration_s
        if result.returncode != 0 or unreadable:
            failure = (classify_ffmpeg_error(path, result.stderr.decode("utf-8", "replace")) if result.returncode
                       else DecodeFailure("decode_error", "ffmpeg decoded no audio from it (a codec or sample "
                                                          "format this ffmpeg cannot read)"))
            if failure.reason != "decode_error":
                raise failure  # the fallback must not turn text, images or video into "audio"
            try:
                samples = decode_soundfile(path, plan, s.sample_rate)
            except Exception:  # noqa: BLE001 - libsndfile refused it too
                raise failure from None
            if samples.size == 0:
                raise failure
            decoder = "soundfile"
        return self._finish(samples, known, plan, decoder=decoder)

    def _fell_short(self, result: RunResult, samples: np.ndarray, plan: Plan) -> bool:
        """Windows past the start that failed or gave less than half the audio asked for."""
        windowed = len(plan) > 1 or plan[0][0] > 0
        planned = sum(length for _, length in plan) * self.settings.sample_rate
        return windowed and (result.returncode != 0 or samples.size < planned / 2)

    def _silent_but_full(self, samples: np.ndarray, plan: Plan) -> bool:
        """The read came back silent and as long as asked: the file may well go on."""
        full = samples.size >= 0.99 * sum(length for _, length in plan) * self.settings.sample_rate
        return full and _rms(samples) < SILENCE_RMS

    def _find_end(self, path: Path, start_s: float) -> float | None:
        """Where audio can still be read in a file of unknown length: one window at each doubling
        offset from ``start_s`` until one comes back short or empty (a few calls even for hours)."""
        s = self.settings
        offset, end = start_s, None
        while offset < 7 * 86400:
            result, samples = self._run(path, [(offset, s.window_s)], s.sample_rate)
            if result.returncode != 0 or samples.size == 0:
                break
            end = offset + samples.size / s.sample_rate
            if samples.size < 0.99 * s.window_s * s.sample_rate:
                break
            offset *= 2
        return end

    def decode_windows(self, path: Path, plan: Plan, sample_rate: int) -> np.ndarray:
        """The samples of ``plan``'s windows of ``path`` at ``sample_rate`` (an extractor's own rate),
        through ffmpeg or, when ffmpeg refuses the file, libsndfile. Raises DecodeFailure."""
        result, samples = self._run(Path(path), plan, sample_rate)
        if result.returncode == 0:
            return samples
        failure = classify_ffmpeg_error(Path(path), result.stderr.decode("utf-8", "replace"))
        try:
            return decode_soundfile(Path(path), plan, sample_rate)
        except Exception:  # noqa: BLE001 - libsndfile refused it too
            raise failure from None

    def _run(self, path: Path, plan: Plan, sample_rate: int) -> tuple[RunResult, np.ndarray]:
        planned_s = sum(length for _, length in plan)
        max_bytes = int((planned_s + 5) * sample_rate * 4)
        timeout = self.settings.timeout_s + planned_s / 50
        try:
            result = run_bounded(ffmpeg_argv(self.ffmpeg, [Output(path, plan)], sample_rate),
                                 timeout=timeout, max_bytes=max_bytes)
        except OSError as exc:  # the binary went away or cannot run: not the file's fault
            raise DecoderMissing(f"ffmpeg at {self.ffmpeg} cannot be started: {exc}") from None
        if result.timed_out:
            raise DecodeFailure("timeout", f"ffmpeg took longer than {timeout:.0f} s")
        if result.truncated:
            raise DecodeFailure("decode_error", f"ffmpeg wrote more than the expected {max_bytes} bytes")
        if result.stderr:  # ffmpeg's complaints about a file it decoded: for --debug only
            log.debug("%s: ffmpeg: %s", path, result.stderr[:CHATTER_CAP].decode("utf-8", "replace").strip())
        usable = len(result.stdout) - len(result.stdout) % 4
        del result.stdout[usable:]
        return result, np.frombuffer(result.stdout, dtype="<f4")  # owns the bytearray: no copy

    def _finish(self, samples: np.ndarray, known: float | None, plan: Plan, *,
                decoder: str = "ffmpeg") -> DecodedAudio:
        """Checks shared by every decoding path: finite samples, long enough, not silent."""
        sample_rate, min_duration_s = self.settings.sample_rate, self.settings.min_duration_s
        if not np.isfinite(samples.sum(dtype=np.float64)):  # cheap check; repair only when needed
            samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        seconds = samples.size / sample_rate
        if seconds < min_duration_s:
            raise DecodeFailure("too_short", f"{seconds:.2f} s of audio (minimum {min_duration_s:g} s)")
        if _rms(samples) < SILENCE_RMS:
            raise DecodeFailure("silent", "no signal above -90 dBFS in the analysed windows")
        # a header that proved wrong does not give the duration: the whole file was read instead
        duration = seconds if known is None else known
        return DecodedAudio(
            samples=samples, sample_rate=sample_rate, duration=float(duration), windows=plan, decoder=decoder
        )

    # --- several files, one process ------------------------------------------------------------

    def decode_batch(self, items: Sequence[tuple[Path, Tags]]) -> list[DecodedAudio | DecodeFailure]:
        """Decode several files' analysis windows with one ffmpeg process (its start-up, ~50-65 ms, is
        paid once), each file to its own capped output. Anything the batch does not decode cleanly
        (ffmpeg failed, an unknown duration, a short output) is decoded alone with :meth:`decode`,
        which classifies failures and has the fallback, so batching never changes an outcome."""
        s = self.settings
        out: list[DecodedAudio | DecodeFailure | None] = [None] * len(items)
        ready: list[tuple[int, Path, Tags, Plan]] = []
        for i, (path, tags) in enumerate(items):
            try:
                check_file(path)
            except DecodeFailure as exc:
                out[i] = exc
                continue
            if tags.duration is not None and not has_not_audio_magic(head_bytes(path)):
                ready.append((i, Path(path), tags, plan_windows(tags.duration, s.windows, s.window_s)))
        if len(ready) >= 2:
            self._decode_together(ready, out)
        for i, (path, tags) in enumerate(items):
            if out[i] is None:
                try:
                    out[i] = self.decode(path, tags)
                except DecodeFailure as exc:
                    out[i] = exc
        return out  # type: ignore[return-value]

    def _decode_together(self, ready: list[tuple[int, Path, Tags, Plan]],
                         out: list[DecodedAudio | DecodeFailure | None]) -> None:
        sample_rate = self.settings.sample_rate
        with batch_dir() as tmp:
            outputs = [Output(path, plan, os.path.join(tmp, f"{j}.raw")) for j, (_, path, _, plan) in enumerate(ready)]
            planned = [sum(length for _, length in o.plan) for o in outputs]
            biggest = max(int((p + 5) * sample_rate * 4) for p in planned)
            try:
                result = run_bounded(ffmpeg_argv(self.ffmpeg, outputs, sample_rate),
                                     timeout=self.settings.timeout_s * len(ready) + sum(planned) / 50,
                                     max_bytes=1 << 16, fsize_limit=biggest)
            except OSError as exc:
                raise DecoderMissing(f"cannot run ffmpeg at {self.ffmpeg}: {exc.strerror}") from None
            if result.returncode != 0:
                return  # each file is decoded alone, where failures are classified
            for (i, _, tags, plan), o, seconds in zip(ready, outputs, planned, strict=True):
                exists = os.path.exists(o.target)
                samples = np.fromfile(o.target, dtype="<f4") if exists else np.zeros(0, np.float32)
                if samples.size < seconds * sample_rate / 2:
                    continue  # the header's duration was wrong: decode() reads it from the start
                try:
                    out[i] = self._finish(samples, finite_duration(tags.duration), plan)
                except DecodeFailure as exc:
                    out[i] = exc


def _rms(samples: np.ndarray) -> float:
    """RMS level of ``samples`` around their mean (a DC offset is no signal)."""
    return float(np.sqrt(np.mean(np.square(samples - samples.mean(), dtype=np.float64)))) if samples.size else 0.0


@functools.cache
def decoder_for(settings: AnalysisSettings) -> FfmpegDecoder:
    """The process's decoder for ``settings``: ffmpeg is found (and pydub pointed at it) once.

    A cache keyed by the frozen settings value, not state that anyone mutates: the same settings
    always give the same decoder, so the ``load_audio`` hook and the worker share one."""
    return FfmpegDecoder.configured(settings)
