"""Dynamics: loudness statistics and dynamic range from per-frame RMS levels.

Block (11 dims), from the shared STFT's per-frame RMS level in dBFS (floored at -100 dB):

- 0-6: mean and std of the level over non-silent frames (> -70 dBFS; all frames if none is),
  and its 5th, 25th, 50th, 75th and 95th percentiles;
- 7: dynamic range, 95th minus 10th percentile (dB);
- 8: **silence flag**: the share of frames below -60 dBFS (1.0 for digital silence, empty or
  1-sample input, which otherwise produce floor values everywhere);
- 9: crest: sample peak in dBFS minus mean level (the peak is floored at -100 dBFS);
- 10: **clipping flag**: the share of samples at |x| >= 0.999.

DC offset is removed before the levels are measured (it is not music).
"""

from __future__ import annotations

import numpy as np

from recengine.analysis import dsp
from recengine.plugin.spec import hookimpl

SILENT_DB = -60.0
ACTIVE_DB = -70.0


class DynamicsExtractor:
    name = "dynamics"
    version = 1
    dim = 11
    weight = 0.5

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return self.extract_analysis(dsp.analyse(samples, sr))

    def extract_analysis(self, a: dsp.Analysis) -> np.ndarray:
        """The block from the shared analysis of the track (computed once for every extractor)."""
        r = a.rms_db.astype(np.float64)
        if r.size == 0:
            r = np.array([dsp.DB_FLOOR])
        active = r[r > ACTIVE_DB]
        loud = active if active.size else r
        p5, p10, p25, p50, p75, p95 = np.percentile(loud, [5, 10, 25, 50, 75, 95])
        peak_db = 20.0 * np.log10(max(a.peak, 1e-5))
        feats = [
            loud.mean(),
            loud.std(),
            p5,
            p25,
            p50,
            p75,
            p95,
            p95 - p10,
            float(np.mean(r < SILENT_DB)),
            peak_db - loud.mean(),
            a.clip_fraction,
        ]
        return dsp.safe(feats)

    @staticmethod
    def loudness_db(vec: np.ndarray) -> float:
        """Mean active level (dBFS) from an extracted block."""
        return float(vec[0])


@hookimpl
def register_extractors(register):
    register(DynamicsExtractor())
