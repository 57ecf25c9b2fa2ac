"""Timbre: a vector embedding of the Gaussian of MFCC frames, plus MFCC change statistics.

Block (270 dims, all from the shared analysis in :mod:`recengine.analysis.dsp`):

- 20: mean of the 20 MFCCs (coefficient 0, overall level, included),
- 210: upper triangle of the matrix logarithm of their covariance (regularised by 1e-3 * I),
  off-diagonal entries multiplied by sqrt(2) so that the Euclidean distance between blocks is the
  Frobenius distance between log-covariances (the log-Euclidean metric on covariance matrices),
- 20 + 20: mean absolute frame-to-frame MFCC difference and its standard deviation.

This is the index-friendly stand-in for the Musly-style single-Gaussian model (which needs a
symmetric KL divergence per pair). Edge cases: fewer than two frames (silence, 1 sample, empty
input) give a zero covariance, hence log(1e-3) on the diagonal and zeros elsewhere: finite.
"""

from __future__ import annotations

import numpy as np

from recengine.analysis import dsp
from recengine.plugin.spec import hookimpl

COV_REG = 1e-3


def gaussian_embedding(frames: np.ndarray, reg: float = COV_REG) -> np.ndarray:
    """Mean and log-covariance upper triangle of ``frames`` (n, d): d + d (d + 1) / 2 values."""
    f = np.asarray(frames, dtype=np.float64)
    n, d = f.shape
    mu = f.mean(axis=0) if n else np.zeros(d)
    if n >= 2:
        c = np.cov(f, rowvar=False).reshape(d, d)
    else:
        c = np.zeros((d, d))
    c = c + reg * np.eye(d)
    w, v = np.linalg.eigh(c)
    logc = (v * np.log(np.maximum(w, reg))) @ v.T
    iu = np.triu_indices(d)
    tri = logc[iu] * np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))
    return np.concatenate([mu, tri])


class TimbreExtractor:
    name = "timbre"
    version = 1
    dim = dsp.N_MFCC + dsp.N_MFCC * (dsp.N_MFCC + 1) // 2 + 2 * dsp.N_MFCC  # 270
    weight = 0.75

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return self.extract_analysis(dsp.analyse(samples, sr))

    def extract_analysis(self, a: dsp.Analysis) -> np.ndarray:
        """The block from the shared analysis of the track (computed once for every extractor)."""
        m = a.mfcc
        if m.shape[0] >= 2:
            dm = np.diff(m, axis=0)
            delta = np.concatenate([np.abs(dm).mean(axis=0), dm.std(axis=0)])
        else:
            delta = np.zeros(2 * m.shape[1])
        return dsp.safe(np.concatenate([gaussian_embedding(m), delta]))


@hookimpl
def register_extractors(register):
    register(TimbreExtractor())
