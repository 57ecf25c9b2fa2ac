"""Vector assembly: robust scaling, block weights, persistence, usability, end-to-end neighbours."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recengine.default_plugins import dynamics, rhythm, spectral, timbre, tonal
from recengine.index import vectors
from recengine.index.vectors import Scaler, is_usable

from .test_extractors import SR, chord, pink, pulse_train, tone, white


def _library(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {
            "big": rng.standard_normal(200) * np.linspace(0.1, 10, 200) + 5.0,
            "small": rng.standard_normal(4) * 100.0,
            "const": np.full(3, 7.0),
        }
        for _ in range(n)
    ]


def test_fit_transform_shapes_and_types():
    lib = _library()
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 0.5, "const": 1.0})
    assert s.order == ["big", "small", "const"]
    assert s.dim == 200 + 4 + 3 + 1
    m = s.transform_many(lib)
    assert m.shape == (40, s.dim) and m.dtype == np.float32
    assert np.all(np.isfinite(m))
    assert all(is_usable(v) for v in m)


def test_block_weight_is_its_share_whatever_its_length():
    lib = _library(200)
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 1.0})
    m = s.transform_many(lib)
    big = np.linalg.norm(m[:, :200], axis=1).mean()
    small = np.linalg.norm(m[:, 200:204], axis=1).mean()
    assert 0.6 < big / small < 1.6  # 200 dims vs 4 dims, equal weights: comparable norms
    s2 = s.with_weights({"small": 0.25})
    m2 = s2.transform_many(lib)
    assert np.linalg.norm(m2[:, 200:204], axis=1).mean() == pytest.approx(0.25 * small, rel=1e-4)


def test_robust_to_outliers_and_clipped():
    lib = _library(50)
    lib[0]["small"] = np.full(4, 1e12)
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 1.0})
    v = s.transform(lib[0])
    assert np.all(np.abs(v[200:204]) <= s.clip / np.sqrt(4) + 1e-6)
    # the outlier did not wreck the others' scaling
    others = s.transform_many(lib[1:])[:, 200:204]
    assert np.std(others) > 0.1


def test_constant_dimensions_are_finite():
    s = Scaler.fit(_library(), weights={"const": 1.0})
    v = s.transform({"const": np.full(3, 7.0)})
    assert np.all(np.isfinite(v)) and is_usable(v)  # the bias keeps the norm non-zero


def test_single_track_library_is_usable():
    lib = _library(1)
    s = Scaler.fit(lib)
    v = s.transform(lib[0])
    assert is_usable(v)


def test_missing_block_is_neutral_and_wrong_length_raises():
    lib = _library()
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 1.0})
    v = s.transform({"big": lib[3]["big"]})
    assert not np.any(v[200:204]) and is_usable(v)
    with pytest.raises(ValueError):
        s.transform({"big": np.zeros(199), "small": np.zeros(4)})


def test_non_finite_input_values_stay_finite():
    lib = _library()
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 1.0})
    b = {"big": np.full(200, np.nan), "small": np.array([np.inf, -np.inf, 0.0, 1.0])}
    assert np.all(np.isfinite(s.transform(b)))


def test_fit_ignores_bad_rows():
    lib = _library()
    lib.append({"big": np.full(200, np.nan), "small": np.zeros(7)})
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 1.0})
    assert s.dims == {"big": 200, "small": 4}
    assert np.all(np.isfinite(s.center["big"]))


def test_zero_weight_drops_block():
    s = Scaler.fit(_library(), weights={"big": 1.0, "small": 0.0})
    assert s.order == ["big"]


def test_json_round_trip_gives_identical_vectors():
    lib = _library()
    s = Scaler.fit(lib, weights={"big": 1.0, "small": 0.5})
    d = json.loads(json.dumps(s.to_dict()))
    s2 = Scaler.from_dict(d)
    np.testing.assert_array_equal(s.transform_many(lib), s2.transform_many(lib))
    assert d["metric"] == vectors.METRIC


def test_from_dict_rejects_bad_input():
    d = Scaler.fit(_library()).to_dict()
    with pytest.raises(ValueError):
        Scaler.from_dict({**d, "format": 99})
    bad = json.loads(json.dumps(d))
    bad["scale"]["small"] = [0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        Scaler.from_dict(bad)


def test_is_usable():
    assert is_usable(np.ones(4))
    assert not is_usable(np.zeros(4))
    assert not is_usable(np.array([1.0, np.nan]))
    assert not is_usable(np.array([1.0, np.inf]))
    assert not is_usable(np.ones((2, 2)))
    assert not is_usable(np.zeros(0))
    assert not is_usable("abc")


def test_metric_is_an_annoy_metric():
    assert vectors.METRIC in ("euclidean", "angular")


# --- end to end: extractors + assembly -----------------------------------------------------------


def _angular(a, b):
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    return float(np.linalg.norm(a - b))


def test_same_kind_of_sound_is_nearer_than_a_different_one():
    exs = [
        timbre.TimbreExtractor(),
        spectral.SpectralExtractor(),
        dynamics.DynamicsExtractor(),
        rhythm.RhythmExtractor(),
        tonal.TonalExtractor(),
    ]
    sounds = {
        "pink1": pink(3.0, seed=1),
        "pink2": pink(3.0, seed=2),
        "white": white(3.0, seed=3),
        "chord": chord([261.63, 329.63, 392.0], 3.0),
        "chord2": chord([293.66, 369.99, 440.0], 3.0),
        "tone_low": tone(110, 3.0),
        "tone_high": tone(3000, 3.0),
        "pulse120": pulse_train(120, 6.0, seed=4),
        "pulse120b": pulse_train(120, 6.0, seed=5),
        "pulse80": pulse_train(80, 6.0, seed=6),
    }
    blocks = {k: {e.name: e.extract(x, SR) for e in exs} for k, x in sounds.items()}
    scaler, mat = vectors.assemble(list(blocks.values()), weights={e.name: e.weight for e in exs})
    v = dict(zip(blocks, mat, strict=True))
    assert all(is_usable(x) for x in mat)
    assert _angular(v["pink1"], v["pink2"]) < _angular(v["pink1"], v["chord"])
    assert _angular(v["pink1"], v["pink2"]) < _angular(v["pink1"], v["pulse120"])
    assert _angular(v["chord"], v["chord2"]) < _angular(v["chord"], v["white"])
    assert _angular(v["pulse120"], v["pulse120b"]) < _angular(v["pulse120"], v["tone_high"])
    # nearest neighbour of each "twin" is its twin
    names = list(v)
    for a, b in [("pink1", "pink2"), ("chord", "chord2"), ("pulse120", "pulse120b")]:
        d = {n: _angular(v[a], v[n]) for n in names if n != a}
        assert min(d, key=d.get) == b, d


def test_projection_keeps_neighbours_and_round_trips():
    from recengine.index.vectors import Projection

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(8, 200))
    x = np.vstack([c + 0.2 * rng.normal(size=(30, 200)) for c in centres])
    x = np.hstack([x, np.full((len(x), 1), 0.05)]).astype(np.float32)
    proj = Projection.fit(x, 16)
    assert proj.dim == 17
    y = proj.transform(x)
    assert y.shape == (240, 17) and np.all(np.isfinite(y)) and np.allclose(y[:, -1], 0.05)

    def nearest(m):
        n = m / np.linalg.norm(m, axis=1, keepdims=True)
        s = n @ n.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(axis=1)

    same_cluster = (nearest(y) // 30) == (np.arange(240) // 30)
    assert same_cluster.mean() > 0.95
    again = Projection.from_dict(proj.to_dict())
    assert np.array_equal(again.transform(x), y)
    assert Projection.fit(x[:5], 16).dim == 5  # at most n - 1 components
    assert Projection.fit(x, 500) is None  # nothing to reduce
