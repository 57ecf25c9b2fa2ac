"""Bounded decoding: ffmpeg (found through pydub, the system, or the imageio-ffmpeg wheel) run with
a timeout in its own process group, seeking to a few analysis windows, downmixing and resampling
while it decodes, its output read in chunks up to a cap. libsndfile (``soundfile``) is the fallback
for files ffmpeg's demuxers refuse. Every failure is a :class:`DecodeFailure` with a reason class.

pydub's ``AudioSegment.from_file`` has no timeout and holds the whole file in memory (pydub #243,
#135), and puts resampling options after the output where ffmpeg ignores them, so we run ffmpeg
ourselves and hand extractors the samples (``DecodedAudio.segment()`` gives pydub's view of them).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import DecodedAudio, Tags

log = logging.getLogger(__name__)

SILENCE_RMS = 10 ** (-90 / 20)  # below -90 dBFS over every window: silent


class DecodeFailure(Exception):
    """A file that cannot be featurised; ``reason`` is one of ``models.FAILURE_REASONS``."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


class DecoderMissing(RuntimeError):
    """No usable ffmpeg: a start-up error, never a per-file one."""


# --- finding ffmpeg -------------------------------------------------------------------------------


def find_ffmpeg() -> str:
    """``RECENGINE_FFMPEG``, else ffmpeg on PATH (pydub's lookup), else the imageio-ffmpeg binary."""
    explicit = os.environ.get("RECENGINE_FFMPEG")
    if explicit:
        if shutil.which(explicit) is None:
            raise DecoderMissing(f"RECENGINE_FFMPEG={explicit} is not an executable")
        return shutil.which(explicit) or explicit
    from pydub.utils import which

    found = which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # not installed, or no binary for this platform
        raise DecoderMissing(
            "ffmpeg was not found: install it (Debian/Ubuntu: apt-get install ffmpeg) "
            f"or `pip install imageio-ffmpeg` ({exc})"
        ) from None


def preflight(ffmpeg: str | None = None, timeout: float = 10.0) -> str:
    """Check that ffmpeg runs and can decode to raw PCM; returns its path. Raises DecoderMissing."""
    exe = ffmpeg or find_ffmpeg()
    try:
        out = subprocess.run([exe, "-hide_banner", "-nostdin", "-version"], capture_output=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DecoderMissing(f"ffmpeg at {exe} does not run: {exc}") from None
    if out.returncode != 0:
        raise DecoderMissing(f"ffmpeg at {exe} exits with {out.returncode}: {out.stderr[:200]!r}")
    with contextlib.suppress(Exception):
        from pydub import AudioSegment

        AudioSegment.converter = exe  # pydub's own calls (export, playback) use the same binary
    return exe


# --- running a bounded child process ------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _child_setup(cpu_s: int, mem_bytes: int) -> None:
    """In the child, before exec: die with the parent, cap CPU time and address space."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    with contextlib.suppress(Exception):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    if mem_bytes:
        with contextlib.suppress(Exception):
            resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))


@dataclass
class RunResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False


def run_bounded(argv: list[str], *, timeout: float, max_bytes: int, mem_limit: int = 2 << 30,
                stderr_cap: int = 64 * 1024) -> RunResult:
    """Run ``argv`` with no stdin in its own process group; read stdout up to ``max_bytes``; kill the
    group on timeout or overflow. Never leaves a child behind."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, close_fds=True,
        preexec_fn=lambda: _child_setup(int(timeout) + 5, mem_limit),  # noqa: PLW1509 - workers are single-threaded
    )
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    timed_out = truncated = False
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        open_streams = 2
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buf = key.data
                if buf is err:
                    if len(err) < stderr_cap:
                        err += chunk[: stderr_cap - len(err)]
                else:
                    buf += chunk
                    if len(buf) > max_bytes:
                        del buf[max_bytes:]
                        truncated = True
                        open_streams = 0
                        break
    finally:
        sel.close()
        if timed_out or truncated or proc.poll() is None:
            _kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, min(5.0, deadline - time.monotonic() + 1)))
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return RunResult(proc.returncode, bytes(out), bytes(err), timed_out, truncated)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# --- probing -------------------------------------------------------------------------------------


def check_file(path: Path) -> os.stat_result:
    """A regular, readable, non-empty file, else a DecodeFailure of the right class."""
    try:
        st = os.stat(path)  # follows symlinks: a link to /dev/zero is a character device
    except FileNotFoundError:
        raise DecodeFailure("vanished", "the file disappeared before it could be read") from None
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    if not stat.S_ISREG(st.st_mode):
        raise DecodeFailure("not_audio", "not a regular file")
    if st.st_size == 0:
        raise DecodeFailure("empty", "the file is empty (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    except FileNotFoundError:
        raise DecodeFailure("vanished", "the file disappeared before it could be read") from None
    return st


def read_tags(path: Path) -> Tags:
    """Tags and duration through mutagen (no subprocess); empty Tags when it cannot tell."""
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
    except Exception:
        return Tags()
    if f is None:
        return Tags()
    duration = getattr(getattr(f, "info", None), "length", None)
    tags = f.tags or {}

    def first(key: str) -> str | None:
        try:
            values = tags.get(key)
        except Exception:
            return None
        if not values:
            return None
        value = str(values[0] if isinstance(values, list) else values).strip()
        return value or None

    number = first("tracknumber")
    try:
        tracknumber = int(number.split("/")[0]) if number else None
    except ValueError:
        tracknumber = None
    ok_duration = float(duration) if isinstance(duration, int | float) and duration > 0 else None
    return Tags(first("artist"), first("album"), first("title"), first("genre"), tracknumber, ok_duration)


def plan_windows(duration: float | None, windows: int, window_s: float) -> list[tuple[float, float]]:
    """Analysis windows ``(start, length)``: the whole file when short, else ``windows`` excerpts
    centred at evenly spread points. Unknown duration: one window of the total length from 0."""
    total = windows * window_s
    if duration is None:
        return [(0.0, total)]
    if duration <= total * 1.2:
        return [(0.0, duration)]
    out = []
    for i in range(windows):
        centre = duration * (i + 0.5) / windows
        start = min(max(0.0, centre - window_s / 2), duration - window_s)
        out.append((round(start, 3), window_s))
    return out


# --- decoding --------------------------------------------------------------------------------------

_NOT_AUDIO_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x7fELF", b"<?xml",
                    b"<!DOCTYPE", b"<html", b"#EXTM3U", b"[playlist]")


def _looks_not_audio(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    if head.startswith(_NOT_AUDIO_MAGIC):
        return True
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _classify_ffmpeg_error(path: Path, stderr: str) -> DecodeFailure:
    low = stderr.lower()
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "ffmpeg failed")[:200]
    if "does not contain any stream" in low or "matches no streams" in low or "no audio" in low \
            or "output file does not contain any stream" in low:
        return DecodeFailure("no_audio_stream", "the file has no audio stream")
    if "permission denied" in low:
        return DecodeFailure("permission", "permission denied")
    if "no such file" in low:
        return DecodeFailure("vanished", "the file disappeared while it was read")
    if _looks_not_audio(path):
        return DecodeFailure("not_audio", f"not an audio file ({last})")
    return DecodeFailure("decode_error", last)


def ffmpeg_argv(ffmpeg: str, path: Path, windows: list[tuple[float, float]], sample_rate: int) -> list[str]:
    """One ffmpeg call: each window is an input seeked with ``-ss`` (before ``-i``, so only that part
    is decoded), concatenated, downmixed to mono and resampled to ``sample_rate`` as float32."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file"]
    url = "file:" + str(Path(path).absolute())
    for start, length in windows:
        if start > 0:
            argv += ["-ss", f"{start:.3f}"]
        argv += ["-t", f"{length:.3f}", "-i", url]
    if len(windows) > 1:
        pads = "".join(f"[{i}:a:0]" for i in range(len(windows)))
        argv += ["-filter_complex", f"{pads}concat=n={len(windows)}:v=0:a=1[a]", "-map", "[a]"]
    else:
        argv += ["-map", "0:a:0"]
    argv += ["-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    return argv


def _decode_soundfile(path: Path, windows: list[tuple[float, float]], sample_rate: int) -> np.ndarray:
    """Fallback through libsndfile: read the same windows, downmix, resample (linear)."""
    import soundfile

    parts = []
    with soundfile.SoundFile(str(path)) as sf:
        native = sf.samplerate
        for start, length in windows:
            sf.seek(min(int(start * native), max(0, sf.frames - 1)))
            block = sf.read(int(length * native), dtype="float32", always_2d=True)
            parts.append(block.mean(axis=1))
    data = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if native != sample_rate and data.size:
        n_out = int(round(data.size * sample_rate / native))
        data = np.interp(np.linspace(0, data.size - 1, n_out), np.arange(data.size), data).astype(np.float32)
    return data.astype(np.float32, copy=False)


def decode(path: Path, *, ffmpeg: str, sample_rate: int = 22050, windows: int = 3, window_s: float = 30.0,
           timeout_s: float = 60.0, min_duration_s: float = 1.0, tags: Tags | None = None) -> DecodedAudio:
    """Decode the analysis windows of ``path``; raise DecodeFailure with a reason class."""
    path = Path(path)
    check_file(path)
    tags = read_tags(path) if tags is None else tags
    plan = plan_windows(tags.duration, windows, window_s)
    planned_s = sum(length for _, length in plan)
    max_bytes = int((planned_s + 5) * sample_rate * 4)
    timeout = timeout_s + planned_s / 50
    result = run_bounded(ffmpeg_argv(ffmpeg, path, plan, sample_rate), timeout=timeout, max_bytes=max_bytes)
    decoder = "ffmpeg"
    if result.timed_out:
        raise DecodeFailure("timeout", f"ffmpeg took longer than {timeout:.0f} s")
    if result.returncode != 0 or not result.stdout:
        failure = _classify_ffmpeg_error(path, result.stderr.decode("utf-8", "replace"))
        try:
            samples = _decode_soundfile(path, plan, sample_rate)
            decoder = "soundfile"
        except Exception:
            if not result.stdout and result.returncode == 0:
                failure = DecodeFailure("no_audio_stream", "ffmpeg found no audio to decode")
            raise failure from None
        if samples.size == 0:
            raise failure
    else:
        usable = len(result.stdout) - len(result.stdout) % 4
        samples = np.frombuffer(result.stdout[:usable], dtype="<f4").copy()
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    seconds = samples.size / sample_rate
    if seconds < min_duration_s:
        raise DecodeFailure("too_short", f"{seconds:.2f} s of audio (minimum {min_duration_s:g} s)")
    rms = float(np.sqrt(np.mean(np.square(samples - samples.mean(), dtype=np.float64))))
    if rms < SILENCE_RMS:
        raise DecodeFailure("silent", "no signal above -90 dBFS in the analysed windows")
    duration = tags.duration if tags.duration is not None else seconds
    return DecodedAudio(samples=samples, sample_rate=sample_rate, duration=float(duration), windows=plan,
                        decoder=decoder)


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC
