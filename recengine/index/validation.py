"""Which vectors may enter the index, and lookups of track ids in id arrays.

Invalid vectors never reach Annoy: zero vectors have no angle (annoy #249) and huge ones overflow
Annoy's float32 dot products into inf/NaN, so a row must be real numbers of the right length,
finite in float32, with a norm in [:data:`MIN_NORM`, :data:`MAX_NORM`].
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

MIN_NORM = 1e-6
MAX_NORM = 1e15
_BLOCK = 65536


def clean_rows(vectors, dim: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(mask of valid rows, float32 matrix with invalid rows zeroed, dim). Valid: real
    numbers (float or int dtype), length ``dim``, finite in float32, norm in [MIN_NORM, MAX_NORM].
    ``dim`` None: taken from a 2-D array, else the most common row length."""
    with np.errstate(all="ignore"):
        if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
            dim = dim or vectors.shape[1]
            if vectors.dtype.kind not in "fiu" or vectors.shape[1] != dim:
                return np.zeros(len(vectors), bool), np.zeros((len(vectors), dim), np.float32), dim
            x = np.array(vectors, dtype=np.float32)
            mask = np.ones(len(x), bool)
        else:
            rows = []
            for v in vectors:
                try:
                    rows.append(np.asarray(v))
                except (ValueError, TypeError):
                    rows.append(np.asarray(None))
            if dim is None:
                lens = Counter(r.shape[0] for r in rows if r.ndim == 1 and r.shape[0] > 0)
                dim = lens.most_common(1)[0][0] if lens else 1
            x = np.zeros((len(rows), dim), np.float32)
            mask = np.zeros(len(rows), bool)
            for i, r in enumerate(rows):
                if r.ndim == 1 and r.shape[0] == dim and r.dtype.kind in "fiu":
                    x[i], mask[i] = r, True
        for a in range(0, len(x), _BLOCK):
            c = x[a : a + _BLOCK]
            norm = np.sqrt(np.einsum("ij,ij->i", c, c, dtype=np.float64))
            mask[a : a + _BLOCK] &= np.isfinite(c).all(axis=1) & (norm >= MIN_NORM) & (norm <= MAX_NORM)
    x[~mask] = 0
    return mask, x, dim


def query_vector(vector, dim: int) -> np.ndarray:
    """``vector`` as a valid float32 row of length ``dim``; ValueError if it is not one."""
    mask, x, _ = clean_rows([vector], dim)
    if not mask[0]:
        raise ValueError("query vector is not finite, has the wrong length/dtype or a bad norm")
    return x[0]


@dataclass(frozen=True)
class IdLookup:
    """Positions of track ids in an unsorted int64 id array (distinct ids)."""

    ids: np.ndarray
    order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", np.argsort(self.ids, kind="stable"))

    def positions(self, track_ids: np.ndarray) -> np.ndarray:
        """Position of each of ``track_ids`` in ``ids``, -1 where it is not there."""
        if not len(self.ids):
            return np.full(len(track_ids), -1, np.int64)
        pos = np.searchsorted(self.ids, track_ids, sorter=self.order)
        found = self.order[np.minimum(pos, len(self.ids) - 1, out=pos)]
        return np.where(self.ids[found] == track_ids, found, -1)
