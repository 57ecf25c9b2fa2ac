"""Rhythm: tempo with confidence, pulse clarity and onset statistics from the onset envelope.

Block (6 dims), from the shared log-mel onset strength envelope (~43 frames/s at 22050 Hz):

- 0: log2(tempo / 120 BPM). Tempo is the lag of the highest autocorrelation peak of the envelope
  between 40 and 240 BPM, weighted by a log-normal preference centred at 120 BPM (one octave
  wide) to settle octave ambiguity, refined by parabolic interpolation. 120 BPM (0.0) when there
  is no periodicity at all (silence, too short input);
- 1: tempo confidence: the envelope's normalised autocorrelation at that lag (0..1);
- 2: pulse clarity: the highest normalised autocorrelation at lags of 0.25-2 s;
  both damped towards 0 when the envelope hardly moves at all (variance << ``ENV_VAR_FLOOR``),
  so the numerical wobble of a steady tone does not read as a perfect pulse;
- 3: onset rate (onsets per second: local maxima of the locally-detrended envelope that stand
  more than one standard deviation out);
- 4, 5: mean onset strength (dB per frame) and its coefficient of variation.
"""

from __future__ import annotations

import numpy as np

from recengine.analysis import dsp
from recengine.plugin.spec import hookimpl

MIN_BPM, MAX_BPM, PRIOR_BPM = 40.0, 240.0, 120.0
MAX_LAG_S = 2.0
#: Onset-envelope variance (dB^2) at which confidence and clarity are halved: a steady tone's
#: envelope wobbles by ~0.001 dB with perfect (meaningless) periodicity; music's by ~1 dB.
ENV_VAR_FLOOR = 0.01


def estimate_tempo(env: np.ndarray, frame_rate: float) -> tuple[float, float, float]:
    """(tempo BPM, confidence, pulse clarity) of an onset envelope; (120, 0, 0) if aperiodic."""
    max_lag = max(2, int(frame_rate * MAX_LAG_S))
    var = float(np.var(env)) if env.size else 0.0
    damp = var / (var + ENV_VAR_FLOOR)
    ac = dsp.autocorrelation(env, max_lag) * damp
    lags = np.arange(max_lag + 1) / frame_rate
    with np.errstate(divide="ignore"):
        bpm = np.where(lags > 0, 60.0 / np.maximum(lags, 1e-9), 0.0)
    ok = (bpm >= MIN_BPM) & (bpm <= MAX_BPM)
    prior = np.exp(-0.5 * np.log2(np.maximum(bpm, 1e-9) / PRIOR_BPM) ** 2) * ok
    score = np.maximum(ac, 0.0) * prior
    i = int(np.argmax(score))
    lo = int(frame_rate * 0.25)
    clarity = float(np.max(ac[lo:])) if lo < ac.size else 0.0
    if score[i] <= 0:
        return PRIOR_BPM, 0.0, max(clarity, 0.0)
    lag = dsp.parabolic_peak(ac, i)
    return 60.0 * frame_rate / lag, float(ac[i]), max(clarity, 0.0)


class RhythmExtractor:
    name = "rhythm"
    version = 1
    dim = 6
    weight = 0.6

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return self.extract_analysis(dsp.analyse(samples, sr))

    def extract_analysis(self, a: dsp.Analysis) -> np.ndarray:
        """The block from the shared analysis of the track (computed once for every extractor)."""
        env = a.onset_env.astype(np.float64)
        tempo, conf, clarity = estimate_tempo(env, a.frame_rate)
        if env.size > 9:
            e = env - np.convolve(env, np.ones(9) / 9.0, mode="same")
            mid = e[1:-1]
            peaks = (mid > e[:-2]) & (mid >= e[2:]) & (mid > e.std())
            rate = float(peaks.sum()) / max(a.duration, 1e-3)
        else:
            rate = 0.0
        mean = float(env.mean()) if env.size else 0.0
        cv = float(env.std() / (mean + 1e-6)) if env.size else 0.0
        return dsp.safe([np.log2(tempo / PRIOR_BPM), conf, clarity, rate, mean, cv])

    @staticmethod
    def tempo_bpm(vec: np.ndarray) -> float:
        """Tempo in BPM from an extracted block."""
        return float(PRIOR_BPM * 2.0 ** float(vec[0]))


@hookimpl
def register_extractors(register):
    register(RhythmExtractor())
