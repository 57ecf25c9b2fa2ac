"""Tonal: key-normalised chroma profile and key strength.

The chroma comes from the shared STFT by spectral peak picking with parabolic frequency
interpolation (80 Hz - 5 kHz), each peak's magnitude added to its nearest pitch class, each frame
normalised to unit sum, then averaged over frames into a 12-bin profile (:meth:`profile`, C = 0).
The key is the best Pearson correlation of that profile with the 24 rotated Krumhansl-Kessler
major/minor key profiles (published probe-tone ratings).

Block (15 dims):

- 0-11: the profile rotated so the estimated tonic comes first (key-invariant: two pieces in
  different keys with the same harmony look alike);
- 12: key strength (the best correlation, -1..1);
- 13: mode: 1.0 if the best key is minor, else 0.0;
- 14: key clarity: best minus second-best correlation.

Silence or atonal input (a flat or empty profile) gives zeros: no key, no strength.
"""

from __future__ import annotations

import numpy as np

from recengine.analysis import dsp
from recengine.plugin.spec import hookimpl

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _key_templates() -> np.ndarray:
    rows = [np.roll(KK_MAJOR, s) for s in range(12)] + [np.roll(KK_MINOR, s) for s in range(12)]
    t = np.array(rows)
    t = t - t.mean(axis=1, keepdims=True)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


_TEMPLATES = _key_templates()


def key_correlations(profile: np.ndarray) -> np.ndarray:
    """Pearson correlation of a 12-bin profile with C..B major (0-11) and C..B minor (12-23)."""
    p = np.asarray(profile, dtype=np.float64)
    p = p - p.mean()
    n = np.linalg.norm(p)
    if n < 1e-9:
        return np.zeros(24)
    return _TEMPLATES @ (p / n)


class TonalExtractor:
    name = "tonal"
    version = 1
    dim = 15
    weight = 0.25

    def profile(self, samples: np.ndarray, sr: int) -> np.ndarray:
        """Mean chroma (12, C = 0, sums to 1; zeros for silence) of ``samples``."""
        return self.profile_of(dsp.analyse(samples, sr))

    @staticmethod
    def profile_of(a: dsp.Analysis) -> np.ndarray:
        """Mean chroma (12, C = 0, sums to 1; zeros for silence) from the shared analysis."""
        ch = a.chroma
        prof = ch.mean(axis=0) if ch.shape[0] else np.zeros(12)
        s = prof.sum()
        return (prof / s if s > 0 else np.zeros(12)).astype(np.float64)

    def key(self, samples: np.ndarray, sr: int) -> tuple[str, float]:
        """(e.g. "A minor", strength) of ``samples``; ("", 0.0) when there is no tonal content."""
        cors = key_correlations(self.profile(samples, sr))
        if not np.any(cors):
            return "", 0.0
        k = int(np.argmax(cors))
        return f"{PITCH_CLASSES[k % 12]} {'minor' if k >= 12 else 'major'}", float(cors[k])

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return self.extract_analysis(dsp.analyse(samples, sr))

    def extract_analysis(self, a: dsp.Analysis) -> np.ndarray:
        """The block from the shared analysis of the track (computed once for every extractor)."""
        prof = self.profile_of(a)
        cors = key_correlations(prof)
        if not np.any(cors):
            return np.zeros(self.dim, np.float32)
        k = int(np.argmax(cors))
        top2 = np.sort(cors)[-2:]
        rotated = np.roll(prof, -(k % 12))
        return dsp.safe(np.concatenate([rotated, [cors[k], float(k >= 12), top2[1] - top2[0]]]))


@hookimpl
def register_extractors(register):
    register(TonalExtractor())
