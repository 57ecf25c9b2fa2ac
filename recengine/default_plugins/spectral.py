"""Spectral shape: centroid, bandwidth, roll-off, flatness, flux and octave-band contrast.

Block (26 dims), per frame of the shared STFT, then mean and standard deviation over frames
(centroid and bandwidth over all frames; the per-bin statistics over every
``dsp.SUBSAMPLE_STEP``-th (8th) frame, which moved the benchmark by < 0.01 and cut this block's
cost about eightfold):

- 12: log(1 + centroid Hz), log(1 + bandwidth Hz), log(1 + 85 % roll-off Hz),
  log(1 + 95 % roll-off Hz), log(flatness + 1e-6) (geometric / arithmetic mean of the power
  spectrum above DC), spectral flux (Euclidean distance between consecutive magnitude spectra,
  each normalised to unit sum) -- mean and std of each;
- 14: spectral contrast in 7 octave bands (0-200-400-800-1600-3200-6400-11025 Hz at 22050 Hz):
  dB difference between the mean of the top and bottom 20 % of the band's bins -- mean and std.

Silent frames have zero power: centroid, bandwidth and roll-off read 0, flatness reads its floor
and contrast 0 dB, so silence and very short input give finite values.
"""

from __future__ import annotations

import numpy as np

from recengine.analysis import dsp
from recengine.plugin.spec import hookimpl

BAND_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 11025.0)


def _ms(v: np.ndarray) -> list[float]:
    return [float(np.mean(v)), float(np.std(v))] if v.size else [0.0, 0.0]


class SpectralExtractor:
    name = "spectral"
    version = 1
    dim = 26
    weight = 0.6

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return self.extract_analysis(dsp.analyse(samples, sr))

    def extract_analysis(self, a: dsp.Analysis) -> np.ndarray:
        """The block from the shared analysis of the track (computed once for every extractor)."""
        p = a.power
        nb = p.shape[1]
        freqs = (np.arange(nb) * (a.sr / a.n_fft)).astype(np.float32)
        tot = p @ np.ones(nb, np.float32) + np.float32(1e-12)
        cen = (p @ freqs) / tot
        bw = np.sqrt(np.maximum((p @ (freqs * freqs)) / tot - cen * cen, 0.0))
        # per-bin statistics on every STEP-th frame (flux: on that frame and the next)
        step = dsp.SUBSAMPLE_STEP
        ps = p[::step]
        cs = np.cumsum(ps, axis=1, dtype=np.float32)
        roll85 = freqs[np.argmax(cs >= 0.85 * cs[:, -1:], axis=1)]
        roll95 = freqs[np.argmax(cs >= 0.95 * cs[:, -1:], axis=1)]
        logp = np.log(ps + np.float32(1e-10))
        flat = np.exp(logp[:, 1:].mean(axis=1)) / (ps[:, 1:].mean(axis=1) + 1e-10)
        if p.shape[0] > 1:
            a0, a1 = np.sqrt(p[: p.shape[0] - 1 : step]), np.sqrt(p[1::step])
            a0 /= a0.sum(axis=1, keepdims=True) + np.float32(1e-9)
            a1 /= a1.sum(axis=1, keepdims=True) + np.float32(1e-9)
            flux = np.sqrt(((a1 - a0) ** 2).sum(axis=1))
        else:
            flux = np.zeros(1)
        # octave-band contrast (dB = 10 log10 = 4.343 ln)
        contrast = []
        edges = [e * a.sr / 22050.0 for e in BAND_EDGES_HZ]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            band = logp[:, (freqs >= lo) & (freqs < hi)]
            m = band.shape[1]
            if m == 0:
                contrast.append(np.zeros(ps.shape[0]))
                continue
            k = max(1, int(0.2 * m))
            part = np.sort(band, axis=1)  # numpy's SIMD sort beat np.partition here
            top = np.log(np.exp(part[:, m - k :]).mean(axis=1))
            bot = np.log(np.exp(part[:, :k]).mean(axis=1))
            contrast.append((10.0 / np.log(10.0)) * (top - bot))
        contrast = np.array(contrast).T
        feats = (
            _ms(np.log1p(cen))
            + _ms(np.log1p(bw))
            + _ms(np.log1p(roll85))
            + _ms(np.log1p(roll95))
            + _ms(np.log(flat + 1e-6))
            + _ms(flux)
            + list(contrast.mean(axis=0))
            + list(contrast.std(axis=0))
        )
        return dsp.safe(feats)


@hookimpl
def register_extractors(register):
    register(SpectralExtractor())
