"""The fluctuation-pattern extractor: where the loudness of a register moves, at which rate."""

from __future__ import annotations

import numpy as np

from recengine.default_plugins.fluctuation import MOD_HI_HZ, MOD_LO_HZ, N_BANDS, N_MOD, FluctuationExtractor

SR = 22050


def _tremolo(rate_hz: float, seconds: float = 20.0, carrier_hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.4 * np.sin(2 * np.pi * carrier_hz * t) * (0.55 + 0.45 * np.sin(2 * np.pi * rate_hz * t))).astype(
        np.float32)


def _strongest_modulation_hz(vec: np.ndarray) -> float:
    per_bin = vec.reshape(N_BANDS, N_MOD).max(axis=0)
    centres = np.sqrt(np.geomspace(MOD_LO_HZ, MOD_HI_HZ, N_MOD + 1)[:-1] * np.geomspace(MOD_LO_HZ, MOD_HI_HZ,
                                                                                       N_MOD + 1)[1:])
    return float(centres[int(np.argmax(per_bin))])


def test_a_tremolo_shows_at_its_rate():
    ex = FluctuationExtractor()
    for rate in (1.0, 4.0, 9.0):
        found = _strongest_modulation_hz(ex.extract(_tremolo(rate), SR))
        assert rate / 1.3 < found < rate * 1.3, (rate, found)


def test_a_steady_tone_has_almost_no_fluctuation_and_a_tremolo_much():
    ex = FluctuationExtractor()
    steady = ex.extract((0.4 * np.sin(2 * np.pi * 440 * np.arange(SR * 20) / SR)).astype(np.float32), SR)
    moving = ex.extract(_tremolo(4.0), SR)
    assert moving.max() > 5 * max(steady.max(), 1e-3)


def test_edge_inputs_give_finite_vectors_of_the_declared_size():
    ex = FluctuationExtractor()
    for samples in (np.zeros(0, np.float32), np.zeros(SR * 10, np.float32), np.ones(1, np.float32),
                    np.full(SR, np.nan, np.float32), _tremolo(3.0, seconds=1.0)):
        vec = ex.extract(samples, SR)
        assert vec.shape == (ex.dim,) and vec.dtype == np.float32 and np.all(np.isfinite(vec))
    assert not ex.extract(np.zeros(SR * 10, np.float32), SR).any()  # silence: no modulation at all
