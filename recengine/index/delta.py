"""The exact delta: tracks featurised after the current generation was built, and removals.

Fresh vectors are searched exactly with numpy; a removed track (or one whose fresh vector
supersedes its generation copy) is hidden from the generation's answers at once. Every change
carries a sequence number, so a build can drop exactly the changes made before it started and
keep those made while it ran. Queries read an immutable :class:`Snapshot`, made once per change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from recengine.index.validation import IdLookup

_MIN_CAPACITY = 64


@dataclass(frozen=True)
class Snapshot:
    """The delta as one query sees it."""

    ids: np.ndarray
    vecs: np.ndarray  # float32, as given
    unit: np.ndarray  # vecs scaled to unit length for "angular", else vecs
    hidden: frozenset[int]  # ids in the generation not to return: removed, or superseded by the delta

    @functools.cached_property
    def lookup(self) -> IdLookup:
        return IdLookup(self.ids)

    def distances(self, q: np.ndarray, metric: str) -> np.ndarray:
        """Distance of every fresh vector to ``q``, as Annoy computes it for ``metric``."""
        if metric == "angular":
            # einsum, not BLAS: a threaded gemv stalls for ms when another process holds a core
            cos = np.einsum("ij,j->i", self.unit, q / np.linalg.norm(q))
            return np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))
        diff = self.vecs - q
        if metric == "euclidean":
            return np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return np.abs(diff).sum(axis=1)


@dataclass
class Delta:
    """Fresh (track_id, vector) rows and removed ids, each with the sequence number of its change.
    Not thread-safe: the store holds its lock around every call."""

    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    vecs: np.ndarray | None = None
    seqs: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    n: int = 0
    row_of: dict[int, int] = field(default_factory=dict)
    removed: dict[int, int] = field(default_factory=dict)  # track_id -> seq

    @property
    def stale(self) -> int:
        """Fresh and removed tracks."""
        return len(self.row_of) + len(self.removed)

    def append(self, ids: np.ndarray, vecs: np.ndarray, seqs: np.ndarray) -> None:
        """Add or replace fresh rows (a re-added track is no longer removed)."""
        if self.vecs is None or self.n + len(ids) > len(self.ids):
            cap = max(_MIN_CAPACITY, 2 * (self.n + len(ids)))
            nv = np.zeros((cap, vecs.shape[1]), np.float32)
            ni, ns = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
            if self.vecs is not None:
                nv[: self.n], ni[: self.n], ns[: self.n] = self.vecs[: self.n], self.ids[: self.n], self.seqs[: self.n]
            self.vecs, self.ids, self.seqs = nv, ni, ns
        end = self.n + len(ids)
        self.vecs[self.n : end], self.ids[self.n : end], self.seqs[self.n : end] = vecs, ids, seqs
        for k, tid in enumerate(ids.tolist()):
            self.row_of[tid] = self.n + k
            self.removed.pop(tid, None)
        self.n = end
        if self.n > _MIN_CAPACITY and len(self.row_of) < self.n // 2:  # compact superseded rows
            rows = np.fromiter(self.row_of.values(), np.int64, len(self.row_of))
            self.vecs, self.ids, self.seqs = self.vecs[rows], self.ids[rows], self.seqs[rows]
            self.n = len(rows)
            self.row_of = {int(t): r for r, t in enumerate(self.ids.tolist())}

    def remove(self, track_id: int, seq: int) -> None:
        self.row_of.pop(track_id, None)
        self.removed[track_id] = seq

    def changes_after(self, seq: int, dim: int) -> Delta:
        """A new delta with the changes made after ``seq`` (fresh rows of length ``dim`` only)."""
        out = Delta(removed={i: s for i, s in self.removed.items() if s > seq})
        if self.vecs is not None and self.vecs.shape[1] == dim:
            keep = [i for i, r in self.row_of.items() if self.seqs[r] > seq]
            rows = [self.row_of[i] for i in keep]
            if rows:
                out.append(np.asarray(keep, np.int64), self.vecs[rows], self.seqs[rows])
        return out

    def snapshot(self, metric: str, dim: int | None, generation: IdLookup | None) -> Snapshot:
        """What a query sees; ``generation`` (its ids) decides which ids to hide from it."""
        rows = np.fromiter(self.row_of.values(), np.int64, len(self.row_of))
        vecs = self.vecs[rows] if self.vecs is not None else np.zeros((0, dim or 1), np.float32)
        unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True) if metric == "angular" else vecs
        cand = np.concatenate([self.ids[rows], np.fromiter(self.removed, np.int64, len(self.removed))])
        hidden = frozenset(cand[generation.positions(cand) >= 0].tolist()) if generation is not None else frozenset()
        return Snapshot(self.ids[rows], vecs, unit, hidden)
