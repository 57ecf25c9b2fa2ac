"""The fallback decoder for files ffmpeg's demuxers refuse: libsndfile through ``soundfile``.

libsndfile's MP3 decoder (libmpg123) writes its notes about damaged frames straight to file
descriptor 2; they are caught there and logged at debug level, so a scan's terminal stays clean.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recengine.analysis.decode.argv import Plan

log = logging.getLogger(__name__)

#: how much of a library's chatter is kept for the debug log
CHATTER_CAP = 4096


def decode_soundfile(path: Path, windows: Plan, sample_rate: int) -> np.ndarray:
    """Read the same windows as ffmpeg would, downmix (mean of the channels), resample (linear)."""
    import soundfile

    parts = []
    with stderr_logged(f"{path}: libsndfile"), soundfile.SoundFile(str(path)) as sf:
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


@contextlib.contextmanager
def stderr_logged(who: str) -> Iterator[None]:
    """Whatever C code writes to file descriptor 2 inside the block is logged at debug level as
    ``who`` said it, instead of reaching the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read(CHATTER_CAP).decode("utf-8", "replace").strip()
            if text:
                log.debug("%s: %s", who, text)
