"""Example drop-in feature extractor: the crest factor (peak / RMS) of the analysed audio.

Drop a file like this into plugins/ and run `recengine scan`: only this extractor runs on the tracks
already analysed. Bump `version` when the output changes and only this extractor re-runs.
"""

import numpy as np

import recengine


class CrestFactor:
    name = "crest"
    version = 1
    dim = 1
    weight = 0.25  # share of the similarity vector, relative to the built-in blocks

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        if samples.size == 0:
            return np.zeros(1, dtype=np.float32)
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        peak = float(np.abs(samples).max())
        return np.array([np.log1p(peak / max(rms, 1e-9))], dtype=np.float32)


@recengine.hookimpl
def register_extractors(register):
    register(CrestFactor())
