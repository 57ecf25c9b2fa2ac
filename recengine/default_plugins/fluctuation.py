"""Fluctuation: the logarithmic fluctuation pattern (after Seyerlehner et al., MIREX 2010-2012).

Block (480 dims = 20 bands x 24 modulation bins), from the shared analysis's 40-band log-mel
frames (dB, about 43 frames/s at 22.05 kHz):

1. adjacent mel bands are averaged pairwise into 20 bands;
2. blocks of 256 frames (~6 s), hop 128: each band's time course (mean removed, Hann window) goes
   through an FFT; the magnitudes are averaged into 24 log-spaced modulation bins from 0.3 to
   15 Hz (a bin narrower than the FFT resolution takes its nearest FFT bin), then ``log1p``;
3. the median over blocks is the pattern: how fast the loudness of each register moves (a slow
   orchestral swell, a 2 Hz groove, a 12 Hz tremolo).

Input shorter than a block is padded with its last frame (no modulation: zeros), so silence, 1 s
tracks and empty input give finite vectors. Measured on the dev corpus (3 x 20 s windows): +0.008
precision@10 on the whole corpus and on both label halves at weight 0.5, ~3 ms per track.
"""

from __future__ import annotations

import numpy as np

from recengine.analysis import dsp
from recengine.plugin.spec import hookimpl

N_BANDS = 20
BLOCK = 256
HOP = 128
N_MOD = 24
MOD_LO_HZ, MOD_HI_HZ = 0.3, 15.0


def modulation_bins(block: int, frame_rate: float) -> np.ndarray:
    """(block // 2 + 1, N_MOD): averages FFT bins of a band's time course into log-spaced bins."""
    freqs = np.fft.rfftfreq(block, 1.0 / frame_rate)
    edges = np.geomspace(MOD_LO_HZ, MOD_HI_HZ, N_MOD + 1)
    weights = np.zeros((N_MOD, freqs.size))
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (freqs >= lo) & (freqs < hi)
        if not inside.any():
            inside = np.zeros(freqs.size, bool)
            inside[int(np.argmin(np.abs(freqs - np.sqrt(lo * hi))))] = True
        weights[i, inside] = 1.0 / inside.sum()
    return weights.T


def fluctuation_pattern(mel_db: np.ndarray, frame_rate: float, bins: np.ndarray) -> np.ndarray:
    """The pattern of ``(frames, bands)`` dB frames (see the module docstring)."""
    x = np.nan_to_num(np.asarray(mel_db, np.float32), nan=dsp.DB_FLOOR, posinf=0.0, neginf=dsp.DB_FLOOR)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        return np.zeros(N_BANDS * N_MOD, np.float32)
    edges = np.linspace(0, x.shape[1], N_BANDS + 1).astype(int)
    bands = np.stack([x[:, a:max(b, a + 1)].mean(axis=1) for a, b in zip(edges[:-1], edges[1:], strict=True)],
                     axis=1)
    if bands.shape[0] < BLOCK:
        bands = np.concatenate([bands, np.repeat(bands[-1:], BLOCK - bands.shape[0], axis=0)])
    blocks = np.lib.stride_tricks.sliding_window_view(bands, BLOCK, axis=0)[::HOP].astype(np.float64)
    blocks = blocks - blocks.mean(axis=2, keepdims=True)
    spectrum = np.abs(np.fft.rfft(blocks * np.hanning(BLOCK), axis=2))  # (blocks, bands, BLOCK//2+1)
    pattern = np.median(np.log1p(spectrum @ bins), axis=0)
    return dsp.safe(pattern.ravel())


class FluctuationExtractor:
    name = "fluctuation"
    version = 1
    dim = N_BANDS * N_MOD
    weight = 0.5

    def __init__(self) -> None:
        self._bins: dict[float, np.ndarray] = {}  # per frame rate, built on first use

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        return self.extract_analysis(dsp.analyse(samples, sr))

    def extract_analysis(self, a: dsp.Analysis) -> np.ndarray:
        """The block from the shared analysis of the track (computed once for every extractor)."""
        rate = float(a.frame_rate)
        if rate not in self._bins:
            self._bins[rate] = modulation_bins(BLOCK, rate)
        return fluctuation_pattern(a.mel_db, rate, self._bins[rate])


@hookimpl
def register_extractors(register):
    register(FluctuationExtractor())
