"""One decoded track as the extractors see it: its samples at each rate an extractor asks for, and the
shared short-time analysis (:class:`recengine.analysis.dsp.Analysis`) computed once per rate.

The worker makes one per decoded track and hands it to every extractor in turn; nothing outlives
the track. A rate below the analysis rate is resampled from the decoded windows
(``scipy.signal.resample_poly``: the band it keeps is all there); a higher rate is decoded again from
the file at that rate (resampling up cannot bring back what the first decode cut off).
"""

from __future__ import annotations

from collections.abc import Callable
from math import gcd

import numpy as np

from recengine.analysis.dsp import Analysis, analyse
from recengine.models import DecodedAudio

#: ``redecode(rate) -> samples``: the same windows decoded again at ``rate``
Redecode = Callable[[int], np.ndarray]


class TrackAudio:
    """The decoded windows of one track, at the analysis rate and on demand at others."""

    def __init__(self, audio: DecodedAudio, redecode: Redecode | None = None):
        self.audio = audio
        self._redecode = redecode
        self._samples: dict[int, np.ndarray] = {audio.sample_rate: audio.samples}
        self._analysis: dict[int, Analysis] = {}

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    def samples(self, rate: int | None = None) -> np.ndarray:
        """Mono float32 samples at ``rate`` (default: the analysis rate), made once per rate."""
        rate = self.sample_rate if rate is None else int(rate)
        if rate not in self._samples:
            self._samples[rate] = self._convert(rate)
        return self._samples[rate]

    def analysis(self, rate: int | None = None) -> Analysis:
        """The shared STFT, mel and level analysis of :meth:`samples` at ``rate``, made once per rate."""
        rate = self.sample_rate if rate is None else int(rate)
        if rate not in self._analysis:
            self._analysis[rate] = analyse(self.samples(rate), rate)
        return self._analysis[rate]

    def _convert(self, rate: int) -> np.ndarray:
        if rate > self.sample_rate and self._redecode is not None:
            return np.asarray(self._redecode(rate), dtype=np.float32)
        return resample(self.audio.samples, self.sample_rate, rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``samples`` at ``to_rate`` through a polyphase filter (``scipy.signal.resample_poly``), float32."""
    from scipy.signal import resample_poly

    g = gcd(int(from_rate), int(to_rate))
    return resample_poly(np.asarray(samples, dtype=np.float32), to_rate // g, from_rate // g).astype(np.float32)
