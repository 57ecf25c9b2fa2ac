"""Similarity-benchmark metrics: same-label precision@k and 1-NN accuracy, micro and macro.

A good neighbour of a track carries the same label (e.g. the same soundtrack). The query track
itself is always excluded from its own neighbour list. "micro" averages over tracks, "macro"
averages the per-label means (each label counts once, however many tracks it has).

Distances are computed exactly (no index) so the numbers measure the vectors, not the index:
``metric="euclidean"`` or ``"angular"`` (Annoy's angular distance, i.e. Euclidean distance between
L2-normalised vectors, which ranks like cosine). A precomputed square distance matrix can be passed
instead of vectors with ``metric="precomputed"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "distance_matrix",
    "precision_at_k",
    "one_nn",
    "chance_precision",
    "evaluate",
]


def distance_matrix(vectors: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Square matrix of pairwise distances, with +inf on the diagonal (the query is excluded)."""
    x = np.asarray(vectors, dtype=np.float64)
    if metric == "precomputed":
        d = x.copy()
    else:
        if metric == "angular":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.maximum(norms, 1e-12)
        elif metric != "euclidean":
            raise ValueError(f"unknown metric {metric!r}")
        sq = np.sum(x * x, axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(d, np.inf)
    return d


def _per_track_and_labels(hits: np.ndarray, labels: Sequence) -> tuple[float, float, dict]:
    labels = np.asarray(labels)
    micro = float(np.mean(hits)) if len(hits) else 0.0
    per_label = {str(lab): float(np.mean(hits[labels == lab])) for lab in np.unique(labels)}
    macro = float(np.mean(list(per_label.values()))) if per_label else 0.0
    return micro, macro, per_label


def _neighbours(vectors, metric: str, k: int) -> np.ndarray:
    d = distance_matrix(vectors, metric)
    # stable sort so ties resolve the same way on every run
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def precision_at_k(vectors, labels: Sequence, k: int = 10, metric: str = "euclidean") -> dict:
    """Fraction of each track's k nearest other tracks that share its label.

    Returns ``{"micro": float, "macro": float, "per_label": {label: float}, "per_track": array}``.
    ``k`` is capped at n - 1.
    """
    labels = np.asarray(labels)
    n = len(labels)
    k = max(1, min(k, n - 1))
    nn = _neighbours(vectors, metric, k)
    per_track = np.mean(labels[nn] == labels[:, None], axis=1)
    micro, macro, per_label = _per_track_and_labels(per_track, labels)
    return {"micro": micro, "macro": macro, "per_label": per_label, "per_track": per_track}


def one_nn(vectors, labels: Sequence, metric: str = "euclidean") -> dict:
    """Accuracy of the nearest other track's label (leave-one-out 1-NN), micro and macro."""
    r = precision_at_k(vectors, labels, k=1, metric=metric)
    return r


def chance_precision(labels: Sequence, k: int = 10) -> dict:
    """Expected precision@k (any k) of a random ranking: (n_label - 1) / (n - 1) per track."""
    labels = np.asarray(labels)
    n = len(labels)
    _, counts = np.unique(labels, return_counts=True)
    count_of = dict(zip(np.unique(labels), counts, strict=True))
    per_track = np.array([(count_of[lab] - 1) / max(n - 1, 1) for lab in labels])
    micro, macro, per_label = _per_track_and_labels(per_track, labels)
    return {"micro": micro, "macro": macro, "per_label": per_label, "per_track": per_track}


def evaluate(vectors, labels: Sequence, k: int = 10, metric: str = "euclidean") -> dict:
    """P@k and 1-NN, micro and macro, plus chance, in one flat dict."""
    p = precision_at_k(vectors, labels, k=k, metric=metric)
    o = one_nn(vectors, labels, metric=metric)
    c = chance_precision(labels, k=k)
    return {
        f"p@{k}_micro": p["micro"],
        f"p@{k}_macro": p["macro"],
        "1nn_micro": o["micro"],
        "1nn_macro": o["macro"],
        "chance_micro": c["micro"],
        "chance_macro": c["macro"],
        "per_label_p": p["per_label"],
        "per_label_1nn": o["per_label"],
    }
