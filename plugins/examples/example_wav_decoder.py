"""Example decoder: reads WAV files with Python's own ``wave`` module instead of ffmpeg.

``load_audio`` is a firstresult hook: return a ``DecodedAudio`` to decode the file, or ``None``
to let the next decoder (finally the built-in ffmpeg one) try. It runs in the scan workers and
must be bounded: here only the first ``analysis.windows * analysis.window_s`` seconds are read.
"""

import wave

import numpy as np

import recengine
from recengine.models import DecodedAudio


@recengine.hookimpl
def load_audio(path, config):
    if path.suffix.lower() != ".wav":
        return None
    sr_out = config.get("analysis.sample_rate")
    seconds = config.get("analysis.windows") * config.get("analysis.window_s")
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                return None  # leave 8/24/32-bit files to ffmpeg
            rate, channels, total = w.getframerate(), w.getnchannels(), w.getnframes()
            frames = w.readframes(min(total, int(seconds * rate)))
    except (wave.Error, EOFError):
        return None
    data = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    data = data.reshape(-1, channels).mean(axis=1)
    if rate != sr_out and data.size:
        n_out = int(data.size * sr_out / rate)
        data = np.interp(np.linspace(0, data.size - 1, n_out), np.arange(data.size), data).astype(np.float32)
    return DecodedAudio(samples=data, sample_rate=sr_out, duration=total / rate, decoder="wave")
