"""Inference-only numpy layers with TensorFlow's semantics, and musicnn's log-mel front end.

Tensors are NHWC float32 (batch, height = time, width = frequency, channels), kernels are TF's
``(kh, kw, c_in, c_out)``; convolution is cross-correlation, as in TF. Convolutions are im2col +
one float32 matmul (BLAS). Padding follows TF: ``"valid"`` keeps only windows fully inside the
input (output ``floor((n - k) / s) + 1``); ``"same"`` gives ``ceil(n / s)`` outputs and pads
``max((out - 1) * s + k - n, 0)`` in total, the smaller half before and the larger after (zeros
for convolution, -inf, i.e. ignored, for max pooling).

Front end (what musicnn computes with librosa 0.10+ defaults, re-derived here): centred STFT
(``n_fft // 2`` zeros each side), periodic Hann window, power spectrum, Slaney-style mel
filterbank (linear below 1 kHz, logarithmic above, each triangle area-normalised), then
``log10(10000 * mel + 1)``, all float32 (musicnn casts the mel to float16 first, which overflows
to inf under NumPy 2 for loud input; float32 avoids it).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "tf_same_padding",
    "conv2d",
    "max_pool2d",
    "batch_norm",
    "bn_scale_shift",
    "dense",
    "relu",
    "hann_periodic",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "power_spectrogram",
    "log_mel",
]

BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default


def tf_same_padding(n: int, k: int, s: int = 1) -> tuple[int, int]:
    """(before, after) padding of TF's ``"same"`` for length ``n``, window ``k``, stride ``s``."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad_hw(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, padding: str, value: float):
    if padding == "valid":
        return x
    if padding != "same":
        raise ValueError(f"padding must be 'same' or 'valid', not {padding!r}")
    ph = tf_same_padding(x.shape[1], kh, sh)
    pw = tf_same_padding(x.shape[2], kw, sw)
    if ph == (0, 0) and pw == (0, 0):
        return x
    return np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None = None,
    padding: str = "valid",
    strides: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """TF ``conv2d``: ``x`` (N, H, W, C), ``kernel`` (kh, kw, C, O) -> (N, H', W', O) float32."""
    x = np.asarray(x, dtype=np.float32)
    kh, kw, c, o = kernel.shape
    if x.ndim != 4 or x.shape[3] != c:
        raise ValueError(f"conv2d: input {x.shape} does not fit kernel {kernel.shape}")
    sh, sw = strides
    xp = _pad_hw(x, kh, kw, sh, sw, padding, 0.0)
    n, hp, wp, _ = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"conv2d: input {x.shape} smaller than kernel {kernel.shape} ('valid')")
    w2 = np.ascontiguousarray(kernel, dtype=np.float32).reshape(kh * kw * c, o)
    if kh == hp and kw == wp:  # the kernel covers the whole input: a plain matmul
        out = xp.reshape(n, kh * kw * c) @ w2
        out = out.reshape(n, 1, 1, o)
    else:
        # (N, Ho, Wo, C, kh, kw) view -> (N*Ho*Wo, kh*kw*C) in the kernel's (kh, kw, c) order
        win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
        cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * ho * wo, kh * kw * c)
        out = (cols @ w2).reshape(n, ho, wo, o)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float32)
    return out


def max_pool2d(
    x: np.ndarray, pool: tuple[int, int], strides: tuple[int, int] | None = None, padding: str = "valid"
) -> np.ndarray:
    """TF ``max_pooling2d`` on (N, H, W, C); ``"same"`` pads with -inf (padding never wins)."""
    ph, pw = pool
    sh, sw = strides if strides is not None else pool
    xp = _pad_hw(np.asarray(x), ph, pw, sh, sw, padding, -np.inf)
    n, hp, wp, c = xp.shape
    ho, wo = (hp - ph) // sh + 1, (wp - pw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"max_pool2d: input {x.shape} smaller than pool {pool} ('valid')")
    out = None
    # the max of (ph * pw) strided slices: no window copies
    for i in range(ph):
        for j in range(pw):
            s = xp[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            if out is None:
                out = s.copy()
            else:
                np.maximum(out, s, out=out)
    return out


def bn_scale_shift(gamma, beta, mean, var, eps: float = BN_EPSILON) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch norm as ``x * scale + shift`` (float32)."""
    scale = np.asarray(gamma, np.float32) / np.sqrt(np.asarray(var, np.float32) + np.float32(eps))
    shift = np.asarray(beta, np.float32) - np.asarray(mean, np.float32) * scale
    return scale.astype(np.float32), shift.astype(np.float32)


def batch_norm(x, gamma, beta, mean, var, eps: float = BN_EPSILON) -> np.ndarray:
    """Inference batch normalisation over the last axis with the moving statistics."""
    scale, shift = bn_scale_shift(gamma, beta, mean, var, eps)
    return np.asarray(x, np.float32) * scale + shift


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    out = np.asarray(x, np.float32) @ np.asarray(kernel, np.float32)
    if bias is not None:
        out += np.asarray(bias, np.float32)
    return out


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x) if x.flags.writeable else np.maximum(x, 0)


# --- front end ---------------------------------------------------------------------------------------


def hann_periodic(n: int) -> np.ndarray:
    """The 'fftbins' Hann window (period n, not n - 1), float32."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


_F_SP = 200.0 / 3  # Hz per mel below the break
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f):
    """Slaney's mel scale: linear up to 1 kHz, then logarithmic (27 mels per factor 6.4)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / _F_SP
    with np.errstate(divide="ignore"):
        log = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-300) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters on Slaney's mel scale, area-normalised.

    Band i rises linearly from edge i to edge i+1 and falls to edge i+2 (edges equally spaced in
    mels from fmin to fmax, computed in float64) and is scaled by 2 / (edge i+2 - edge i) in Hz.
    """
    fmax = sr / 2.0 if fmax is None else fmax
    bins = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (bins[None, :] - lo) / (mid - lo)
    fall = (hi - bins[None, :]) / (hi - mid)
    w = np.maximum(0.0, np.minimum(rise, fall))
    w *= 2.0 / (hi - lo)
    return w.astype(np.float32)


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(frames, 1 + n_fft // 2) |STFT|^2 of ``y``, centred frames (zero padding), float32.

    Frame t covers samples ``[t * hop - n_fft // 2, t * hop + n_fft // 2)``; there are
    ``1 + len(y) // hop`` frames.
    """
    y = np.asarray(y, dtype=np.float32).ravel()
    half = n_fft // 2
    yp = np.zeros(len(y) + 2 * half, dtype=np.float32)
    yp[half : half + len(y)] = y
    frames = sliding_window_view(yp, n_fft)[::hop]
    spec = scipy.fft.rfft(frames * hann_periodic(n_fft), axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


_FB_CACHE: dict[tuple, np.ndarray] = {}


def log_mel(y: np.ndarray, sr: int = 16000, n_fft: int = 512, hop: int = 256, n_mels: int = 96) -> np.ndarray:
    """musicnn's input: (frames, n_mels) ``log10(10000 * mel_power + 1)``, float32."""
    key = (sr, n_fft, n_mels)
    fb = _FB_CACHE.get(key)
    if fb is None:
        fb = _FB_CACHE[key] = np.ascontiguousarray(mel_filterbank(sr, n_fft, n_mels).T)
    mel = power_spectrogram(y, n_fft, hop) @ fb
    mel *= np.float32(10000.0)
    mel += np.float32(1.0)
    return np.log10(mel, out=mel)
