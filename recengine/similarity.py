"""Similarity queries over the catalog's feature vectors (exact search)."""

from __future__ import annotations

import numpy as np

from .models import Recommendation


def library_vectors(engine) -> tuple[list[int], np.ndarray]:
    """One vector per featurised track: each block standardised over the library, weighted equally."""
    versions = engine.extractor_versions()
    ids, blocks = engine.catalog.feature_matrix(versions)
    if not ids:
        return [], np.zeros((0, 0), np.float32)
    parts = []
    for name in sorted(blocks):
        m = blocks[name].astype(np.float64)
        scale = m.std(axis=0)
        scale[scale < 1e-9] = 1.0
        parts.append((m - m.mean(axis=0)) / scale / np.sqrt(m.shape[1]))
    return ids, np.hstack(parts).astype(np.float32)


def similar_tracks(engine, seeds: list[int], n: int = 10) -> list[Recommendation]:
    ids, vectors = library_vectors(engine)
    index = {t: i for i, t in enumerate(ids)}
    rows = [index[s] for s in seeds if s in index]
    if not rows:
        return []
    centre = vectors[rows].mean(axis=0)
    dist = np.linalg.norm(vectors - centre, axis=1)
    out = []
    for i in np.argsort(dist):
        if ids[i] in seeds:
            continue
        track = engine.catalog.track(ids[i])
        if track is not None:
            out.append(Recommendation(track, score=float(1 / (1 + dist[i])), distance=float(dist[i])))
        if len(out) >= n:
            break
    return out
