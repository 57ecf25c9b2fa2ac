"""Helpers for tests, plugin authors and the demo: synthetic audio and temporary plugins.

Sounds are made with numpy and encoded by ffmpeg to any format it writes (wav, flac, mp3, ogg,
opus, m4a)::

    from recengine.testing import make_tone, temp_plugin
    make_tone(tmp_path / "a440.ogg", 440.0, seconds=2.0)
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recengine.analysis.decode import find_ffmpeg

SR = 22050

_CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "3"],
    ".opus": ["-c:a", "libopus", "-b:a", "64k"],
    ".flac": ["-c:a", "flac"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
    ".wav": ["-c:a", "pcm_s16le"],
}


def wav_bytes(samples: np.ndarray, sr: int = SR, channels: int = 1) -> bytes:
    """16-bit PCM WAV bytes of float samples in [-1, 1] (shape (n,) or (n, channels))."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def encode(samples: np.ndarray, path: Path, sr: int = SR, *, tags: dict[str, str] | None = None) -> Path:
    """Write ``samples`` to ``path`` in the format its suffix names, through ffmpeg."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".wav" and not tags:
        path.write_bytes(wav_bytes(samples, sr))
        return path
    argv = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "wav", "-i", "pipe:0"]
    for key, value in (tags or {}).items():
        argv += ["-metadata", f"{key}={value}"]
    argv += _CODECS.get(suffix, []) + [str(path)]
    if suffix == ".opus" and sr not in (8000, 12000, 16000, 24000, 48000):
        argv[-1:-1] = ["-ar", "48000"]
    subprocess.run(argv, input=wav_bytes(samples, sr), check=True, capture_output=True, timeout=60)
    return path


def tone(freq: float, seconds: float = 2.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chord(freqs: list[float], seconds: float = 2.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    return (sum(tone(f, seconds, sr, 1.0) for f in freqs) * (amp / len(freqs))).astype(np.float32)


def noise(seconds: float = 2.0, sr: int = SR, amp: float = 0.3, seed: int = 0, colour: str = "white") -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * sr))
    if colour == "pink":
        spec = np.fft.rfft(white)
        spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))
        white = np.fft.irfft(spec, n=white.size)
    white = white / max(np.abs(white).max(), 1e-9)
    return (amp * white).astype(np.float32)


def pulses(bpm: float, seconds: float = 4.0, sr: int = SR, amp: float = 0.8, seed: int = 0) -> np.ndarray:
    """A drum-like pulse train: short decaying noise bursts with a low thump, ``bpm`` per minute."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr), np.float32)
    hit_len = int(0.08 * sr)
    t = np.arange(hit_len) / sr
    hit = (rng.standard_normal(hit_len) * 0.5 + np.sin(2 * np.pi * 60 * t)) * np.exp(-t * 40)
    step = 60.0 / bpm * sr
    pos = 0.0
    while int(pos) + hit_len < out.size:
        out[int(pos):int(pos) + hit_len] += hit
        pos += step
    return (amp * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)


def make_tone(path: Path, freq: float = 440.0, seconds: float = 2.0, **tags: str) -> Path:
    return encode(tone(freq, seconds), path, tags=tags or None)


@contextlib.contextmanager
def temp_plugin(pm, plugin: object, name: str | None = None) -> Iterator[object]:
    """Register ``plugin`` on ``pm`` for the duration of the block (unregistered in ``finally``)."""
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned), or raise AssertionError
    after ``timeout`` seconds. Tests wait on conditions this way, never on fixed sleeps."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value {value!r})")
        time.sleep(interval)


_COUNTING_EXTRACTOR = '''"""Logs every decode (one extract call per decoded file) to $COUNT_LOG as "pid crc32 size";
sleeps $COUNT_SLEEP seconds per call (to hold a scan open in tests). Written by recengine.testing."""
import os
import time
import zlib

import numpy as np

import recengine


class Counting:
    name = "counting"
    version = {version}
    dim = 2

    def extract(self, samples, sr):
        with open(os.environ["COUNT_LOG"], "a") as fh:
            fh.write(f"{{os.getpid()}} {{zlib.crc32(samples.tobytes())}} {{samples.size}}\\n")
        time.sleep(float(os.environ.get("COUNT_SLEEP") or 0))
        return np.array([float(np.abs(samples).mean()), samples.size / sr], dtype=np.float32)


@recengine.hookimpl
def register_extractors(register):
    register(Counting())
'''


def write_counting_plugin(folder: Path, version: int = 1) -> Path:
    """A drop-in extractor that logs each decode to ``$COUNT_LOG`` (count lines to count decodes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "counting.py"
    path.write_text(_COUNTING_EXTRACTOR.format(version=version))
    return path
