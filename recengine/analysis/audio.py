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
import fcntl
import logging
import math
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

from recengine.models import DecodedAudio, Tags
from recengine.plugin.isolation import HookSignal

log = logging.getLogger(__name__)

SILENCE_RMS = 10 ** (-90 / 20)  # below -90 dBFS over every window: silent


class DecodeFailure(HookSignal):
    """A file that cannot be featurised; ``reason`` is one of ``models.FAILURE_REASONS``."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


class DecoderMissing(HookSignal, RuntimeError):
    """No usable ffmpeg: a start-up error, never a per-file one."""


# --- finding ffmpeg -------------------------------------------------------------------------------

_INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install ffmpeg) or `pip install imageio-ffmpeg`"


def find_ffmpeg(prefer: str = "auto") -> str:
    """``RECENGINE_FFMPEG``, else (``prefer="auto"``) ffmpeg on PATH (pydub's lookup), else the
    imageio-ffmpeg binary; ``prefer="bundled"`` takes the wheel's binary first (a static build that
    starts ~50 ms faster than a distribution's dynamically linked one), ``"system"`` only PATH's."""
    explicit = os.environ.get("RECENGINE_FFMPEG")
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise DecoderMissing(
                f"RECENGINE_FFMPEG={explicit} is not an executable: point it at an ffmpeg binary, or unset "
                f"it after installing ffmpeg ({_INSTALL_HINT})"
            )
        return found
    from pydub.utils import which

    def bundled() -> str | None:
        try:
            import imageio_ffmpeg

            return imageio_ffmpeg.get_ffmpeg_exe()
        except Exception:  # not installed, or no binary for this platform
            return None

    order = {"auto": (lambda: which("ffmpeg"), bundled), "bundled": (bundled, lambda: which("ffmpeg")),
             "system": (lambda: which("ffmpeg"),)}.get(prefer)
    if order is None:
        raise ValueError(f"prefer must be auto, bundled or system, not {prefer!r}")
    for candidate in order:
        found = candidate()
        if found:
            return found
    raise DecoderMissing(f"ffmpeg was not found: {_INSTALL_HINT}")


def preflight(ffmpeg: str | None = None, timeout: float = 10.0) -> str:
    """Check that ffmpeg runs and can decode to raw PCM; returns its path. Raises DecoderMissing."""
    exe = ffmpeg or find_ffmpeg()
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-version"],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
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


def _child_setup(cpu_s: int, mem_bytes: int, fsize: int = 0) -> None:
    """In the child, before exec: die with the parent, cap CPU time, address space and file size."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    with contextlib.suppress(Exception):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    if mem_bytes:
        with contextlib.suppress(Exception):
            resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    if fsize:
        with contextlib.suppress(Exception):
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


@dataclass
class RunResult:
    returncode: int | None
    stdout: bytearray
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False


def run_bounded(
    argv: list[str], *, timeout: float, max_bytes: int, mem_limit: int = 2 << 30, stderr_cap: int = 64 * 1024,
    fsize_limit: int = 0
) -> RunResult:
    """Run ``argv`` with no stdin in its own process group; read stdout up to ``max_bytes``; kill the
    group on timeout or overflow. Never leaves a child behind.

    Raises ``OSError`` when ``argv[0]`` cannot be started."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        preexec_fn=lambda: _child_setup(int(timeout) + 5, mem_limit, fsize_limit),  # noqa: PLW1509 - workers are single-threaded
    )
    assert proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(OSError):  # a 1 MiB pipe: fewer wake-ups and reads per track
        fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, 1 << 20)
    out = bytearray(max_bytes + 1)  # read straight into one buffer: no chunk list, no joins
    view = memoryview(out)
    n = 0
    err = bytearray()
    deadline = time.monotonic() + timeout
    timed_out = truncated = False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    try:
        open_streams = 2
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                if key.data == "err":
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                    elif len(err) < stderr_cap:
                        err += chunk[: stderr_cap - len(err)]
                    continue
                got = os.readv(key.fd, [view[n:]])
                if not got:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                n += got
                if n > max_bytes:
                    n = max_bytes
                    truncated = True
                    open_streams = 0
                    break
        if not (timed_out or truncated) and not _wait_exited(proc.pid, deadline):
            timed_out = True  # closed its pipes but kept running
    finally:
        sel.close()
        # The leader is not reaped yet (a zombie at worst), so its pid cannot have been reused and
        # the group kill reaches only our child and whatever it started (stragglers included).
        _kill_group(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    view.release()
    del out[n:]
    return RunResult(proc.returncode, out, bytes(err), timed_out, truncated)


_F_SETPIPE_SZ = 1031  # Linux fcntl: set a pipe's capacity


def _wait_exited(pid: int, deadline: float) -> bool:
    """Wait until ``pid`` has exited (without reaping it) or ``deadline``; True if it exited."""
    pause = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


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
        # non-blocking: if the path became a FIFO since the stat, opening it must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    except FileNotFoundError:
        raise DecodeFailure("vanished", "the file disappeared before it could be read") from None
    except OSError as exc:
        raise DecodeFailure("not_audio", f"cannot be opened as a file ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise DecodeFailure("not_audio", "not a regular file")
    if st.st_size == 0:
        raise DecodeFailure("empty", "the file is empty (0 bytes)")
    return st


def read_tags(path: Path) -> Tags:
    """Tags and duration through mutagen (no subprocess); empty Tags when it cannot tell.

    mutagen raises all kinds of errors on damaged or hostile files (and its lazily parsed tag
    objects can raise later), so everything it does is guarded."""
    try:
        return _read_tags(path)
    except Exception as exc:  # noqa: BLE001 - a tag reader must never fail a file
        log.debug("%s: tags unreadable: %s", path, exc)
        return Tags()


def _read_tags(path: Path) -> Tags:
    import mutagen

    f = mutagen.File(path, easy=True)
    if f is None:
        return Tags()
    duration = getattr(getattr(f, "info", None), "length", None)
    tags = f.tags if f.tags is not None else {}

    def first(key: str) -> str | None:
        try:
            values = tags.get(key)
            if not values:
                return None
            value = str(values[0] if isinstance(values, list) else values).strip()
        except Exception:  # noqa: BLE001
            return None
        return value or None

    number = first("tracknumber")
    try:
        tracknumber = int(number.split("/")[0]) if number else None
    except ValueError:
        tracknumber = None
    ok_duration = _finite_duration(duration)
    return Tags(first("artist"), first("album"), first("title"), first("genre"), tracknumber, ok_duration)


def _finite_duration(value: object) -> float | None:
    """A usable duration in seconds, or None (missing, zero, negative, NaN, infinite, absurd)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0 or value > 7 * 86400:
        return None
    return value


def plan_windows(duration: float | None, windows: int, window_s: float) -> list[tuple[float, float]]:
    """Analysis windows ``(start, length)``: the whole file when short, else ``windows`` excerpts
    centred at evenly spread points. Unknown duration: one window of the total length from 0."""
    total = windows * window_s
    duration = _finite_duration(duration)
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

# Signatures of files that are certainly not audio. Playlists and concat lists are among them: they
# make ffmpeg's demuxers open other files (an HLS list can point anywhere), so they never reach it.
_NOT_AUDIO_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF",
    b"PK\x03\x04",
    b"\x7fELF",
    b"<?xml",
    b"<!DOCTYPE",
    b"<html",
    b"#EXTM3U",
    b"[playlist]",
    b"ffconcat",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"SQLite format 3",
)
_BOM = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _head(path: Path, n: int = 512) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def _has_not_audio_magic(head: bytes) -> bool:
    if head.startswith(b"BM"):  # a Windows bitmap: "BM", file size, two reserved zero words
        return len(head) >= 10 and head[6:10] == b"\0\0\0\0"
    return head.startswith(_NOT_AUDIO_MAGIC)


def _looks_like_text(head: bytes) -> bool:
    """The first bytes are printable text (UTF-8, a multi-byte character possibly cut at the end)."""
    for bom in _BOM:
        if head.startswith(bom):
            return True
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(c.isprintable() or c in "\r\n\t\f" for c in text)
    return False


def _looks_not_audio(path: Path) -> bool:
    head = _head(path)
    return _has_not_audio_magic(head) or _looks_like_text(head)


# ffmpeg's words for "there is no audio stream to map" (they vary between versions)
_NO_STREAM = (
    "does not contain any stream",
    "matches no streams",
    "no audio stream",
    "output file is empty, nothing was encoded",
    "could not find any audio stream",
)
# generic last lines that say nothing about the file
_GENERIC = (
    "error marking filters as finished",
    "conversion failed!",
    "exiting normally",
    "error while filtering: end of file",
    "nothing was written into output file",
)


def _message(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(g in ln.lower() for g in _GENERIC)]
    return ((useful or lines or ["ffmpeg failed"])[0])[:200]


def _classify_ffmpeg_error(path: Path, stderr: str) -> DecodeFailure:
    low = stderr.lower()
    last = _message(stderr)
    head = _head(path)
    if _has_not_audio_magic(head):  # an image has "no audio stream" too, but it is no audio file
        return DecodeFailure("not_audio", f"not an audio file ({last})")
    if any(marker in low for marker in _NO_STREAM):
        return DecodeFailure("no_audio_stream", "the file has no audio stream")
    if "permission denied" in low:
        return DecodeFailure("permission", "permission denied")
    if "no such file" in low or not os.path.exists(path):
        return DecodeFailure("vanished", "the file disappeared while it was read")
    if _looks_like_text(head):
        return DecodeFailure("not_audio", f"not an audio file ({last})")
    return DecodeFailure("decode_error", last)


def ffmpeg_argv(ffmpeg: str, path: Path, windows: list[tuple[float, float]], sample_rate: int) -> list[str]:
    """One ffmpeg call: each window is an input seeked with ``-ss`` (before ``-i``, so only that part
    is decoded), concatenated, downmixed to mono and resampled to ``sample_rate`` as float32.

    ``-protocol_whitelist`` is an input option, so every input gets it (given once, it would
    guard only the first)."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    url = "file:" + str(Path(path).absolute())
    for start, length in windows:
        argv += ["-protocol_whitelist", "file"]
        if start > 0:
            argv += ["-ss", f"{start:.3f}"]
        argv += ["-t", f"{length:.3f}", "-i", url]
    # Each window is downmixed and resampled in the graph: -ac 1 alone sums channels at -3 dB each
    # (stereo peaks reach 1.41, 5.1 goes past 1.7), and the options that stop that do not reach a
    # complex graph's converters. rematrix_maxval=1 makes the mix unable to clip: a mean for stereo,
    # as the libsndfile fallback computes, so features do not depend on a track's channel count.
    chain = f"aresample={sample_rate}:rematrix_maxval=1,aformat=sample_fmts=flt:channel_layouts=mono"
    graph = ";".join(f"[{i}:a:0]{chain}[w{i}]" for i in range(len(windows)))
    if len(windows) > 1:
        pads = "".join(f"[w{i}]" for i in range(len(windows)))
        graph += f";{pads}concat=n={len(windows)}:v=0:a=1[c]"
    else:
        graph = graph.replace("[w0]", "[c]")
    graph += ";[c]asetnsamples=n=65536:p=0[a]"  # 256 KiB writes instead of ~4 KiB frames
    argv += ["-filter_complex", graph, "-map", "[a]"]
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


def _run_ffmpeg(
    ffmpeg: str, path: Path, plan: list[tuple[float, float]], sample_rate: int, timeout_s: float
) -> tuple[RunResult, np.ndarray]:
    planned_s = sum(length for _, length in plan)
    max_bytes = int((planned_s + 5) * sample_rate * 4)
    timeout = timeout_s + planned_s / 50
    try:
        result = run_bounded(
            ffmpeg_argv(ffmpeg, path, plan, sample_rate), timeout=timeout, max_bytes=max_bytes
        )
    except OSError as exc:  # the binary went away or cannot run: not the file's fault
        raise DecoderMissing(f"ffmpeg at {ffmpeg} cannot be started: {exc}") from None
    if result.timed_out:
        raise DecodeFailure("timeout", f"ffmpeg took longer than {timeout:.0f} s")
    if result.truncated:
        raise DecodeFailure("decode_error", f"ffmpeg wrote more than the expected {max_bytes} bytes")
    usable = len(result.stdout) - len(result.stdout) % 4
    del result.stdout[usable:]
    return result, np.frombuffer(result.stdout, dtype="<f4")  # owns the bytearray: no copy


def decode(
    path: Path,
    *,
    ffmpeg: str,
    sample_rate: int = 22050,
    windows: int = 3,
    window_s: float = 30.0,
    timeout_s: float = 60.0,
    min_duration_s: float = 1.0,
    tags: Tags | None = None,
) -> DecodedAudio:
    """Decode the analysis windows of ``path``; raise DecodeFailure with a reason class.

    Raises DecoderMissing (not a property of the file) when ffmpeg itself cannot be started."""
    path = Path(path)
    check_file(path)
    if _has_not_audio_magic(_head(path)):
        raise DecodeFailure("not_audio", "not an audio file (an image, document, archive or playlist)")
    tags = read_tags(path) if tags is None else tags
    plan = plan_windows(tags.duration, windows, window_s)
    result, samples = _run_ffmpeg(ffmpeg, path, plan, sample_rate, timeout_s)
    windowed = len(plan) > 1 or plan[0][0] > 0
    planned = sum(length for _, length in plan) * sample_rate
    header_wrong = False
    if windowed and (result.returncode != 0 or samples.size < planned / 2):
        # The duration in the header was wrong (a truncated file, a lying WAV header, a VBR file
        # without an index): the windows fell beyond the real end. Read from the start instead.
        retry_plan = plan_windows(None, windows, window_s)
        retry, retry_samples = _run_ffmpeg(ffmpeg, path, retry_plan, sample_rate, timeout_s)
        if retry.returncode == 0 or result.returncode != 0:
            result, samples, plan = retry, retry_samples, retry_plan
            header_wrong = retry.returncode == 0
    decoder = "ffmpeg"
    if result.returncode != 0:
        failure = _classify_ffmpeg_error(path, result.stderr.decode("utf-8", "replace"))
        if failure.reason != "decode_error":
            raise failure  # the fallback must not turn text, images or video into "audio"
        try:
            samples = _decode_soundfile(path, plan, sample_rate)
        except Exception:  # noqa: BLE001 - libsndfile refused it too
            raise failure from None
        if samples.size == 0:
            raise failure
        decoder = "soundfile"
    return _finish(samples, tags, plan, sample_rate, min_duration_s, header_wrong=header_wrong, decoder=decoder)


def _finish(samples: np.ndarray, tags: Tags, plan: list[tuple[float, float]], sample_rate: int,
            min_duration_s: float, *, header_wrong: bool = False, decoder: str = "ffmpeg") -> DecodedAudio:
    """Checks shared by every decoding path: finite samples, long enough, not silent."""
    if not np.isfinite(samples.sum(dtype=np.float64)):  # cheap check; repair only when needed
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    seconds = samples.size / sample_rate
    if seconds < min_duration_s:
        raise DecodeFailure("too_short", f"{seconds:.2f} s of audio (minimum {min_duration_s:g} s)")
    rms = float(np.sqrt(np.mean(np.square(samples - samples.mean(), dtype=np.float64))))
    if rms < SILENCE_RMS:
        raise DecodeFailure("silent", "no signal above -90 dBFS in the analysed windows")
    # a header that proved wrong does not give the duration: the whole file was read instead
    known = _finite_duration(tags.duration)
    duration = seconds if header_wrong or known is None else known
    return DecodedAudio(
        samples=samples, sample_rate=sample_rate, duration=float(duration), windows=plan, decoder=decoder
    )


BATCH_PREFIX = "recengine-batch-"


def sweep_batch_dirs() -> int:
    """Remove batch scratch folders whose worker died before cleaning up (killed, or stopped by
    SIGTERM during a batch). Their names carry the owner's pid. Returns how many were removed."""
    import shutil
    import tempfile

    removed = 0
    for base in {_scratch_dir() or tempfile.gettempdir(), tempfile.gettempdir()}:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if not name.startswith(BATCH_PREFIX):
                continue
            pid = name[len(BATCH_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and pid_alive(int(pid)):
                continue
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _scratch_dir() -> str | None:
    """RAM-backed scratch space for batch outputs when there is some, else the default temp dir."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def decode_batch(items: list[tuple[Path, Tags]], *, ffmpeg: str, sample_rate: int = 22050, windows: int = 3,
                 window_s: float = 20.0, timeout_s: float = 60.0, min_duration_s: float = 1.0,
                 ) -> list[DecodedAudio | DecodeFailure]:
    """Decode several files' analysis windows with one ffmpeg process (its start-up, ~50-65 ms, is
    paid once), each file to its own capped output. Anything the batch does not decode cleanly
    (ffmpeg failed, an unknown duration, a short output) is decoded alone with :func:`decode`, which
    classifies failures and has the fallback, so batching never changes an outcome."""
    out: list[DecodedAudio | DecodeFailure | None] = [None] * len(items)
    ready: list[tuple[int, Path, Tags, list[tuple[float, float]]]] = []
    for i, (path, tags) in enumerate(items):
        try:
            check_file(path)
        except DecodeFailure as exc:
            out[i] = exc
            continue
        if tags.duration is not None and not _has_not_audio_magic(_head(path)):
            ready.append((i, Path(path), tags, plan_windows(tags.duration, windows, window_s)))
    if len(ready) >= 2:
        _decode_together(ready, out, ffmpeg, sample_rate, timeout_s, min_duration_s)
    for i, (path, tags) in enumerate(items):
        if out[i] is None:
            try:
                out[i] = decode(path, ffmpeg=ffmpeg, sample_rate=sample_rate, windows=windows, window_s=window_s,
                                timeout_s=timeout_s, min_duration_s=min_duration_s, tags=tags)
            except DecodeFailure as exc:
                out[i] = exc
    return out  # type: ignore[return-value]


def _decode_together(ready, out, ffmpeg: str, sample_rate: int, timeout_s: float, min_duration_s: float) -> None:
    import tempfile

    chain = f"aresample={sample_rate}:rematrix_maxval=1,aformat=sample_fmts=flt:channel_layouts=mono"
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    graph, maps, idx, biggest, total_s = [], [], 0, 0, 0.0
    with tempfile.TemporaryDirectory(prefix=f"{BATCH_PREFIX}{os.getpid()}-", dir=_scratch_dir()) as tmp:
        for j, (_, path, _, plan) in enumerate(ready):
            pads = ""
            for start, length in plan:
                if start > 0:
                    argv += ["-ss", f"{start:.3f}"]
                argv += ["-protocol_whitelist", "file", "-t", f"{length:.3f}", "-i", "file:" + str(path.absolute())]
                graph.append(f"[{idx}:a:0]{chain}[w{idx}]")
                pads += f"[w{idx}]"
                idx += 1
            graph.append(f"{pads}concat=n={len(plan)}:v=0:a=1,asetnsamples=n=65536:p=0[o{j}]")
            planned = sum(length for _, length in plan)
            total_s += planned
            biggest = max(biggest, int((planned + 5) * sample_rate * 4))
            maps += ["-map", f"[o{j}]", "-vn", "-sn", "-dn", "-f", "f32le", "-y", os.path.join(tmp, f"{j}.raw")]
        argv += ["-filter_complex", ";".join(graph), *maps]
        try:
            result = run_bounded(argv, timeout=timeout_s * len(ready) + total_s / 50, max_bytes=1 << 16,
                                 fsize_limit=biggest)
        except OSError as exc:
            raise DecoderMissing(f"cannot run ffmpeg at {ffmpeg}: {exc.strerror}") from None
        if result.returncode != 0:
            return  # each file is decoded alone, where failures are classified
        for j, (i, _, tags, plan) in enumerate(ready):
            raw = os.path.join(tmp, f"{j}.raw")
            samples = np.fromfile(raw, dtype="<f4") if os.path.exists(raw) else np.zeros(0, np.float32)
            if samples.size < sum(length for _, length in plan) * sample_rate / 2:
                continue  # the header's duration was wrong: decode() reads it from the start
            try:
                out[i] = _finish(samples, tags, plan, sample_rate, min_duration_s)
            except DecodeFailure as exc:
                out[i] = exc


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC
