"""Built-in feature extractors on audio generated here: edge cases and real behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from recengine.analysis import dsp
from recengine.analysis.track import TrackAudio
from recengine.default_plugins import dynamics, rhythm, spectral, timbre, tonal
from recengine.models import DecodedAudio

SR = 22050
RNG = np.random.default_rng(1234)


# --- generated audio -----------------------------------------------------------------------------


def tone(freq: float, seconds: float = 4.0, dbfs_peak: float = -6.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (10 ** (dbfs_peak / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chord(freqs, seconds: float = 4.0, sr: int = SR) -> np.ndarray:
    x = sum(tone(f, seconds, sr=sr) for f in freqs)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def white(seconds: float = 4.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def pink(seconds: float = 4.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    n = int(seconds * sr)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def pulse_train(bpm: float, seconds: float = 10.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Decaying noise bursts (a hi-hat-like click) every beat."""
    n = int(seconds * sr)
    x = np.zeros(n, np.float32)
    burst_len = int(0.05 * sr)
    burst = np.random.default_rng(seed).standard_normal(burst_len) * np.exp(
        -np.arange(burst_len) / (0.01 * sr)
    )
    period = 60.0 / bpm
    for k in range(int(seconds / period) + 1):
        i = int(round(k * period * sr))
        m = min(burst_len, n - i)
        if m > 0:
            x[i : i + m] += 0.5 * burst[:m]
    return x


def _edge_cases() -> dict[str, np.ndarray]:
    t = tone(440, 2.0)
    return {
        "empty": np.zeros(0, np.float32),
        "one_sample": np.array([0.3], np.float32),
        "short_0.2s": tone(440, 0.2),
        "shorter_than_frame": tone(440, 0.02),
        "silence": np.zeros(3 * SR, np.float32),
        "dc_offset": (t + 0.5).astype(np.float32),
        "pure_dc": np.full(2 * SR, 0.7, np.float32),
        "clipped": np.clip(t * 8, -1, 1).astype(np.float32),
        "over_full_scale": (t * 8).astype(np.float32),
        "nan_and_inf": np.where(np.arange(t.size) % 1000 == 0, np.nan, t).astype(np.float32)
        + np.where(np.arange(t.size) == 5, np.inf, 0).astype(np.float32),
        "tiny_noise": (1e-30 * RNG.standard_normal(SR)).astype(np.float32),
        "white": white(2.0),
    }


EXTRACTORS = [
    timbre.TimbreExtractor(),
    spectral.SpectralExtractor(),
    dynamics.DynamicsExtractor(),
    rhythm.RhythmExtractor(),
    tonal.TonalExtractor(),
]


# --- contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ex", EXTRACTORS, ids=lambda e: e.name)
def test_contract_attributes(ex):
    assert isinstance(ex.name, str) and ex.name
    assert ex.version == 1
    assert isinstance(ex.dim, int) and ex.dim > 0
    assert 0 < ex.weight <= 1.0


@pytest.mark.parametrize("case", list(_edge_cases()))
@pytest.mark.parametrize("ex", EXTRACTORS, ids=lambda e: e.name)
def test_edge_cases_give_finite_output_of_right_length(ex, case):
    x = _edge_cases()[case]
    v = ex.extract(x, SR)
    assert isinstance(v, np.ndarray) and v.dtype == np.float32
    assert v.shape == (ex.dim,)
    assert np.all(np.isfinite(v)), (ex.name, case, v)


@pytest.mark.parametrize("ex", EXTRACTORS, ids=lambda e: e.name)
def test_other_sample_rates_are_finite(ex):
    for sr in (8000, 44100):
        v = ex.extract(tone(440, 1.0, sr=sr), sr)
        assert v.shape == (ex.dim,) and np.all(np.isfinite(v))


@pytest.mark.parametrize(
    "mod,cls",
    [
        (timbre, timbre.TimbreExtractor),
        (spectral, spectral.SpectralExtractor),
        (dynamics, dynamics.DynamicsExtractor),
        (rhythm, rhythm.RhythmExtractor),
        (tonal, tonal.TonalExtractor),
    ],
)
def test_register_hook_registers_one_extractor(mod, cls):
    got = []
    mod.register_extractors(register=got.append)
    assert len(got) == 1 and isinstance(got[0], cls)


def test_names_are_unique():
    assert len({e.name for e in EXTRACTORS}) == len(EXTRACTORS)


def test_output_is_deterministic_and_input_untouched():
    x = pink(3.0)
    before = x.copy()
    a = [e.extract(x, SR) for e in EXTRACTORS]
    b = [e.extract(x.copy(), SR) for e in EXTRACTORS]
    assert np.array_equal(x, before)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


# --- shared analysis -----------------------------------------------------------------------------


def test_shared_analysis_is_made_once_per_track_and_rate():
    """The worker's TrackAudio computes the shared analysis once per rate; another track (even with
    the same samples) gets its own; the rate is part of what makes an analysis."""
    x = tone(440, 1.0)
    track = TrackAudio(DecodedAudio(x, SR, 1.0))
    a1 = track.analysis()
    assert track.analysis(SR) is a1
    y = x.copy()
    other = TrackAudio(DecodedAudio(y, SR, 1.0))
    assert other.analysis() is not a1
    a_sr = other.analysis()
    a2 = other.analysis(44100)  # the rate is part of the key
    assert a2 is not a_sr and a2.sr == 44100
    for e in EXTRACTORS:  # the shared analysis gives exactly what extract() computes alone
        np.testing.assert_array_equal(e.extract_analysis(track.analysis()), e.extract(x, SR))


def test_dc_offset_does_not_change_the_spectrum_shape():
    t = tone(1000, 2.0)
    a = spectral.SpectralExtractor().extract(t, SR)
    b = spectral.SpectralExtractor().extract((t + 0.4).astype(np.float32), SR)
    np.testing.assert_allclose(a[:12], b[:12], rtol=0.02, atol=0.02)


def test_mfcc_shape():
    a = dsp.analyse(white(1.0), SR)
    assert a.mfcc.shape == (a.mel_db.shape[0], dsp.N_MFCC)
    assert a.mel_db.shape[1] == dsp.N_MELS


# --- behaviour -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [120.0, 90.0, 150.0])
def test_rhythm_finds_tempo_of_pulse_train(bpm):
    v = rhythm.RhythmExtractor().extract(pulse_train(bpm), SR)
    got = rhythm.RhythmExtractor.tempo_bpm(v)
    assert abs(got - bpm) / bpm < 0.03, got
    assert v[1] > 0.5  # confident
    assert 0.7 * bpm / 60 < v[3] < 1.3 * bpm / 60  # onsets per second


def test_rhythm_of_steady_tone_is_not_confident():
    v = rhythm.RhythmExtractor().extract(tone(440, 6.0), SR)
    p = rhythm.RhythmExtractor().extract(pulse_train(120.0, 6.0), SR)
    assert v[1] < p[1]


def test_rhythm_silence_defaults():
    v = rhythm.RhythmExtractor().extract(np.zeros(SR * 3, np.float32), SR)
    assert v[0] == 0.0 and v[1] == 0.0  # 120 BPM, no confidence


def test_tonal_chroma_peaks_at_a_for_440_hz():
    prof = tonal.TonalExtractor().profile(tone(440, 2.0), SR)
    assert tonal.PITCH_CLASSES[int(np.argmax(prof))] == "A"
    assert prof.max() > 0.8


@pytest.mark.parametrize("freq,name", [(261.63, "C"), (329.63, "E"), (196.0, "G"), (110.0, "A")])
def test_tonal_chroma_low_notes(freq, name):
    prof = tonal.TonalExtractor().profile(tone(freq, 2.0), SR)
    assert tonal.PITCH_CLASSES[int(np.argmax(prof))] == name


def test_tonal_c_major_chord_has_c_e_g_highest():
    ex = tonal.TonalExtractor()
    x = chord([261.63, 329.63, 392.00])
    prof = ex.profile(x, SR)
    top3 = {tonal.PITCH_CLASSES[i] for i in np.argsort(prof)[-3:]}
    assert top3 == {"C", "E", "G"}
    key, strength = ex.key(x, SR)
    assert key == "C major" and strength > 0.5
    noise_strength = ex.extract(white(2.0), SR)[12]
    assert strength > noise_strength


def test_tonal_block_is_key_invariant():
    ex = tonal.TonalExtractor()
    c = ex.extract(chord([261.63, 329.63, 392.00]), SR)
    d = ex.extract(chord([293.66, 369.99, 440.00]), SR)  # D major
    np.testing.assert_allclose(c, d, atol=0.05)


def test_tonal_silence_is_zero():
    v = tonal.TonalExtractor().extract(np.zeros(SR, np.float32), SR)
    assert not np.any(v)


def test_spectral_centroid_orders_tones():
    ex = spectral.SpectralExtractor()
    low = ex.extract(tone(200, 2.0), SR)
    high = ex.extract(tone(4000, 2.0), SR)
    assert high[0] > low[0] + 2.0  # log(1 + Hz): 4 kHz vs 200 Hz is ~3 nats apart
    assert abs(np.expm1(high[0]) - 4000) < 200


def test_spectral_flatness_noise_vs_tone():
    ex = spectral.SpectralExtractor()
    assert ex.extract(white(2.0), SR)[8] > ex.extract(tone(1000, 2.0), SR)[8] + 3.0


def test_dynamics_loudness_orders_levels():
    ex = dynamics.DynamicsExtractor()
    quiet = ex.extract(tone(440, 2.0, dbfs_peak=-20.0), SR)
    loud = ex.extract(tone(440, 2.0, dbfs_peak=-6.0), SR)
    assert ex.loudness_db(quiet) < ex.loudness_db(loud)
    # a sine's RMS is 3 dB below its peak
    assert abs(ex.loudness_db(loud) - (-9.0)) < 1.0
    assert abs(ex.loudness_db(quiet) - (-23.0)) < 1.0
    assert loud[8] == 0.0 and loud[10] == 0.0  # not silent, not clipped


def test_dynamics_flags_silence_and_clipping():
    ex = dynamics.DynamicsExtractor()
    for x in (np.zeros(SR, np.float32), np.zeros(0, np.float32), np.array([0.0], np.float32)):
        assert ex.extract(x, SR)[8] == 1.0
    clipped = ex.extract(np.clip(tone(440, 2.0) * 8, -1, 1).astype(np.float32), SR)
    assert clipped[10] > 0.5


def test_dynamics_range_of_varying_level():
    ex = dynamics.DynamicsExtractor()
    steady = ex.extract(tone(440, 4.0), SR)
    env = np.repeat([1.0, 0.03], 2 * SR).astype(np.float32)  # 0 dB then -30 dB
    varying = ex.extract(tone(440, 4.0) * env, SR)
    assert varying[7] > steady[7] + 20


def test_timbre_distinguishes_noise_from_tone_and_is_stable_across_excerpts():
    ex = timbre.TimbreExtractor()
    p1, p2 = ex.extract(pink(3.0, seed=1), SR), ex.extract(pink(3.0, seed=2), SR)
    t = ex.extract(tone(440, 3.0), SR)
    assert np.linalg.norm(p1 - p2) < 0.2 * np.linalg.norm(p1 - t)


def test_gaussian_embedding_log_covariance():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((5000, 3)) * np.array([1.0, 2.0, 4.0])
    e = timbre.gaussian_embedding(f, reg=0.0)
    # diagonal of log-covariance: log(var) = 0, log 4, log 16
    diag = e[3:][[0, 3, 5]]
    np.testing.assert_allclose(diag, np.log([1.0, 4.0, 16.0]), atol=0.1)
