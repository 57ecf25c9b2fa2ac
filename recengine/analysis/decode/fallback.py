"""The fallback decoder for files ffmpeg's demuxers refuse: libsndfile through ``soundfile``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recengine.analysis.decode.argv import Plan


def decode_soundfile(path: Path, windows: Plan, sample_rate: int) -> np.ndarray:
    """Read the same windows as ffmpeg would, downmix (mean of the channels), resample (linear)."""
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
