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
    "winograd_kernel",
    "conv3x3_same_winograd",
    "FreqDFTConv",
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


# Winograd F(2x2, 3x3) (Lavin & Gray 2015): a 3x3 stride-1 'same' convolution as 16 matmuls
# on 4x4 input tiles that overlap by 2, 2.25x fewer multiplications than im2col. The transforms
# only add and subtract (and halve, in G), so float32 results stay within ~1e-6 relative.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_kernel(kernel: np.ndarray) -> np.ndarray:
    """(3, 3, C, O) kernel -> (16, C, O) transformed kernel ``G g G^T`` for F(2x2, 3x3)."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.shape[:2] != (3, 3):
        raise ValueError(f"winograd_kernel: a 3x3 kernel, not {k.shape}")
    u = np.einsum("ai,ijco,bj->abco", _G, k, _G)  # (4, 4, C, O)
    return np.ascontiguousarray(u.reshape(16, k.shape[2], k.shape[3]), dtype=np.float32)


def conv3x3_same_winograd(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """TF ``conv2d(x, k, padding="same")`` for a 3x3 kernel, stride 1, with ``u = winograd_kernel(k)``."""
    x = np.asarray(x, dtype=np.float32)
    n, h, w, c = x.shape
    th, tw = -(-h // 2), -(-w // 2)
    # 'same' pads 1 on each side; odd sizes get one more zero row/column so the tiles cover all
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), np.float32)
    xp[:, 1 : h + 1, 1 : w + 1] = x

    def e(a, b):  # element (a, b) of every 4x4 tile: a strided view, no copy
        return xp[:, a : a + 2 * th : 2, b : b + 2 * tw : 2]

    v = np.empty((16, n, th, tw, c), np.float32)
    for b in range(4):  # B^T d along the rows of the tile, for each column b
        d0, d1, d2, d3 = e(0, b), e(1, b), e(2, b), e(3, b)
        v[0 + b] = d0 - d2
        v[4 + b] = d1 + d2
        v[8 + b] = d2 - d1
        v[12 + b] = d1 - d3
    for r in range(4):  # then (.) B along the columns, in place per row r
        t0, t1, t2, t3 = v[4 * r].copy(), v[4 * r + 1].copy(), v[4 * r + 2], v[4 * r + 3]
        v[4 * r + 3] = t1 - t3
        v[4 * r + 0] = t0 - t2
        v[4 * r + 1] = t1 + t2
        np.subtract(t2, t1, out=v[4 * r + 2])
    m = np.matmul(v.reshape(16, n * th * tw, c), u)  # (16, tiles, O)
    o = u.shape[2]
    m = m.reshape(4, 4, n, th, tw, o)
    s0 = m[0] + m[1] + m[2]  # A^T M along the rows: (4, n, th, tw, O) each
    s1 = m[1] - m[2] - m[3]
    y = np.empty((n, th, 2, tw, 2, o), np.float32)
    for i, sr in enumerate((s0, s1)):  # then (.) A along the columns
        y[:, :, i, :, 0] = sr[0] + sr[1] + sr[2]
        y[:, :, i, :, 1] = sr[1] - sr[2] - sr[3]
    return y.reshape(n, 2 * th, 2 * tw, o)[:, :h, :w]


class FreqDFTConv:
    """'valid' convolutions of a one-channel (P, T + kt - 1, F) input, computed through a DFT along F.

    For kernels ``(kt, kf_i, 1, O_i)`` sharing ``kt`` (musicnn's timbral 7x38 and 7x67 filters),
    a cross-correlation along F is a product with the conjugate kernel spectrum after a length-F
    real DFT; the outputs at the ``F - kf_i + 1`` 'valid' positions are untouched by the circular
    wrap-around. So: one real FFT of the input rows; per frequency bin, one small matmul sums the
    ``kt`` time taps (real and imaginary parts as a real (2 O) x (2 kt) product); then the inverse
    DFT at the valid positions only, as one matmul per kernel. About 2-3x fewer flops than im2col
    for these kernels; float32 results within ~1e-6 relative of the direct sum.
    """

    def __init__(self, kernels: list[np.ndarray], width: int):
        kts = {k.shape[0] for k in kernels}
        if len(kts) != 1 or any(k.shape[2] != 1 or k.shape[1] > width for k in kernels):
            raise ValueError("FreqDFTConv: kernels (kt, kf <= width, 1, O) with one kt")
        self.kt = kts.pop()
        self.width = width
        nb = width // 2 + 1
        self.nb = nb
        spec = [
            np.fft.rfft(np.asarray(k[:, :, 0, :], np.float64), n=width, axis=1) for k in kernels
        ]  # (kt, nb, O_i)
        w = np.concatenate(spec, axis=2)
        wr, wi = w.real.transpose(1, 2, 0), w.imag.transpose(1, 2, 0)  # (nb, O, kt)
        # rows: [Re y (O); Im y (O)], columns: [Re x taps (kt), Im x taps (kt)]; y = x * conj(w)
        top = np.concatenate([wr, wi], axis=2)
        bottom = np.concatenate([-wi, wr], axis=2)
        self.bt = np.ascontiguousarray(np.concatenate([top, bottom], axis=1), dtype=np.float32)
        self.o_total = w.shape[2]
        self.splits = []
        lo = 0
        k = np.arange(nb)
        weight = np.where((k == 0) | ((width % 2 == 0) & (k == width // 2)), 1.0, 2.0) / width
        for kern in kernels:
            nv = width - kern.shape[1] + 1
            f = np.arange(nv)[:, None]
            inv = np.empty((nv, nb, 2))
            inv[:, :, 0] = weight * np.cos(2 * np.pi * k * f / width)
            inv[:, :, 1] = -weight * np.sin(2 * np.pi * k * f / width)
            self.splits.append((lo, kern.shape[3], np.ascontiguousarray(inv.reshape(nv, 2 * nb), dtype=np.float32)))
            lo += kern.shape[3]

    def _spectra(self, xp: np.ndarray):
        """Per patch: the (nb, 2 O, T) tap-summed spectra of all kernels' outputs."""
        xp = np.asarray(xp, dtype=np.float32)
        if xp.ndim != 3 or xp.shape[2] != self.width or xp.shape[1] < self.kt:
            raise ValueError(f"FreqDFTConv: input {xp.shape} does not fit (P, >= {self.kt}, {self.width})")
        t = xp.shape[1] - self.kt + 1
        x = scipy.fft.rfft(xp, axis=2)  # (P, T + kt - 1, nb) complex64
        for i in range(xp.shape[0]):
            xr = np.ascontiguousarray(x[i].real.T)  # (nb, T + kt - 1)
            xi = np.ascontiguousarray(x[i].imag.T)
            at = np.empty((self.nb, 2 * self.kt, t), np.float32)
            for j in range(self.kt):
                at[:, j] = xr[:, j : j + t]
                at[:, self.kt + j] = xi[:, j : j + t]
            yield t, np.matmul(self.bt, at).reshape(self.nb, 2, self.o_total, t)

    def _outputs(self, y: np.ndarray, t: int):
        for lo, oc, inv in self.splits:
            part = y[:, :, lo : lo + oc, :]  # (nb, 2, oc, t): rows (bin, re/im) at one stride
            rows = np.lib.stride_tricks.as_strided(part, shape=(2 * self.nb, oc * t), strides=(part.strides[1], 4))
            yield (inv @ rows).reshape(inv.shape[0], oc, t)  # (valid F, oc, t)

    def __call__(self, xp: np.ndarray) -> list[np.ndarray]:
        """The full outputs, (P, T, F - kf_i + 1, O_i) per kernel (as ``conv2d(..., "valid")``)."""
        outs: list[list[np.ndarray]] = [[] for _ in self.splits]
        for t, y in self._spectra(xp):
            for i, z in enumerate(self._outputs(y, t)):
                outs[i].append(z.transpose(2, 0, 1))
        return [np.stack(o) for o in outs]

    def max_over_freq(self, xp: np.ndarray, chunk: int = 2048) -> list[np.ndarray]:
        """The outputs' maximum over the valid frequency positions: (P, T, O_i) per kernel.

        The inverse transform runs ``chunk`` columns at a time, each reduced while in cache.
        """
        outs: list[list[np.ndarray]] = [[] for _ in self.splits]
        for t, y in self._spectra(xp):
            for i, (lo, oc, inv) in enumerate(self.splits):
                part = y[:, :, lo : lo + oc, :]
                rows = np.lib.stride_tricks.as_strided(part, shape=(2 * self.nb, oc * t), strides=(part.strides[1], 4))
                mx = np.empty(oc * t, np.float32)
                for s in range(0, oc * t, chunk):
                    np.max(inv @ rows[:, s : s + chunk], axis=0, out=mx[s : s + chunk])
                outs[i].append(mx.reshape(oc, t).T)
        return [np.stack(o) for o in outs]


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


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int, frames=None, chunk: int = 2048) -> np.ndarray:
    """(frames, 1 + n_fft // 2) |STFT|^2 of ``y``, centred frames (zero padding), float32.

    Frame t covers samples ``[t * hop - n_fft // 2, t * hop + n_fft // 2)``; there are
    ``1 + len(y) // hop`` frames. ``frames`` (indices) computes only those, in that order. Frames
    are transformed ``chunk`` at a time, so memory stays ~ the signal plus one chunk.
    """
    y = np.asarray(y, dtype=np.float32).ravel()
    half = n_fft // 2
    yp = np.zeros(len(y) + 2 * half, dtype=np.float32)
    yp[half : half + len(y)] = y
    view = sliding_window_view(yp, n_fft)[::hop]
    idx = np.arange(view.shape[0]) if frames is None else np.asarray(frames, dtype=np.intp)
    window = hann_periodic(n_fft)
    out = np.empty((len(idx), n_fft // 2 + 1), np.float32)
    for s in range(0, len(idx), chunk):
        spec = scipy.fft.rfft(view[idx[s : s + chunk]] * window, axis=1)
        out[s : s + chunk] = spec.real**2 + spec.imag**2
    return out


_FB_CACHE: dict[tuple, np.ndarray] = {}


def log_mel(
    y: np.ndarray, sr: int = 16000, n_fft: int = 512, hop: int = 256, n_mels: int = 96, frames=None
) -> np.ndarray:
    """musicnn's input: (frames, n_mels) ``log10(10000 * mel_power + 1)``, float32.

    ``frames``: compute only these frame indices (see :func:`power_spectrogram`).
    """
    key = (sr, n_fft, n_mels)
    fb = _FB_CACHE.get(key)
    if fb is None:
        fb = _FB_CACHE[key] = np.ascontiguousarray(mel_filterbank(sr, n_fft, n_mels).T)
    mel = power_spectrogram(y, n_fft, hop, frames) @ fb
    mel *= np.float32(10000.0)
    mel += np.float32(1.0)
    return np.log10(mel, out=mel)
