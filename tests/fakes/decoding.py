"""The built-in decoder with the default analysis settings, some of them overridden, for tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from recengine.analysis.decode import FfmpegDecoder
from recengine.analysis.settings import AnalysisSettings
from recengine.config import build_config, core_options
from recengine.models import DecodedAudio, Tags

DEFAULTS = AnalysisSettings.from_config(build_config(None, core_options(), {}))


def decoder(ffmpeg: str, **overrides: object) -> FfmpegDecoder:
    """An FfmpegDecoder on ``ffmpeg`` with the config's defaults but ``overrides`` (windows=2, ...)."""
    return FfmpegDecoder(replace(DEFAULTS, **overrides), ffmpeg)


def decode(path: Path, *, ffmpeg: str, tags: Tags | None = None, **overrides: object) -> DecodedAudio:
    """``decoder(ffmpeg, **overrides).decode(path, tags)``."""
    return decoder(ffmpeg, **overrides).decode(path, tags)
