"""The analysis settings, read once from the validated config (defaults live in ``core_options``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AnalysisSettings:
    """How tracks are decoded for analysis: the ``analysis.*`` keys of the config.

    Frozen and hashable, so a process can keep one decoder per settings value."""

    sample_rate: int  # Hz: ffmpeg downmixes and resamples to this while decoding
    windows: int  # excerpts decoded per track
    window_s: float  # length of each excerpt (s)
    ffmpeg: str  # "auto", "system" or "bundled"
    timeout_s: float  # decoder time limit per file (s), plus a little per minute decoded
    min_duration_s: float  # shorter files are ``too_short``

    @classmethod
    def from_config(cls, config: Any) -> AnalysisSettings:
        return cls(
            sample_rate=int(config["analysis.sample_rate"]),
            windows=int(config["analysis.windows"]),
            window_s=float(config["analysis.window_s"]),
            ffmpeg=str(config["analysis.ffmpeg"]),
            timeout_s=float(config["analysis.timeout_s"]),
            min_duration_s=float(config["analysis.min_duration_s"]),
        )

    @property
    def planned_s(self) -> float:
        """Seconds of audio asked for when a track's duration is unknown (every window, end to end)."""
        return self.windows * self.window_s
