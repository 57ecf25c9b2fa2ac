"""Distances between index vectors, as Annoy computes them, and their [0, 1] closeness."""

from __future__ import annotations

import numpy as np

#: Below this distance two tracks are the same audio (another encoding or copy).
DUPLICATE_DISTANCE = 1e-3


def distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Distance(s) between ``a`` (d,) and ``b`` (d,) or (n, d), as Annoy computes them."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if metric == "angular":
        na = a / max(np.linalg.norm(a), 1e-12)
        nb = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
        return np.sqrt(np.maximum(2.0 - 2.0 * (nb @ na), 0.0))
    return np.linalg.norm(b - a, axis=-1)


def closeness(d: float, metric: str) -> float:
    """A distance as a score in [0, 1] (1 = identical)."""
    return float(max(0.0, 1.0 - d / 2.0)) if metric == "angular" else float(1.0 / (1.0 + d))
