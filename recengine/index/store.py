"""Nearest-neighbour index: immutable Annoy generations plus an exact "fresh" delta.

:class:`IndexStore` is the facade over one index folder. Each build writes a new generation
(:mod:`recengine.index.manifest`: the Annoy file or shards, the id map, and last the manifest,
whose rename is the commit point) and swaps it in; a generation's files are never rewritten.
Before a generation is mapped its files are checked against the manifest and the Annoy
structure against ``f`` and the metric (:mod:`recengine.index.annoy_file`); a refused one is
skipped and the previous generation used (:mod:`recengine.index.generations`, which also
numbers, retires and collects them).

Tracks featurised after the build live in the delta (:mod:`recengine.index.delta`) and are
searched exactly with numpy; removed tracks are hidden at once. A query pins one generation
(reference count) and one delta snapshot, so a concurrent build and swap never changes an answer
half-way. Trees and ``search_k`` per generation: :mod:`recengine.index.calibration`; large
libraries are split into shards built and searched side by side: :mod:`recengine.index.shards`.
Builds run with ``n_jobs=1`` by default, which makes them byte-identical for the same data and
seed (annoy #603).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recengine.fileio import sweep_stale_temps
from recengine.index.annoy_file import LAYOUT, IndexRefused, save_annoy_files
from recengine.index.calibration import PER_K_LADDER, calibrate, default_n_trees, search_k_for
from recengine.index.delta import Delta, Snapshot
from recengine.index.generations import Generation, Generations, open_generation, prepare_directory
from recengine.index.manifest import read_manifest, remove_files, shard_names, write_generation
from recengine.index.shards import ShardPool, build_shards, default_shards, search_shards, shard_sizes
from recengine.index.validation import clean_rows, query_vector

log = logging.getLogger(__name__)


class IndexStore:
    """Immutable Annoy generations in ``directory`` plus an exact delta; thread-safe."""

    def __init__(self, directory: Path, *, metric: str = "angular", n_trees: int | None = None,
                 search_k: int | None = None, seed: int = 42, keep_generations: int = 2,
                 n_jobs: int = 1, dim: int | None = None, shards: int | None = None):  # fmt: skip
        if metric not in LAYOUT:
            raise ValueError(f"metric must be one of {sorted(LAYOUT)}, not {metric!r}")
        self.directory = Path(directory)
        prepare_directory(self.directory)
        self.metric, self.seed, self.n_jobs = metric, seed, n_jobs
        self._n_trees, self._search_k, self._shards = n_trees, search_k, shards
        self._pool = ShardPool()  # searches shards after the first
        self._fixed_dim = dim  # from the caller: every generation must have it
        self._dim = dim  # of the current generation and the delta
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._generations = Generations(self.directory, max(1, keep_generations))
        self._delta = Delta()
        self._seq = 0
        self._snap: Snapshot | None = None
        #: (generation, reason) for generations the last :meth:`load` refused: rebuild soon.
        self.load_failures: list[tuple[int, str]] = []
        #: vectors rejected (non-finite, wrong length/dtype, norm out of range, duplicate id).
        self.rejected = 0

    # ----- build / load -----------------------------------------------------------------------
    def build(self, ids, vectors, meta: Mapping | None = None) -> int:
        """Build, write and swap in a new generation from ``ids`` (int64) and ``vectors``.

        Invalid vectors and duplicate ids are skipped and counted (``rejected``, manifest
        ``n_rejected``). If vectors were given but none is valid, ValueError and nothing changes.
        Delta entries and removals made before this call are assumed to be in ``ids``/``vectors``
        and are dropped at the swap; those made while it runs are kept. Returns the generation.
        """
        with self._build_lock:
            with self._lock:
                start_seq = self._seq
            ids = np.asarray(ids).astype(np.int64).reshape(-1)
            if len(ids) != len(vectors):
                raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
            mask, x, dim = clean_rows(vectors, self._fixed_dim)
            _, first = np.unique(ids, return_index=True)
            dup = np.ones(len(ids), bool)
            dup[first] = False
            mask &= ~dup
            n_rej = int(len(ids) - mask.sum())
            if n_rej:
                log.warning("index build: %d of %d vectors rejected", n_rej, len(ids))
                with self._lock:
                    self.rejected += n_rej
            if len(ids) and not mask.any():
                raise ValueError("every vector was rejected; current generation kept")
            ids, x = ids[mask], np.ascontiguousarray(x[mask])
            with self._lock:
                number = self._generations.next_number()
            shards = max(1, min(self._shards or default_shards(len(ids)), len(ids) or 1))
            ann_names = shard_names(number, shards) if len(ids) else []
            n_trees = self._n_trees or default_n_trees(len(ids)) * shards
            try:
                ann_shas, per_k, recall = [], PER_K_LADDER[0], None
                if len(ids):
                    ann_shas, per_k, recall = self._write_annoy(x, n_trees, ann_names)
                manifest = write_generation(self.directory, number, ids, {
                    "dim": dim, "metric": self.metric, "n_items": len(ids), "shards": shards,
                    "n_trees": n_trees, "seed": self.seed, "n_jobs": self.n_jobs, "ann_files": ann_names,
                    "ann_sha256": ann_shas, "n_rejected": n_rej, "meta": dict(meta or {}),
                    "search_k_per_result": per_k, "calibrated_recall_at_10": recall,
                })  # fmt: skip
            except BaseException:  # e.g. ENOSPC: the current generation stays, no orphan files
                remove_files(self.directory, number, shards)
                raise
            self._swap(open_generation(self.directory, manifest, self.metric, verify_ann=False), drop_upto=start_seq)
            return number

    def _write_annoy(self, x: np.ndarray, n_trees: int, names: list[str]) -> tuple[list[str], int, float]:
        """Build the shards of ``x``, calibrate search_k, write the files.
        Returns (sha256 per file, per_k, calibrated recall)."""
        shards = len(names)
        anns = build_shards(x, self.metric, n_trees, shards, seed=self.seed, n_jobs=self.n_jobs)
        per_k, recall = calibrate(anns, x, self.metric, n_trees, seed=self.seed, pool=self._pool.get(shards))
        shas = save_annoy_files(anns, self.directory, names, shard_sizes(len(x), shards), x.shape[1], self.metric)
        return shas, per_k, recall

    def sweep_temps(self, min_age_s: float = 3600.0) -> list[Path]:
        """Remove temp files left by crashed writes. Older than an hour by default, so another
        process's build in progress is never touched; the data dir's owner (the daemon, holding
        its lock) sweeps them all at start-up."""
        return sweep_stale_temps(self.directory, min_age_s=min_age_s)

    def load(self, *, expect_meta: Mapping | None = None) -> int | None:
        """Load the newest generation that verifies; refused ones go to ``load_failures`` (logged)
        and the next older one is tried. ``expect_meta`` items must equal the manifest's ``meta``
        (e.g. the feature version). Returns the generation, or None (the caller rebuilds)."""
        with self._build_lock:
            self.sweep_temps()
            self.load_failures = []
            with self._lock:
                found, current = self._generations.on_disk(), self._generations.current
            for number in sorted(found, reverse=True):
                if "json" not in found[number]:
                    continue
                if current and current.number == number:
                    return number
                try:
                    man = read_manifest(self.directory, number, self.metric, expect_meta or {})
                    if self._fixed_dim is not None and man.dim != self._fixed_dim:
                        raise IndexRefused(f"dim {man.dim}, expected {self._fixed_dim}")
                    gen = open_generation(self.directory, man, self.metric)
                except (OSError, ValueError, KeyError, TypeError, IndexRefused) as exc:
                    log.warning("index generation %d refused: %s", number, exc)
                    self.load_failures.append((number, str(exc)))
                    with self._lock:
                        self._generations.refused(number)
                    continue
                self._swap(gen, drop_upto=-1)
                return number
            return None

    def _swap(self, gen: Generation, *, drop_upto: int) -> None:
        with self._lock:
            self._delta = self._delta.changes_after(drop_upto, gen.dim)
            self._dim = gen.dim
            self._snap = None
            self._generations.install(gen)

    # ----- delta ------------------------------------------------------------------------------
    def add_fresh(self, track_id: int, vector) -> bool:
        """Add or replace one track featurised after the build; False (counted) if rejected."""
        return self.set_delta([track_id], [vector], replace=False) == 0

    def set_delta(self, ids, vectors, *, removed: Iterable[int] = (), replace: bool = True) -> int:
        """Set (``replace``) or extend the delta: fresh (track_id, vector) pairs and removed ids.
        Returns the number of rejected vectors."""
        ids = np.asarray(ids).astype(np.int64).reshape(-1)
        with self._lock:
            mask, x, dim = clean_rows(vectors, self._dim)
            if len(ids) != len(mask):
                raise ValueError(f"{len(ids)} ids for {len(mask)} vectors")
            if self._dim is None and mask.any():
                self._dim = dim
            n_rej = int(len(mask) - mask.sum())
            self.rejected += n_rej
            if replace:
                self._delta = Delta()
            self._seq += 1
            if mask.any():
                self._delta.append(ids[mask], x[mask], np.full(int(mask.sum()), self._seq))
            for tid in removed:
                self._delta.remove(int(tid), self._seq)
            self._snap = None
        return n_rej

    def remove(self, track_id: int) -> None:
        """Hide a deleted track from every answer from now on (until it is added again)."""
        with self._lock:
            self._seq += 1
            self._delta.remove(int(track_id), self._seq)
            self._snap = None

    # ----- queries ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self) -> Iterator[tuple[Generation | None, Snapshot]]:
        """The current generation (pinned until the block ends) and the delta snapshot."""
        with self._lock:
            gen = self._generations.pin()
            if self._snap is None:
                self._snap = self._delta.snapshot(self.metric, self._dim, gen.lookup if gen else None)
            snap = self._snap
        try:
            yield gen, snap
        finally:
            if gen is not None:
                with self._lock:
                    self._generations.release(gen)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Generation | None]:
        """The current generation, kept mapped (and its files kept) until the block ends, even if
        builds swap newer ones in meanwhile; None when there is none."""
        with self._reading() as (gen, _):
            yield gen

    def query(self, vector, n: int, *, exclude: Iterable[int] = frozenset()) -> list[tuple[int, float]]:
        """The ``n`` nearest (track_id, distance), ascending, over generation + delta, without
        ``exclude`` and removed tracks. Distances are Annoy's for the metric (angular:
        sqrt(2 - 2 cos)). ValueError for an invalid query vector."""
        exclude = exclude if isinstance(exclude, (set, frozenset)) else set(exclude)
        with self._reading() as (gen, snap):
            dim = gen.dim if gen else self._dim
            if dim is None:  # nothing was ever indexed
                return []
            q = query_vector(vector, dim)
            if n <= 0:
                return []
            found: dict[int, float] = {}
            if len(snap.ids):
                dist = snap.distances(q, self.metric)
                take = min(len(dist), n + len(exclude))
                part = np.argpartition(dist, take - 1)[:take] if take < len(dist) else np.arange(len(dist))
                for tid, dd in zip(snap.ids[part].tolist(), dist[part].tolist(), strict=True):
                    if tid not in exclude:
                        found[tid] = dd
            if gen is not None and gen.anns:
                self._query_generation(gen, snap, q, n, exclude, found)
            return sorted(found.items(), key=lambda t: (t[1], t[0]))[:n]

    def _query_generation(self, gen: Generation, snap: Snapshot, q: np.ndarray, n: int, exclude: set[int],
                          found: dict[int, float]) -> None:  # fmt: skip
        """Add the generation's ``n`` nearest to ``found``, asking Annoy for more while hidden and
        excluded tracks thin its answer out."""
        track_ids = gen.track_ids
        total = len(track_ids)
        pool = self._pool.get(len(gen.anns))
        shard_items = gen.anns[0].get_n_items()
        base = n + len(exclude)  # plus the hidden items expected among the answers
        ask = min(total, base + min(len(snap.hidden), 3 * base * len(snap.hidden) // total + 5))
        qs = q.tolist()
        while True:
            sk = self._search_k or search_k_for(gen.per_k, shard_items, gen.n_trees, min(base, 2 * n))
            items, dists = search_shards(gen.anns, qs, ask, max(sk, ask * gen.n_trees), pool)
            kept = 0
            for tid, dd in zip(track_ids[items].tolist(), dists, strict=True):
                if tid not in snap.hidden and tid not in exclude:
                    kept += 1
                    found.setdefault(tid, dd)
            if kept >= n or len(items) < ask or ask >= total:
                return
            ask = min(total, ask * 4)

    def vectors(self, track_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The stored vector (float32) of each of ``track_ids`` that is in the index, in the order
        given: a fresh one from the delta, else the generation's; removed tracks have none."""
        ids = list(dict.fromkeys(int(t) for t in track_ids))
        found: dict[int, np.ndarray] = {}
        if not ids:
            return found
        mask, matrix = self.vectors_matrix(ids)
        found.update(zip(np.asarray(ids)[mask].tolist(), matrix, strict=True))
        return found

    def vectors_matrix(self, track_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``track_ids`` are in the index, their vectors stacked in that order): what
        :meth:`vectors` gives, as one float32 array, for callers that want many at once."""
        want = np.asarray(track_ids, np.int64).reshape(-1)
        with self._reading() as (gen, snap):
            rows = snap.lookup.positions(want) if len(snap.ids) and len(want) else np.full(len(want), -1, np.int64)
            items = np.full(len(want), -1, np.int64)
            if gen is not None and gen.anns and len(want):
                items = np.where(rows >= 0, -1, gen.items_of(want))
                if snap.hidden:
                    items[np.isin(want, np.fromiter(snap.hidden, np.int64, len(snap.hidden)))] = -1
            mask = (rows >= 0) | (items >= 0)
            dim = gen.dim if gen is not None and gen.anns else snap.vecs.shape[1]
            out = np.empty((int(mask.sum()), dim), np.float32)
            slot = np.cumsum(mask) - 1
            if (rows >= 0).any():
                out[slot[rows >= 0]] = snap.vecs[rows[rows >= 0]]
            if (items >= 0).any():
                out[slot[items >= 0]] = gen.vectors_of(items[items >= 0])
        return mask, out

    def vector(self, track_id: int) -> np.ndarray | None:
        """The vector stored for ``track_id`` (float32), or None if unknown or removed."""
        return self.vectors([track_id]).get(int(track_id))

    def generation_ids(self) -> np.ndarray:
        """Track ids in the current generation (int64; empty when there is none)."""
        gen = self._generations.current
        return gen.track_ids.copy() if gen is not None else np.zeros(0, np.int64)

    @property
    def generation(self) -> int | None:
        gen = self._generations.current
        return gen.number if gen else None

    @property
    def meta(self) -> dict[str, Any] | None:
        """The ``meta`` given to :meth:`build` for the current generation (None when there is none)."""
        gen = self._generations.current
        return dict(gen.meta) if gen else None

    @property
    def size(self) -> int:
        """Tracks a query can return (generation + fresh - removed)."""
        with self._reading() as (gen, snap):
            return (len(gen.track_ids) if gen else 0) - len(snap.hidden) + len(snap.ids)

    @property
    def stale(self) -> int:
        """Fresh and removed tracks since the current generation was built."""
        with self._lock:
            return self._delta.stale

    def close(self) -> None:
        """Unmap every generation (call when no query can be running)."""
        with self._lock:
            self._generations.close()
        self._pool.close()
