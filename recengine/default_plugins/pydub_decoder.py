"""The default decoder: ffmpeg (as pydub finds it) through the bounded runner in ``recengine.analysis.audio``.

``trylast``: a plugin's ``load_audio`` runs first and wins by returning a ``DecodedAudio``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from recengine.analysis.audio import decode, find_ffmpeg
from recengine.plugin.spec import hookimpl


@functools.cache
def _ffmpeg(prefer: str) -> str:
    return find_ffmpeg(prefer)


@hookimpl(trylast=True)
def load_audio(path: Path, config):
    return decode(
        path,
        ffmpeg=_ffmpeg(config.get("analysis.ffmpeg", "auto")),
        sample_rate=config.get("analysis.sample_rate", 22050),
        windows=config.get("analysis.windows", 3),
        window_s=config.get("analysis.window_s", 20.0),
        timeout_s=config.get("analysis.timeout_s", 60.0),
        min_duration_s=config.get("analysis.min_duration_s", 1.0),
    )
