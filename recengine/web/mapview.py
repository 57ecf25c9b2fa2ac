"""The library map: every analysed track placed in 2-D by PCA of its index vector.

The two principal axes are fitted once per index generation (on up to ``FIT_ROWS`` of the vectors
indexed when the map is first asked for, rows scaled to unit length for the angular metric) and
kept in memory; the tracks' coordinates and
labels are recomputed only when the catalog or the generation changes, and the encoded answer is
cached until then. Coordinates are whole numbers in ``[0, GRID]`` (compact JSON); the robust
range (0.5th-99.5th percentile) fills the grid, outliers sit on its edge.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from recengine.catalog.browse import Browse
from recengine.jsontext import json_bytes

#: Coordinates run from 0 to this.
GRID = 10000
#: Rows the axes are fitted on (a random sample of larger libraries: the axes are stable).
FIT_ROWS = 5000
#: Tracks whose vectors are read and placed at a time (bounds the memory a large map needs).
CHUNK = 10000


@dataclass(frozen=True)
class Axes:
    """Two principal axes and the grid scaling of one index generation."""

    built_at: float  # of the index generation
    mean: np.ndarray  # (dim,)
    components: np.ndarray  # (dim, 2)
    low: np.ndarray  # (2,) grid origin
    span: np.ndarray  # (2,) grid size

    def place(self, rows: np.ndarray) -> np.ndarray:
        """(n, 2) int32 grid coordinates of prepared rows."""
        xy = (rows - self.mean) @ self.components
        return np.clip(np.rint((xy - self.low) / self.span * GRID), 0, GRID).astype(np.int32)


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    if metric == "angular" and len(rows):
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return rows


def fit_axes(rows: np.ndarray, built_at: float) -> Axes:
    """PCA to 2 dimensions of prepared ``rows`` (deterministic signs); the grid spans their
    robust range."""
    dim = rows.shape[1] if rows.ndim == 2 else 0
    if len(rows) < 3 or dim < 2:
        comps = np.eye(max(dim, 2), 2, dtype=np.float32)[:dim]
        mean = rows.mean(axis=0) if len(rows) else np.zeros(dim, np.float32)
    else:
        mean = rows.mean(axis=0)
        centred = (rows - mean).astype(np.float64)
        _, vecs = np.linalg.eigh(centred.T @ centred)
        comps = vecs[:, ::-1][:, :2]
        comps *= np.sign(comps[np.abs(comps).argmax(axis=0), [0, 1]])
        comps = comps.astype(np.float32)
    xy = (rows - mean) @ comps if len(rows) else np.zeros((0, 2), np.float32)
    if len(xy):
        low, high = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)
    else:
        low, high = np.zeros(2), np.ones(2)
    span = np.where(high - low > 1e-9, high - low, 1.0)
    return Axes(built_at, mean.astype(np.float32), comps, low.astype(np.float32), span.astype(np.float32))


class LibraryMap:
    """The map of one engine's library, cached per index generation and catalog state."""

    def __init__(self, index: Any, browse: Browse):
        self.index = index
        self.browse = browse
        self._lock = threading.Lock()
        self._axes: Axes | None = None
        self._key: tuple | None = None
        self._body: bytes = b""

    def body(self) -> bytes:
        """The map as JSON bytes: ``{built_at, count, grid, ids, x, y, artist, album, folder,
        artists, albums, folders}``, the label columns indexing the name lists; ``built_at`` names
        the index generation."""
        key = (self.index.built_at, self.browse.version())
        with self._lock:
            if key != self._key:
                self._body = json_bytes(self._compute(key[0]))
                self._key = key
            return self._body

    def _compute(self, built_at: float) -> dict[str, Any]:
        labels = self.browse.map_labels()
        ids = np.asarray(labels.ids, np.int64)
        if self._axes is None or self._axes.built_at != built_at:
            sample = ids if len(ids) <= FIT_ROWS else np.sort(
                np.random.default_rng(0).choice(ids, FIT_ROWS, replace=False))
            self._axes = fit_axes(self._rows(sample.tolist())[1], built_at)
        keep = np.zeros(len(ids), bool)
        xy = np.zeros((len(ids), 2), np.int32)
        for start in range(0, len(ids), CHUNK):  # bounded memory: one chunk of vectors at a time
            found, rows = self._rows(ids[start:start + CHUNK].tolist())
            if len(rows) and rows.shape[1] == self._axes.mean.shape[0]:
                keep[start:start + CHUNK] = found
                xy[start:start + CHUNK][found] = self._axes.place(rows)

        def column(values: list[int]) -> list[int]:
            return np.asarray(values, np.int32)[keep].tolist()

        return {"built_at": built_at, "count": int(keep.sum()), "grid": GRID,
                "ids": ids[keep].tolist(), "x": xy[keep, 0].tolist(), "y": xy[keep, 1].tolist(),
                "artist": column(labels.artist), "album": column(labels.album), "folder": column(labels.folder),
                "artists": labels.artists, "albums": labels.albums, "folders": labels.folders}

    def _rows(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ``ids`` in the index, their prepared vectors)."""
        mask, matrix = self.index.vectors_matrix(ids)
        if not len(matrix):
            return mask, np.zeros((0, 0), np.float32)
        return mask, prepare(matrix, self.index.metric)
