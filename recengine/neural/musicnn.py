"""musicnn's MTT_vgg and MSD_musicnn (Pons & Serra, MTG-UPF, ISC licence) as numpy forward passes.

Re-implemented from the published architecture (``musicnn/models.py`` of musicnn 0.1.0); weights
come from the converted checkpoints (:mod:`recengine.neural.install`), under their TF names.

Input: 16 kHz mono audio -> :func:`recengine.neural.layers.log_mel` (frames of 256 samples, 96
bands) -> non-overlapping patches of 187 frames (3 s; musicnn's extractor with its default
``input_overlap=False``). A track shorter than one patch is repeat-padded (as musicnn's training
did, ``pad_short: repeat-pad``) instead of giving no output.

- ``MTT_vgg``: batch-normalised input, five 3x3 'same' conv (128) + ReLU + batch norm + max pool
  blocks (pools 4x1/2, 2x2, 2x2, 2x2, 4x4, all 'valid'); ``pool5`` is (2, 1, 128) per patch, and
  the patch embedding is its mean over the 2 time positions (musicnn's extractor returns both rows;
  averaging over all rows of all patches is the same track mean).
- ``MSD_musicnn``: timbral (7x38 and 7x67 'valid' convs on the time-padded input, 204 filters
  each) and temporal (128x1, 64x1, 32x1 'same' convs, 51 each) front end, each max-pooled over
  frequency; three dense 7-tap 1-D conv layers (64) with residual connections; global max + mean
  pooling over time of everything (753 features, interleaved max/mean = 1506), batch norm, dense
  200 + ReLU + batch norm = ``penultimate`` (the embedding).

Speed, all exact or within float32 rounding of the plain computation:

- bias, ReLU and batch norm before a max pool are applied after the pool (exact, see
  :func:`_pool_then_act`); kernels of channels with a negative batch-norm scale are negated at
  load time so one max pool serves every channel (:func:`_flip`);
- VGG conv1 is computed only at the even frequency columns that pool1 (4x1, stride 2) keeps;
  conv2-5 are Winograd F(2x2, 3x3) (:func:`recengine.neural.layers.conv3x3_same_winograd`);
- musicnn's two timbral convolutions (one input channel, kernels 38 and 67 bins wide) go through
  one DFT along frequency (:class:`recengine.neural.layers.FreqDFTConv`), 2-3x fewer flops;
- every other convolution is im2col + one float32 matmul (BLAS); the three temporal kernels
  of musicnn share one 128-tap im2col (the shorter kernels read their columns of it), a block
  of frames at a time; patches run one at a time (the buffers stay in cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import layers

SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3 s) + 1, as musicnn computes it
PATCH_SECONDS = PATCH_FRAMES * HOP / SR

MODELS = ("MTT_vgg", "MSD_musicnn")
TEMPORAL_BLOCK = 16  # frames per temporal-conv block (16 x 96 rows: fits in L2 with its output)


def patches(logmel: np.ndarray, n_frames: int = PATCH_FRAMES, max_patches: int | None = None) -> np.ndarray:
    """(P, n_frames, bands) non-overlapping patches; a short input is repeat-padded to one patch.

    With ``max_patches`` set and more patches available, that many are taken evenly spaced over
    the track (first and last included).
    """
    t = logmel.shape[0]
    if t < n_frames:
        if t == 0:
            logmel = np.zeros((1, logmel.shape[1]), np.float32)
            t = 1
        reps = -(-n_frames // t)
        return np.tile(logmel, (reps, 1))[None, :n_frames]
    starts = patch_starts(t, n_frames, max_patches)
    return np.stack([logmel[s : s + n_frames] for s in starts]).astype(np.float32, copy=False)


def patch_starts(total_frames: int, n_frames: int = PATCH_FRAMES, max_patches: int | None = None) -> np.ndarray:
    """First frame of each patch :func:`patches` takes from ``total_frames`` (>= n_frames) frames."""
    p = (total_frames - n_frames) // n_frames + 1
    starts = np.arange(p) * n_frames
    if max_patches is not None and p > max_patches:
        starts = starts[np.round(np.linspace(0, p - 1, max_patches)).astype(int)]
    return starts


def _pool_then_act(z, bias, scale, shift, pool, strides, sign=None) -> np.ndarray:
    """``max_pool(bn(relu(z + bias)))`` computed as the pool of ``z`` first, then the rest.

    Exact in floating point: every step ``v -> fl(v + b)``, ``relu``, ``v -> fl(v * s + t)`` is
    monotone, non-decreasing except the last for s < 0, where it is non-increasing; so the max
    of the mapped window is the map of the window's max (s >= 0) or of its min (s < 0). The
    element-wise work then runs on the pooled (smaller) array. ``pool=None`` pools over all of
    axis 2 (frequency), dropping it.

    ``sign`` (from :func:`_flip`): ``z`` was computed with the kernels of the s < 0 channels
    negated (exact: negation commutes with every rounding), so one max pool gives the max of
    ``z`` on those channels and minus the min on the others; no second pass for the minimum.
    """
    if sign is not None:
        return _act(z.max(axis=2) if pool is None else layers.max_pool2d(z, pool, strides), bias, scale, shift, sign)
    neg = scale < 0
    if pool is None:
        v = z.max(axis=2)
        if neg.any():
            v = np.where(neg, z.min(axis=2), v)
    else:
        v = layers.max_pool2d(z, pool, strides)
        if neg.any():
            mn = -layers.max_pool2d(-z, pool, strides)
            v = np.where(neg, mn, v)
    v += bias
    np.maximum(v, 0, out=v)
    v *= scale
    v += shift
    return v


def _act(v: np.ndarray, bias, scale, shift, sign) -> np.ndarray:
    """bn(relu(v * sign + bias)) in place on a pooled array (see :func:`_pool_then_act`)."""
    v *= sign
    v += bias
    np.maximum(v, 0, out=v)
    v *= scale
    v += shift
    return v


def _flip(kernel: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kernel with the output channels of negative batch-norm scale negated, and the sign vector."""
    sign = np.where(scale < 0, np.float32(-1), np.float32(1))
    return np.ascontiguousarray(kernel * sign, dtype=np.float32), sign


def _bn(w: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    return layers.bn_scale_shift(
        w[f"{name}/gamma"], w[f"{name}/beta"], w[f"{name}/moving_mean"], w[f"{name}/moving_variance"]
    )


def _bias_relu(y: np.ndarray, b: np.ndarray) -> np.ndarray:
    y += b
    np.maximum(y, 0, out=y)
    return y


@dataclass
class VGG:
    """MTT_vgg / MSD_vgg: embedding = pool5 (128)."""

    w: dict
    dim: int = 128
    name: str = "MTT_vgg"

    def __post_init__(self):
        w = self.w
        self.bn0 = _bn(w, "batch_normalization")
        self.convs = []
        self.signs = []
        for i in range(1, 6):
            bn = _bn(w, f"batch_normalization_{i}")
            k, sign = _flip(w[f"{i}CNN/kernel"], bn[0])
            self.convs.append((k, w[f"{i}CNN/bias"].astype(np.float32), bn))
            self.signs.append(sign)
        # conv2-5 (128 -> 128 channels) run as Winograd F(2x2, 3x3): 2.25x fewer multiplications
        self.wino = [layers.winograd_kernel(k) if k.shape[2] >= 16 else None for k, _, _ in self.convs]
        self.pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
        self.dim = self.convs[-1][0].shape[3]

    def features(self, x: np.ndarray) -> np.ndarray:
        """(P, 187, 96) log-mel patches -> (P, 2, 1, 128) pool5."""
        s0, b0 = self.bn0
        h = (x[..., None] * s0 + b0).astype(np.float32)
        for (k, b, (s, t)), sg, u, (pool, strides) in zip(self.convs, self.signs, self.wino, self.pools, strict=True):
            if h.shape[2] > 1 and pool[1] == 1 and strides[1] > 1:
                # pool width 1 with a frequency stride: only every strides[1]-th column survives,
                # so compute the conv at those columns only: the stride-1 'same' padding (TF's
                # 'same' for stride 2 would pad differently), then a 'valid' conv with stride (1, sw)
                ph = layers.tf_same_padding(h.shape[1], k.shape[0])
                pw = layers.tf_same_padding(h.shape[2], k.shape[1])
                hp = np.pad(h, ((0, 0), ph, pw, (0, 0)))
                z = layers.conv2d(hp, k, None, "valid", strides=(1, strides[1]))
                h = _pool_then_act(z, b, s, t, pool, (strides[0], 1), sg)
            else:
                z = layers.conv3x3_same_winograd(h, u) if u is not None else layers.conv2d(h, k, None, "same")
                h = _pool_then_act(z, b, s, t, pool, strides, sg)
        return h

    def embed_patches(self, x: np.ndarray) -> np.ndarray:
        """(P, 187, 96) -> (P, 128): pool5 averaged over its time positions."""
        return self.features(x).mean(axis=(1, 2))


@dataclass
class Musicnn:
    """MTT_musicnn / MSD_musicnn: embedding = penultimate (200)."""

    w: dict
    dim: int = 200
    name: str = "MSD_musicnn"

    def __post_init__(self):
        w = self.w

        def conv(i):
            sfx = f"_{i}" if i else ""
            return np.ascontiguousarray(w[f"conv2d{sfx}/kernel"], np.float32), w[f"conv2d{sfx}/bias"].astype(
                np.float32
            )

        def bn(i):
            return _bn(w, "batch_normalization" + (f"_{i}" if i else ""))

        self.bn_in = bn(0)
        self.timbral = []  # 7x38, 7x67, 'valid' on the time-padded input; kernels sign-flipped
        for c, b in ((conv(0), bn(1)), (conv(1), bn(2))):
            k, sign = _flip(c[0], b[0])
            self.timbral.append(((k, c[1]), b, sign))
        # both timbral convs through one DFT along frequency (the input is one channel, 96 wide)
        self.timbral_dft = layers.FreqDFTConv([k for (k, _), _, _ in self.timbral], N_MELS)
        self.temporal = [(conv(2), bn(3)), (conv(3), bn(4)), (conv(4), bn(5))]  # 128x1, 64x1, 32x1 'same'
        self.mid = [(conv(5), bn(6)), (conv(6), bn(7)), (conv(7), bn(8))]
        self.bn_pool = bn(9)
        self.dense_w = w["dense/kernel"].astype(np.float32)
        self.dense_b = w["dense/bias"].astype(np.float32)
        self.bn_dense = bn(10)
        self.dim = self.dense_w.shape[1]
        # the three temporal kernels as one 128-tap bank, each centred as TF's 'same' pads it
        kmax = self.temporal[0][0][0].shape[0]
        before_max = layers.tf_same_padding(PATCH_FRAMES, kmax)[0]
        bank = []
        for (k, _), _ in self.temporal:
            kt = k.shape[0]
            off = before_max - layers.tf_same_padding(PATCH_FRAMES, kt)[0]
            z = np.zeros((kmax, k.shape[3]), np.float32)
            z[off : off + kt] = k[:, 0, 0, :]
            bank.append(z)
        self.temporal_bias = np.concatenate([b for (_, b), _ in self.temporal])
        ts = [bn_ for _, bn_ in self.temporal]
        self.temporal_bn = (np.concatenate([s for s, _ in ts]), np.concatenate([t for _, t in ts]))
        self.temporal_bank, self.temporal_sign = _flip(np.concatenate(bank, axis=1), self.temporal_bn[0])
        # (tap range in the 128-tap window, output columns, kernel) per temporal conv
        self.temporal_parts = []
        c0 = 0
        for (k, _), _ in self.temporal:
            off = before_max - layers.tf_same_padding(PATCH_FRAMES, k.shape[0])[0]
            c1 = c0 + k.shape[3]
            part = np.ascontiguousarray(self.temporal_bank[off : off + k.shape[0], c0:c1])  # sign-flipped
            self.temporal_parts.append(((off, off + k.shape[0]), (c0, c1), part))
            c0 = c1

    def embed_patches(self, x: np.ndarray) -> np.ndarray:
        """(P, T, 96) -> (P, 200) penultimate layer."""
        p, t, f = x.shape
        s0, b0 = self.bn_in
        xn = (x * s0 + b0).astype(np.float32)
        feats = []
        if f == self.timbral_dft.width:
            maxes = self.timbral_dft.max_over_freq(np.pad(xn, ((0, 0), (3, 3), (0, 0))))
        else:  # another input width: im2col
            xpad = np.pad(xn, ((0, 0), (3, 3), (0, 0)))[..., None]
            maxes = [layers.conv2d(xpad, k, None, "valid").max(axis=2) for (k, _), _, _ in self.timbral]
        for mx, ((_, b), (s, sh), sign) in zip(maxes, self.timbral, strict=True):
            feats.append(_act(mx, b, s, sh, sign))  # (P, T, C)
        # temporal: 1-D convs along time per frequency bin, the three banks in one matmul, a block
        # of frames at a time (im2col, product and the max over frequency stay in cache)
        kmax = self.temporal_bank.shape[0]
        before = layers.tf_same_padding(t, kmax)
        xt = np.pad(xn, ((0, 0), before, (0, 0)))  # (P, T + kmax - 1, F)
        win = sliding_window_view(xt, kmax, axis=1)  # (P, T, F, kmax)
        mx = np.empty((p, t, self.temporal_bank.shape[1]), np.float32)
        for i in range(p):
            for s in range(0, t, TEMPORAL_BLOCK):
                cols = np.ascontiguousarray(win[i, s : s + TEMPORAL_BLOCK]).reshape(-1, kmax)
                rows = cols.shape[0] // f
                # each kernel on its own columns of the 128-tap windows (a strided view, no copy)
                for (a, b), (c0, c1), k in self.temporal_parts:
                    z = cols[:, a:b] @ k
                    np.max(z.reshape(rows, f, c1 - c0), axis=1, out=mx[i, s : s + TEMPORAL_BLOCK, c0:c1])
        feats.append(_act(mx, self.temporal_bias, *self.temporal_bn, self.temporal_sign))
        front = np.concatenate(feats, axis=2)  # (P, T, 561)
        # mid-end: 7-tap convs over all features ('valid' on the time-padded map), residual
        mids = [front]
        h = front
        for i, ((k, b), (s, sh)) in enumerate(self.mid):
            hp = np.pad(h, ((0, 0), (3, 3), (0, 0)))[..., None]  # (P, T + 6, D, 1)
            y = _bias_relu(layers.conv2d(hp, k, None, "valid"), b)[:, :, 0, :]  # (P, T, 64)
            y = y * s + sh
            h = y if i == 0 else y + h
            mids.append(h)
        m = np.concatenate(mids, axis=2)  # (P, T, 753)
        pooled = np.stack([m.max(axis=1), m.mean(axis=1)], axis=2).reshape(p, -1)  # interleaved
        sp, bp = self.bn_pool
        z = layers.dense(pooled * sp + bp, self.dense_w, self.dense_b)
        np.maximum(z, 0, out=z)
        sd, bd = self.bn_dense
        return z * sd + bd


def build(name: str, weights: dict):
    if "vgg" in name:
        return VGG(weights, name=name)
    if "musicnn" in name:
        return Musicnn(weights, name=name)
    raise ValueError(f"unknown musicnn model {name!r}")


def track_patch_embeddings(net, samples: np.ndarray, batch: int = 4, max_patches: int | None = None) -> np.ndarray:
    """(P, dim) embeddings of the 3 s patches of 16 kHz ``samples``.

    Only the STFT frames of the patches that are analysed are computed (the same values as
    slicing the whole track's log-mel, without holding it).
    """
    total = 1 + len(samples) // HOP
    if total < PATCH_FRAMES:
        x = patches(layers.log_mel(samples, SR, N_FFT, HOP, N_MELS))
    else:
        starts = patch_starts(total, PATCH_FRAMES, max_patches)
        idx = (starts[:, None] + np.arange(PATCH_FRAMES)[None, :]).ravel()
        x = layers.log_mel(samples, SR, N_FFT, HOP, N_MELS, frames=idx).reshape(len(starts), PATCH_FRAMES, N_MELS)
    out = [net.embed_patches(x[i : i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate(out, axis=0).astype(np.float32)
