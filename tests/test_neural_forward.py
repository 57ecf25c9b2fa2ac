"""The numpy musicnn layers and nets against independent computations written here.

References are deliberately naive: scipy.signal.correlate2d per channel pair for convolutions,
TF's documented padding formula (a different expression from the module's), explicit loops for
max pooling, a float64 DFT matrix for the STFT, and the mel triangles built band by band from
Slaney's formulas. Tiny nets (a few filters, random weights, some negative batch-norm scales)
run through both the module and a literal transcription of musicnn's TF graph.
Constants marked "librosa 0.11.0" were computed with librosa (as musicnn uses it) once, by hand.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy.signal import correlate2d

from recengine.neural import layers, musicnn

RNG = np.random.default_rng(11)


# --- independent references -----------------------------------------------------------------------


def tf_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TF's documented 'SAME' padding: pad_along = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)."""
    total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
    return total // 2, total - total // 2


def ref_conv(x, w, b, padding, strides=(1, 1)):
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    sh, sw = strides
    if padding == "same":
        ph, pw = tf_pad(h, kh, sh), tf_pad(wd, kw, sw)
        x = np.pad(x, ((0, 0), ph, pw, (0, 0)))
    out = None
    for i in range(n):
        for oc in range(o):
            acc = sum(correlate2d(x[i, :, :, ic].astype(np.float64), w[:, :, ic, oc], mode="valid") for ic in range(c))
            acc = acc[::sh, ::sw] + (b[oc] if b is not None else 0.0)
            if out is None:
                out = np.zeros((n, *acc.shape, o))
            out[i, :, :, oc] = acc
    return out


def ref_pool(x, pool, strides, padding):
    n, h, w, c = x.shape
    ph, pw = pool
    sh, sw = strides
    if padding == "valid":
        ho, wo = (h - ph) // sh + 1, (w - pw) // sw + 1
        top, left = 0, 0
    else:
        ho, wo = math.ceil(h / sh), math.ceil(w / sw)
        top, left = tf_pad(h, ph, sh)[0], tf_pad(w, pw, sw)[0]
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * sh - top, j * sw - left
            win = x[:, max(r0, 0) : min(r0 + ph, h), max(c0, 0) : min(c0 + pw, w), :]
            out[:, i, j, :] = win.max(axis=(1, 2))
    return out


def ref_bn(x, p):
    g, b, m, v = p
    return g * (x - m) / np.sqrt(v + 1e-3) + b


def bn_params(c, rng=RNG):
    gamma = rng.uniform(0.5, 1.5, c) * np.where(rng.random(c) < 0.3, -1, 1)  # some negative scales
    return (
        gamma.astype(np.float32),
        rng.normal(0, 0.2, c).astype(np.float32),
        rng.normal(0, 0.2, c).astype(np.float32),
        rng.uniform(0.5, 2.0, c).astype(np.float32),
    )


def put_bn(w, name, p):
    for k, a in zip(("gamma", "beta", "moving_mean", "moving_variance"), p, strict=True):
        w[f"{name}/{k}"] = a


# --- padding, conv, pool, bn, dense --------------------------------------------------------------------


@pytest.mark.parametrize("n,k,s", [(5, 3, 1), (5, 3, 2), (6, 3, 2), (4, 1, 2), (187, 128, 1), (187, 64, 1), (7, 4, 4), (2, 4, 4), (96, 3, 1)])
def test_same_padding_matches_tf_formula(n, k, s):
    assert layers.tf_same_padding(n, k, s) == tf_pad(n, k, s)


def test_same_padding_known_values():
    assert layers.tf_same_padding(187, 128) == (63, 64)  # more after than before for even kernels
    assert layers.tf_same_padding(6, 3, 2) == (0, 1)
    assert layers.tf_same_padding(5, 3, 2) == (1, 1)


@pytest.mark.parametrize(
    "shape,kernel,padding,strides",
    [
        ((2, 9, 7, 3), (3, 3, 3, 4), "same", (1, 1)),
        ((1, 9, 7, 2), (3, 3, 2, 3), "valid", (1, 1)),
        ((1, 10, 8, 1), (4, 2, 1, 2), "same", (1, 1)),  # even kernel: asymmetric padding
        ((1, 11, 9, 2), (3, 3, 2, 2), "same", (2, 2)),
        ((1, 11, 9, 2), (3, 3, 2, 2), "valid", (1, 2)),
        ((1, 12, 5, 1), (7, 5, 1, 3), "valid", (1, 1)),  # kernel as wide as the input
        ((1, 3, 4, 2), (3, 4, 2, 5), "valid", (1, 1)),  # kernel covers all: one output
    ],
)
def test_conv2d_against_scipy(shape, kernel, padding, strides):
    x = RNG.standard_normal(shape).astype(np.float32)
    w = RNG.standard_normal(kernel).astype(np.float32)
    b = RNG.standard_normal(kernel[3]).astype(np.float32)
    got = layers.conv2d(x, w, b, padding, strides)
    want = ref_conv(x, w, b, padding, strides)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 12, 8, 16), (2, 11, 7, 3), (1, 1, 1, 2), (1, 92, 48, 20)])
def test_winograd_3x3_against_scipy(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    w = RNG.standard_normal((3, 3, shape[3], 5)).astype(np.float32)
    got = layers.conv3x3_same_winograd(x, layers.winograd_kernel(w))
    want = ref_conv(x, w, None, "same")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_conv2d_errors():
    with pytest.raises(ValueError, match="does not fit"):
        layers.conv2d(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match="smaller than kernel"):
        layers.conv2d(np.zeros((1, 2, 4, 1)), np.zeros((3, 3, 1, 1)))


@pytest.mark.parametrize(
    "shape,pool,strides,padding",
    [
        ((1, 11, 6, 2), (4, 1), (2, 2), "valid"),  # VGG pool1: width 1, stride 2
        ((1, 11, 6, 2), (4, 4), (4, 4), "valid"),  # VGG pool5: leftover rows/cols dropped
        ((1, 7, 5, 3), (2, 2), (2, 2), "same"),  # odd sizes: last window half outside
        ((2, 5, 5, 1), (3, 3), (1, 1), "same"),
        ((1, 6, 6, 1), (4, 4), (4, 4), "same"),
    ],
)
def test_max_pool_against_loops(shape, pool, strides, padding):
    # all values negative: a zero-padded 'same' pool would return 0 at the edges
    x = -np.abs(RNG.standard_normal(shape)).astype(np.float32) - 0.1
    got = layers.max_pool2d(x, pool, strides, padding)
    want = ref_pool(x, pool, strides, padding)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert np.all(got < 0)


def test_max_pool_valid_too_small():
    with pytest.raises(ValueError, match="smaller than pool"):
        layers.max_pool2d(np.zeros((1, 3, 3, 1)), (4, 4), (4, 4))


def test_batch_norm_and_dense():
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    p = bn_params(6)
    np.testing.assert_allclose(layers.batch_norm(x, *p), ref_bn(x.astype(np.float64), p), rtol=1e-5, atol=1e-6)
    w = RNG.standard_normal((6, 3)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    want = np.array([[sum(x[i, k] * w[k, j] for k in range(6)) + b[j] for j in range(3)] for i in range(4)])
    np.testing.assert_allclose(layers.dense(x, w, b), want, rtol=1e-5, atol=1e-5)


def test_pool_then_act_is_exact_with_negative_scales():
    z = RNG.standard_normal((1, 20, 12, 5)).astype(np.float32)
    bias = RNG.standard_normal(5).astype(np.float32)
    scale = np.array([1.3, -0.7, 0.0, -2.0, 0.4], np.float32)
    shift = RNG.standard_normal(5).astype(np.float32)
    direct = layers.max_pool2d(np.maximum(z + bias, 0) * scale + shift, (4, 1), (2, 2))
    np.testing.assert_array_equal(musicnn._pool_then_act(z, bias, scale, shift, (4, 1), (2, 2)), direct)
    direct_f = (np.maximum(z + bias, 0) * scale + shift).max(axis=2)
    np.testing.assert_array_equal(musicnn._pool_then_act(z, bias, scale, shift, None, None), direct_f)
    # with the negative-scale channels computed from negated kernels: one max pool, same values
    k = RNG.standard_normal((3, 3, 2, 5)).astype(np.float32)
    x = RNG.standard_normal((1, 20, 12, 2)).astype(np.float32)
    kf, sign = musicnn._flip(k, scale)
    assert list(sign) == [1, -1, 1, -1, 1]
    zf = layers.conv2d(x, kf, None, "same")
    z0 = layers.conv2d(x, k, None, "same")
    np.testing.assert_array_equal(zf, z0 * sign)  # negation is exact
    direct = layers.max_pool2d(np.maximum(z0 + bias, 0) * scale + shift, (4, 1), (2, 2))
    np.testing.assert_array_equal(musicnn._pool_then_act(zf, bias, scale, shift, (4, 1), (2, 2), sign), direct)
    direct_f = (np.maximum(z0 + bias, 0) * scale + shift).max(axis=2)
    np.testing.assert_array_equal(musicnn._pool_then_act(zf, bias, scale, shift, None, None, sign), direct_f)


# --- front end ------------------------------------------------------------------------------------------


def ref_mel_filterbank(sr, n_fft, n_mels):
    def hz2mel(f):
        return f * 3.0 / 200.0 if f < 1000 else 15.0 + math.log(f / 1000.0) * 27.0 / math.log(6.4)

    def mel2hz(m):
        return m * 200.0 / 3.0 if m < 15.0 else 1000.0 * math.exp((m - 15.0) * math.log(6.4) / 27.0)

    top = hz2mel(sr / 2)
    edges = [mel2hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for band in range(n_mels):
        lo, mid, hi = edges[band : band + 3]
        for k in range(n_fft // 2 + 1):
            f = k * sr / n_fft
            if lo < f < hi:
                fb[band, k] = ((f - lo) / (mid - lo) if f <= mid else (hi - f) / (hi - mid)) * 2.0 / (hi - lo)
    return fb


def test_mel_filterbank_against_direct_and_librosa():
    fb = layers.mel_filterbank(16000, 512, 96)
    assert fb.shape == (96, 257) and fb.dtype == np.float32
    np.testing.assert_allclose(fb, ref_mel_filterbank(16000, 512, 96), rtol=1e-5, atol=1e-7)
    # librosa 0.11.0: librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)
    np.testing.assert_allclose(fb.sum(1)[[0, 10, 50, 95]], [0.03199922, 0.03199922, 0.0318232, 0.03198528], rtol=1e-5)
    assert list(fb[[0, 10, 50, 95]].argmax(1)) == [1, 11, 59, 248]
    assert fb.max() == pytest.approx(0.031999223, rel=1e-6)


def ref_log_mel(y, sr=16000, n_fft=512, hop=256, n_mels=96):
    y = np.asarray(y, np.float64)
    pad = np.concatenate([np.zeros(n_fft // 2), y, np.zeros(n_fft // 2)])
    n = np.arange(n_fft)
    window = [0.5 - 0.5 * math.cos(2 * math.pi * i / n_fft) for i in range(n_fft)]
    dft = np.exp(-2j * np.pi * np.outer(np.arange(n_fft // 2 + 1), n) / n_fft)
    fb = ref_mel_filterbank(sr, n_fft, n_mels)
    rows = []
    for t in range(1 + len(y) // hop):
        seg = pad[t * hop : t * hop + n_fft] * window
        rows.append(fb @ np.abs(dft @ seg) ** 2)
    return np.log10(10000 * np.array(rows) + 1)


def test_log_mel_against_direct_computation():
    t = np.arange(5000) / 16000
    y = (0.4 * np.sin(2 * np.pi * 523.25 * t) + 0.1 * RNG.standard_normal(t.size)).astype(np.float32)
    got = layers.log_mel(y)
    want = ref_log_mel(y)
    assert got.dtype == np.float32 and got.shape == want.shape == (1 + 5000 // 256, 96)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-4)


def test_log_mel_matches_librosa_values():
    t = np.arange(16000) / 16000
    y = (0.5 * np.sin(2 * np.pi * 1000 * t) + 0.25 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    lm = layers.log_mel(y)
    # librosa 0.11.0: log10(10000 * melspectrogram(y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T + 1)
    assert lm.shape == (63, 96)
    assert float(lm.sum()) == pytest.approx(2339.346923828125, rel=1e-5)
    want = [[2.8534474, 5.296858, 1.8202004, 0.8274319], [0.0, 5.4455414, 0.0, 0.0], [2.251503, 5.5204363, 1.2399746, 0.3856371]]
    np.testing.assert_allclose(lm[[0, 10, 62]][:, [5, 30, 60, 95]], want, rtol=1e-5, atol=1e-5)


def test_log_mel_selected_frames_and_chunks():
    y = RNG.standard_normal(16000 * 3).astype(np.float32) * 0.3
    full = layers.log_mel(y)
    idx = np.array([0, 5, 6, 100, len(full) - 1, 3])
    np.testing.assert_array_equal(layers.log_mel(y, frames=idx), full[idx])
    np.testing.assert_array_equal(layers.power_spectrogram(y, 512, 256, chunk=7), layers.power_spectrogram(y, 512, 256))


def test_track_patch_embeddings_equals_slicing_the_whole_log_mel():
    w = tiny_vgg_weights(4)
    net = musicnn.VGG(w)
    y = (RNG.standard_normal(16000 * 20) * 0.2).astype(np.float32)
    got = musicnn.track_patch_embeddings(net, y, max_patches=3)
    want = net.embed_patches(musicnn.patches(layers.log_mel(y), max_patches=3))
    np.testing.assert_array_equal(got, want)
    short = musicnn.track_patch_embeddings(net, y[:16000])  # under 3 s: one repeat-padded patch
    assert short.shape == (1, 4)


def test_loud_input_stays_finite():
    y = np.sign(np.sin(2 * np.pi * 110 * np.arange(16000) / 16000)).astype(np.float32)  # full scale
    lm = layers.log_mel(y)
    assert np.isfinite(lm).all() and lm.max() > np.log10(10000 * 6.55 + 1)  # float16 would be inf


def test_patches():
    lm = np.arange(500 * 2, dtype=np.float32).reshape(500, 2)
    p = musicnn.patches(lm)
    assert p.shape == (2, 187, 2)  # non-overlapping, the tail dropped
    np.testing.assert_array_equal(p[1], lm[187:374])
    short = musicnn.patches(lm[:50])
    assert short.shape == (1, 187, 2)
    np.testing.assert_array_equal(short[0, 50:100], lm[:50])  # repeat-padded
    assert musicnn.patches(np.zeros((0, 96), np.float32)).shape == (1, 187, 96)
    many = musicnn.patches(np.zeros((187 * 10, 2), np.float32) + np.arange(187 * 10)[:, None], max_patches=4)
    assert list(many[:, 0, 0]) == [0, 187 * 3, 187 * 6, 187 * 9]  # evenly spread, first and last


# --- tiny nets against a literal transcription of musicnn's graph -----------------------------------


def tiny_vgg_weights(f=3):
    w = {}
    put_bn(w, "batch_normalization", bn_params(1))
    cin = 1
    for i in range(1, 6):
        w[f"{i}CNN/kernel"] = (RNG.standard_normal((3, 3, cin, f)) / math.sqrt(9 * cin)).astype(np.float32)
        w[f"{i}CNN/bias"] = RNG.normal(0, 0.1, f).astype(np.float32)
        put_bn(w, f"batch_normalization_{i}", bn_params(f))
        cin = f
    return w


def ref_vgg(x, w):
    h = ref_bn(x[..., None].astype(np.float64), [w[f"batch_normalization/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance")])
    pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
    for i, (pool, strides) in enumerate(pools, 1):
        h = np.maximum(ref_conv(h, w[f"{i}CNN/kernel"], w[f"{i}CNN/bias"], "same"), 0)
        h = ref_bn(h, [w[f"batch_normalization_{i}/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance")])
        h = ref_pool(h, pool, strides, "valid")
    return h  # pool5


def test_tiny_vgg_against_reference():
    w = tiny_vgg_weights(16)  # 16 channels: conv2-5 take the Winograd path
    x = (RNG.random((2, 187, 96)) * 3).astype(np.float32)
    net = musicnn.VGG(w)
    assert [u is not None for u in net.wino] == [False, True, True, True, True]
    feats = net.features(x)
    want = ref_vgg(x, w)
    assert feats.shape == want.shape == (2, 2, 1, 16)
    np.testing.assert_allclose(feats, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(net.embed_patches(x), want.mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)
    assert net.dim == 16


def tiny_musicnn_weights(f1=3, f2=2, m=4, d=5):
    w = {}
    bn = iter(range(11))

    def conv(i, shape):
        sfx = f"_{i}" if i else ""
        w[f"conv2d{sfx}/kernel"] = (RNG.standard_normal(shape) / math.sqrt(np.prod(shape[:3]))).astype(np.float32)
        w[f"conv2d{sfx}/bias"] = RNG.normal(0, 0.1, shape[3]).astype(np.float32)

    def norm(c):
        i = next(bn)
        put_bn(w, "batch_normalization" + (f"_{i}" if i else ""), bn_params(c))

    norm(1)
    conv(0, (7, 38, 1, f1))
    norm(f1)
    conv(1, (7, 67, 1, f1))
    norm(f1)
    for i, k in zip((2, 3, 4), (128, 64, 32), strict=True):
        conv(i, (k, 1, 1, f2))
        norm(f2)
    front = 2 * f1 + 3 * f2
    conv(5, (7, front, 1, m))
    norm(m)
    conv(6, (7, m, 1, m))
    norm(m)
    conv(7, (7, m, 1, m))
    norm(m)
    norm(2 * (front + 3 * m))
    w["dense/kernel"] = RNG.standard_normal((2 * (front + 3 * m), d)).astype(np.float32) * 0.2
    w["dense/bias"] = RNG.normal(0, 0.1, d).astype(np.float32)
    norm(d)
    return w


def ref_musicnn(x, w):
    def bnp(i):
        name = "batch_normalization" + (f"_{i}" if i else "")
        return [w[f"{name}/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance")]

    def cw(i):
        sfx = f"_{i}" if i else ""
        return w[f"conv2d{sfx}/kernel"], w[f"conv2d{sfx}/bias"]

    xin = ref_bn(x[..., None].astype(np.float64), bnp(0))  # (N, T, 96, 1)
    pad7 = np.pad(xin, ((0, 0), (3, 3), (0, 0), (0, 0)))
    feats = []
    for conv_i, bn_i in ((0, 1), (1, 2)):
        y = ref_bn(np.maximum(ref_conv(pad7, *cw(conv_i), "valid"), 0), bnp(bn_i))
        feats.append(y.max(axis=2))  # max_pooling2d over the whole width, squeezed
    for conv_i, bn_i in ((2, 3), (3, 4), (4, 5)):
        y = ref_bn(np.maximum(ref_conv(xin, *cw(conv_i), "same"), 0), bnp(bn_i))
        feats.append(y.max(axis=2))
    front = np.concatenate(feats, axis=2)  # (N, T, front)
    fe = front[..., None]
    c1 = ref_bn(np.maximum(ref_conv(np.pad(fe, ((0, 0), (3, 3), (0, 0), (0, 0))), *cw(5), "valid"), 0), bnp(6))
    c1t = np.transpose(c1, (0, 1, 3, 2))  # (N, T, M, 1)
    c2 = ref_bn(np.maximum(ref_conv(np.pad(c1t, ((0, 0), (3, 3), (0, 0), (0, 0))), *cw(6), "valid"), 0), bnp(7))
    r2 = np.transpose(c2, (0, 1, 3, 2)) + c1t
    c3 = ref_bn(np.maximum(ref_conv(np.pad(r2, ((0, 0), (3, 3), (0, 0), (0, 0))), *cw(7), "valid"), 0), bnp(8))
    r3 = np.transpose(c3, (0, 1, 3, 2)) + r2
    mid = np.concatenate([fe, c1t, r2, r3], axis=2)  # (N, T, D, 1)
    pooled = np.concatenate([mid.max(axis=1), mid.mean(axis=1)], axis=2)  # (N, D, 2)
    flat = ref_bn(pooled.reshape(len(x), -1), bnp(9))
    dense = np.maximum(flat @ w["dense/kernel"] + w["dense/bias"], 0)
    return ref_bn(dense, bnp(10))


def test_tiny_musicnn_against_reference():
    w = tiny_musicnn_weights()
    x = (RNG.random((2, 187, 96)) * 3).astype(np.float32)
    net = musicnn.Musicnn(w)
    got = net.embed_patches(x)
    want = ref_musicnn(x, w)
    assert got.shape == want.shape == (2, 5) and net.dim == 5
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# --- the extractor plugin, end to end on the real converted model ---------------------------------------


def real_models_dir():
    """The models dir of the real user (conftest points XDG_DATA_HOME at a temp dir):
    ``$RECENGINE_TEST_MODELS_DIR`` if set, else ``~/.local/share/recengine/models`` of the
    account's home from the password database."""
    import os
    import pwd
    from pathlib import Path

    from recengine.neural import install

    if os.environ.get("RECENGINE_TEST_MODELS_DIR"):
        return Path(os.environ["RECENGINE_TEST_MODELS_DIR"])
    return install.default_models_dir({"HOME": pwd.getpwuid(os.getuid()).pw_dir})


@pytest.mark.neural
@pytest.mark.parametrize("model", ["MTT_vgg", "MSD_musicnn"])
def test_extractor_end_to_end(model, monkeypatch):
    from recengine.default_plugins import musicnn_extractor as plug
    from recengine.neural import install

    d = real_models_dir()
    if not install.is_installed(model, d):
        if os.environ.get("CI"):  # scripts/setup installs the models: CI runs this test
            pytest.fail(f"musicnn {model} is not installed in {d}: scripts/setup runs `recengine models install`")
        pytest.skip(f"musicnn {model} is not installed in {d} (recengine models install)")
    ex = plug.MusicnnExtractor(model=model, models_dir=d)
    assert ex.sample_rate == 16000 and ex.dim == plug.DIMS[model]
    ex.setup()
    net = ex._net
    ex.setup()  # idempotent: the same net, not reloaded (a worker builds its extractors once)
    assert ex._net is net
    # the hook registers the default net when it is installed in the default dir
    if model == plug.DEFAULT_MODEL:
        monkeypatch.setenv("XDG_DATA_HOME", str(d.parent.parent))
        got = []
        plug.register_extractors(got.append, None)
        assert [e.name for e in got] == ["musicnn"] and got[0].dim == ex.dim
    t = np.arange(16000 * 7) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = (0.2 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    a = ex.extract(tone, 16000)
    assert a.shape == (ex.dim,) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(ex.extract(tone, 16000), a)  # deterministic
    b = ex.extract(noise, 16000)
    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos < 0.99  # a tone and noise are told apart
    batch = ex.extract_batch([(tone, 16000), (noise, 16000)])
    np.testing.assert_array_equal(batch[0], a)
    np.testing.assert_array_equal(batch[1], b)
    # another rate is resampled to 16 kHz: close to the native-rate embedding
    t44 = np.arange(44100 * 7) / 44100
    a44 = ex.extract((0.3 * np.sin(2 * np.pi * 440 * t44)).astype(np.float32), 44100)
    assert float(a @ a44 / np.linalg.norm(a) / np.linalg.norm(a44)) > 0.99
    for y in (np.zeros(0, np.float32), np.zeros(100, np.float32), np.full(16000, np.nan, np.float32)):
        e = ex.extract(y, 16000)
        assert e.shape == (ex.dim,) and np.isfinite(e).all()


def test_plugin_registers_only_when_installed(tmp_path, monkeypatch):
    from recengine.default_plugins import musicnn_extractor as plug
    from recengine.neural import install

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    got = []
    plug.register_extractors(got.append, None)
    assert got == []
    with pytest.raises(install.ModelInstallError, match="not installed"):
        plug.MusicnnExtractor(models_dir=tmp_path).setup()
    with pytest.raises(ValueError, match="unknown musicnn model"):
        plug.MusicnnExtractor(model="nope")
    assert plug.MusicnnExtractor().name == "musicnn"
    assert plug.MusicnnExtractor(model="MSD_musicnn" if plug.DEFAULT_MODEL == "MTT_vgg" else "MTT_vgg").name != "musicnn"
