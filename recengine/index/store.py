"""Nearest-neighbour index: immutable Annoy generations plus an exact "fresh" delta.

Each build writes a new generation ``gen-NNNNNN`` to ``directory``: the Annoy file (``.ann``; a
large library is split into shards ``.ann``, ``.s1.ann``, ...), the item -> track_id map
(``.ids.npy``) and, last, the manifest (``.json``: dim, metric, n_items, shards, n_trees, seed,
n_jobs, sha256 of every file, the caller's ``meta``). The manifest's rename is the commit point.
A generation's files are never rewritten, so a mapped file is never changed under a reader
(annoy #335, #379). Before a generation is mapped its manifest is checked against the
files and the Annoy file's node structure is checked against the manifest's ``f`` and metric
(every child and leaf entry in range), so a wrong or damaged file is refused instead of
crashing the process (annoy #394); the previous generation is used instead.

Tracks featurised after the build live in the delta and are searched exactly with numpy; removed
tracks are hidden at once. A query pins one generation (reference count) and one delta snapshot,
so a concurrent build and swap never changes an answer half-way, and a retired generation is
unmapped and its files deleted only when its last reader is done.

Tuning: ``n_trees`` = 10 up to 10k items, +15 per decade (25 at 100k, 40 at 1M). ``search_k`` is
measured, not guessed: each build queries 200 of its own items and keeps the cheapest
``search_k = k * per_k`` (per shard) reaching recall@10 >= 0.97 against exact search (manifest
``search_k_per_result``; Annoy's default is badly under-recalled on clustered data). Builds run
with ``n_jobs=1`` by default, which makes them byte-identical for the same data and seed
(annoy #603).

Shards: from :data:`SHARD_MIN_ITEMS` items on a machine with two or more cores, the items are dealt
round-robin into two Annoy indexes, each with twice the trees. The shards are built at the same
time (Annoy releases the GIL; each shard stays single-threaded and so deterministic) and searched
at the same time, one in the calling thread and one in the store's query thread, and their answers
merged by distance. At 1M items that buys the tree count that keeps recall@10 >= 0.95 on hard
(isotropic) data with p99 under 3 ms, in the same build time as one index on one core
(``bench/index.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from recengine.faults import faultpoint
from recengine.fileio import atomic_write, fsync_dir, sweep_stale_temps

log = logging.getLogger(__name__)

FORMAT = 2  # 1: one Annoy file (``ann_file``/``ann_sha256``), still read
#: Vectors with a norm outside [MIN_NORM, MAX_NORM] are rejected: zero vectors have no angle
#: (annoy #249) and huge ones overflow Annoy's float32 dot products into inf/NaN.
MIN_NORM = 1e-6
MAX_NORM = 1e15
#: metric -> (node header bytes before the vector, offset of ``children`` in int32 words).
_LAYOUT = {"angular": (12, 1), "euclidean": (16, 2), "manhattan": (16, 2)}
_NAME_RE = re.compile(r"^gen-(\d{6,})\.((?:s\d+\.)?ann|ids\.npy|json)$")
_CHUNK_NODES = 1 << 16


class IndexRefused(Exception):
    """A generation that must not be loaded (manifest, checksum or structure mismatch)."""


def default_n_trees(n: int) -> int:
    """Trees for ``n`` items: 10 up to 10k, +15 per decade (25 at 100k, 40 at 1M), at most 50.
    Measured at 1M x 64-d clustered, search_k 32k: 30 trees recall@10 0.939, 40 trees 0.960;
    each 10 trees cost ~20 s of one-thread build time and ~90 MB of file."""
    return 10 if n <= 10_000 else int(min(50, round(10 + 15 * math.log10(n / 10_000))))


#: Libraries from this size on are split into shards on multi-core machines (see :func:`default_shards`).
SHARD_MIN_ITEMS = 250_000


def default_shards(n: int, cpus: int | None = None) -> int:
    """Shards for ``n`` items: 1 below :data:`SHARD_MIN_ITEMS` or on one core, else 2."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return 1 if n < SHARD_MIN_ITEMS or cpus < 2 else 2


#: search_k per requested result tried at build time, cheapest first (see :meth:`IndexStore._calibrate`).
PER_K_LADDER = (25, 50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1600, 2000, 2400, 2800, 3200)
CALIBRATION_QUERIES = 200
TARGET_RECALL = 0.97


def search_k_for(per_k: int, n_items: int, n_trees: int, k: int) -> int:
    """Leaf entries Annoy inspects for ``k`` results: ``k * per_k`` (calibrated per generation;
    Annoy's default ``k * n_trees`` is badly under-recalled on clustered data, MEASUREMENTS.md),
    never fewer than 4,000 (or half the leaf entries of a small index; < 0.3 ms)."""
    return int(max(k * n_trees, k * per_k, min(n_items * n_trees // 2, 4000)))


def _names(number: int) -> tuple[str, str, str]:
    stem = f"gen-{number:06d}"
    return f"{stem}.ann", f"{stem}.ids.npy", f"{stem}.json"


def _shard_names(number: int, shards: int) -> list[str]:
    """Annoy file of each shard: ``gen-NNNNNN.ann``, ``gen-NNNNNN.s1.ann``, ..."""
    return [_names(number)[0]] + [f"gen-{number:06d}.s{s}.ann" for s in range(1, shards)]


def _shard_sizes(n: int, shards: int) -> list[int]:
    """Items of each shard when ``n`` items are dealt round-robin (global item g -> shard g % shards,
    Annoy item g // shards)."""
    return [len(range(s, n, shards)) for s in range(shards)]


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_annoy_file(path: Path, dim: int, metric: str, n_items: int) -> str:
    """sha256 of an Annoy file after checking its node structure fits ``dim``/``metric``/``n_items``
    (so every pointer Annoy follows stays inside the file); raises IndexRefused otherwise."""
    header, coff = _LAYOUT[metric]
    words = (header + 4 * dim) // 4
    k_max = words - coff  # Annoy's _K: item ids that fit in a leaf node
    size = path.stat().st_size
    if size == 0 or size % (4 * words):
        raise IndexRefused(f"{path.name}: size {size} is not a multiple of the node size {4 * words}")
    n_nodes = size // (4 * words)
    if n_nodes < n_items:
        raise IndexRefused(f"{path.name}: {n_nodes} nodes for {n_items} items")
    h = hashlib.sha256()
    last = None
    with open(path, "rb") as f:
        for start in range(0, n_nodes, _CHUNK_NODES):
            raw = f.read(4 * words * min(_CHUNK_NODES, n_nodes - start))
            h.update(raw)
            m = np.frombuffer(raw, dtype="<i4").reshape(-1, words)
            nd = m[:, 0]
            idx = np.arange(start, start + len(m))
            if (nd < 1).any() or (nd[idx < n_items] != 1).any():
                raise IndexRefused(f"{path.name}: bad descendant counts near node {start}")
            split = nd > k_max
            ch = m[split, coff : coff + 2]
            if ch.size and (ch.min() < 0 or ch.max() >= n_nodes):
                raise IndexRefused(f"{path.name}: child out of range near node {start}")
            leaf = ~split & (idx >= n_items)
            if leaf.any():
                sub, cnt = m[leaf, coff:], nd[leaf]
                used = np.arange(k_max)[None, :] < cnt[:, None]
                vals = sub[used]
                if vals.size and (vals.min() < 0 or vals.max() >= n_items):
                    raise IndexRefused(f"{path.name}: leaf entry out of range near node {start}")
            last = int(nd[-1])
    if last != n_items:
        raise IndexRefused(f"{path.name}: root holds {last} items, manifest says {n_items}")
    return h.hexdigest()


def search_shards(anns: list[AnnoyIndex], vector: list[float], n: int, search_k: int,
                  pool: ThreadPoolExecutor | None) -> tuple[list[int], list[float]]:  # fmt: skip
    """The ``n`` nearest (global items, distances) over round-robin shards, ``search_k`` each.
    Shards after the first run in ``pool`` (when given) while the caller searches the first."""
    if len(anns) == 1:
        return anns[0].get_nns_by_vector(vector, n, search_k, True)
    args = (vector, n, search_k, True)
    later = [pool.submit(a.get_nns_by_vector, *args) for a in anns[1:]] if pool is not None else []
    parts = [anns[0].get_nns_by_vector(*args)]
    parts += [f.result() for f in later] if later else [a.get_nns_by_vector(*args) for a in anns[1:]]
    step = len(anns)
    merged = sorted(
        (d, j * step + s) for s, (items, dists) in enumerate(parts) for j, d in zip(items, dists, strict=True)
    )
    return [g for _, g in merged[:n]], [d for d, _ in merged[:n]]


@dataclass(eq=False)
class _Generation:
    number: int
    dim: int
    anns: list[AnnoyIndex]  # one per shard; empty when the generation has no items
    ids: np.ndarray  # global item -> track_id
    order: np.ndarray  # argsort of ids
    n_trees: int
    per_k: int
    refs: int = 0
    retired: bool = False

    def items_of(self, track_ids: np.ndarray) -> np.ndarray:
        """Annoy item of each track id, -1 where the id is not in this generation."""
        if not len(self.ids):
            return np.full(len(track_ids), -1, np.int64)
        pos = np.searchsorted(self.ids, track_ids, sorter=self.order).clip(0, len(self.ids) - 1)
        items = self.order[pos]
        return np.where(self.ids[items] == track_ids, items, -1)


@dataclass(frozen=True)
class _Snapshot:
    ids: np.ndarray
    vecs: np.ndarray  # float32, as given
    unit: np.ndarray  # vecs scaled to unit length for "angular", else vecs
    hidden: frozenset[int]  # ids in the generation not to return: removed, or superseded by the delta


@dataclass
class _Delta:
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    vecs: np.ndarray | None = None
    seqs: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    n: int = 0
    row_of: dict[int, int] = field(default_factory=dict)
    removed: dict[int, int] = field(default_factory=dict)  # track_id -> seq


class IndexStore:
    """Immutable Annoy generations in ``directory`` plus an exact delta; thread-safe."""

    def __init__(self, directory: Path, *, metric: str = "angular", n_trees: int | None = None,
                 search_k: int | None = None, seed: int = 42, keep_generations: int = 2,
                 n_jobs: int = 1, dim: int | None = None, shards: int | None = None):  # fmt: skip
        if metric not in _LAYOUT:
            raise ValueError(f"metric must be one of {sorted(_LAYOUT)}, not {metric!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.metric, self.seed, self.n_jobs = metric, seed, n_jobs
        self._n_trees, self._search_k, self._shards = n_trees, search_k, shards
        self._pool: ThreadPoolExecutor | None = None  # searches shards after the first
        self._pool_threads = 0
        self.keep_generations = max(1, keep_generations)
        self._fixed_dim = dim  # from the caller: every generation must have it
        self._dim = dim  # of the current generation and the delta
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._current: _Generation | None = None
        self._loaded: set[_Generation] = set()
        self._bad: set[int] = set()
        self._delta = _Delta()
        self._seq = 0
        self._snap: _Snapshot | None = None
        #: (generation, reason) for generations the last :meth:`load` refused: rebuild soon.
        self.load_failures: list[tuple[int, str]] = []
        #: vectors rejected (non-finite, wrong length/dtype, norm out of range, duplicate id).
        self.rejected = 0

    # ----- validation -------------------------------------------------------------------------
    @staticmethod
    def _clean_rows(vectors, dim: int | None) -> tuple[np.ndarray, np.ndarray, int]:
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
            for a in range(0, len(x), 65536):
                c = x[a : a + 65536]
                norm = np.sqrt(np.einsum("ij,ij->i", c, c, dtype=np.float64))
                mask[a : a + 65536] &= np.isfinite(c).all(axis=1) & (norm >= MIN_NORM) & (norm <= MAX_NORM)
        x[~mask] = 0
        return mask, x, dim

    def _query_vector(self, vector, dim: int) -> np.ndarray:
        mask, x, _ = self._clean_rows([vector], dim)
        if not mask[0]:
            raise ValueError("query vector is not finite, has the wrong length/dtype or a bad norm")
        return x[0]

    # ----- build / load -----------------------------------------------------------------------
    def _disk_numbers(self) -> dict[int, set[str]]:
        found: dict[int, set[str]] = {}
        for entry in os.scandir(self.directory):
            if m := _NAME_RE.match(entry.name):
                found.setdefault(int(m.group(1)), set()).add(m.group(2))
        return found

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
            mask, x, dim = self._clean_rows(vectors, self._fixed_dim)
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
            numbers = set(self._disk_numbers())
            if self._current:
                numbers.add(self._current.number)
            number = max(numbers, default=0) + 1
            _, ids_name, man_name = _names(number)
            shards = max(1, min(self._shards or default_shards(len(ids)), len(ids) or 1))
            ann_names = _shard_names(number, shards) if len(ids) else []
            n_trees = self._n_trees or default_n_trees(len(ids)) * shards
            try:
                ann_shas, per_k, recall = [], PER_K_LADDER[0], None
                if len(ids):
                    ann_shas, per_k, recall = self._write_annoy(x, dim, n_trees, ann_names)
                buf = io.BytesIO()
                np.save(buf, ids, allow_pickle=False)
                ids_bytes = buf.getvalue()
                atomic_write(self.directory / ids_name, ids_bytes)
                manifest = {
                    "format": FORMAT, "generation": number, "dim": dim, "metric": self.metric,
                    "n_items": len(ids), "shards": shards, "n_trees": n_trees, "seed": self.seed,
                    "n_jobs": self.n_jobs, "ann_files": ann_names, "ann_sha256": ann_shas,
                    "ids_file": ids_name, "ids_sha256": hashlib.sha256(ids_bytes).hexdigest(),
                    "n_rejected": n_rej, "meta": dict(meta or {}),
                    "search_k_per_result": per_k, "calibrated_recall_at_10": recall,
                }  # fmt: skip
                faultpoint("before_index_replace")
                atomic_write(
                    self.directory / man_name,
                    (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode(),
                )
                faultpoint("after_index_replace")
            except BaseException:  # e.g. ENOSPC: the current generation stays, no orphan files
                for name in (*ann_names, ids_name, man_name):
                    with contextlib.suppress(OSError):
                        os.unlink(self.directory / name)
                raise
            gen = self._open(number, manifest, verify_ann=False)
            self._swap(gen, drop_upto=start_seq)
            return number

    def _calibrate(
        self, anns: list[AnnoyIndex], x: np.ndarray, n_trees: int, k: int = 10
    ) -> tuple[int, float]:
        """Smallest ``PER_K_LADDER`` step whose recall@k on sampled items (as queries, themselves
        left out) reaches TARGET_RECALL against exact search; the last step if none does.
        Deterministic for given data and seed, so builds stay byte-identical."""
        n = len(x)
        sample = np.sort(
            np.random.default_rng(self.seed).choice(n, min(n, CALIBRATION_QUERIES), replace=False)
        )
        if self.metric == "manhattan":
            sample = sample[:40]
        k = min(k, n - 1)
        if k < 1:
            return PER_K_LADDER[0], 1.0
        norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)
        truth = []
        for a in range(0, len(sample), 16):
            q = x[sample[a : a + 16]]
            if self.metric == "angular":
                d = -(x @ q.T) / norms[:, None]
            elif self.metric == "euclidean":
                d = (norms**2)[:, None] - 2 * (x @ q.T)
            else:
                d = np.stack([np.abs(x - v).sum(axis=1) for v in q], axis=1)
            d[sample[a : a + 16], np.arange(len(q))] = np.inf  # leave the item itself out
            truth += [set(np.argpartition(d[:, j], k)[:k].tolist()) for j in range(len(q))]
        queries = x[sample].tolist()
        shard_items = anns[0].get_n_items()  # round-robin: the first shard is the largest
        pool = self._query_pool(len(anns))
        recall = 0.0
        for per_k in PER_K_LADDER:
            sk = search_k_for(per_k, shard_items, n_trees, k)
            hits = sum(
                len(t & (set(search_shards(anns, q, k + 1, sk, pool)[0]) - {int(i)}))
                for q, t, i in zip(queries, truth, sample, strict=True)
            )
            recall = hits / (k * len(sample))
            if recall >= TARGET_RECALL:
                break
        if recall < TARGET_RECALL:
            log.warning("index: recall@%d %.3f < %.2f at the largest search_k", k, recall, TARGET_RECALL)
        return per_k, round(recall, 4)

    def _query_pool(self, shards: int) -> ThreadPoolExecutor | None:
        """The thread that searches shards after the first (None for one shard)."""
        if shards < 2:
            return None
        with self._lock:
            if self._pool_threads < shards - 1:
                old, self._pool = self._pool, ThreadPoolExecutor(shards - 1, thread_name_prefix="index-shard")
                self._pool_threads = shards - 1
                if old is not None:
                    old.shutdown(wait=False)
            return self._pool

    def _write_annoy(
        self, x: np.ndarray, dim: int, n_trees: int, names: list[str]
    ) -> tuple[list[str], int, float]:
        """Build one Annoy index per name (round-robin shards of ``x``, built side by side),
        calibrate search_k, then write each file (temp, fsync, structure check, rename).
        Returns (sha256 per file, per_k, calibrated recall)."""
        shards = len(names)
        anns = []
        for s in range(shards):
            ann = AnnoyIndex(dim, self.metric)
            ann.set_seed(self.seed)
            part = x[s::shards]
            for start in range(0, len(part), 8192):
                for i, row in enumerate(part[start : start + 8192].tolist(), start):
                    ann.add_item(i, row)
            anns.append(ann)
        workers = min(shards, os.cpu_count() or 1)
        if workers > 1:  # Annoy builds without the GIL; each shard's own build stays n_jobs-threaded
            with ThreadPoolExecutor(workers, thread_name_prefix="index-build") as ex:
                list(ex.map(lambda a: a.build(n_trees, n_jobs=self.n_jobs), anns))
        else:
            for ann in anns:
                ann.build(n_trees, n_jobs=self.n_jobs)
        per_k, recall = self._calibrate(anns, x, n_trees)
        shas, written = [], []
        try:
            for ann, name, size in zip(anns, names, _shard_sizes(len(x), shards), strict=True):
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
                os.close(fd)
                written.append(tmp)
                ann.save(tmp)  # Annoy unlinks and rewrites tmp, then maps it
                ann.unload()
                faultpoint("mid_index_write")
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                shas.append(check_annoy_file(Path(tmp), dim, self.metric, size))
            for tmp, name in zip(written, names, strict=True):
                os.replace(tmp, self.directory / name)
        except BaseException:
            for tmp in written:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            for ann in anns:
                ann.unload()
            raise
        fsync_dir(self.directory)
        return shas, per_k, recall

    def _open(self, number: int, man: Mapping, *, verify_ann: bool = True) -> _Generation:
        _, ids_name, _ = _names(number)
        try:
            dim, n_items, n_trees = int(man["dim"]), int(man["n_items"]), int(man["n_trees"])
            if man["format"] == 1:  # one Annoy file
                shards, files, shas = 1, [man["ann_file"]], [man["ann_sha256"]]
                files, shas = (files, shas) if n_items else ([], [])
            else:
                shards, files, shas = int(man["shards"]), list(man["ann_files"]), list(man["ann_sha256"])
            ok = (man["format"] in (1, FORMAT) and man["generation"] == number and man["metric"] == self.metric
                  and dim > 0 and n_items >= 0 and man["ids_file"] == ids_name and 1 <= shards <= max(n_items, 1)
                  and files == (_shard_names(number, shards) if n_items else []) and len(shas) == len(files))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexRefused(f"manifest field missing or bad: {exc}") from exc
        if not ok:
            raise IndexRefused("manifest does not describe this generation/metric")
        if self._fixed_dim is not None and dim != self._fixed_dim:
            raise IndexRefused(f"dim {dim}, expected {self._fixed_dim}")
        ids_path = self.directory / ids_name
        if _sha256(ids_path) != man["ids_sha256"]:
            raise IndexRefused(f"{ids_name}: sha256 mismatch")
        ids = np.load(ids_path, allow_pickle=False)
        if ids.dtype != np.int64 or ids.shape != (n_items,) or len(np.unique(ids)) != n_items:
            raise IndexRefused(f"{ids_name}: not {n_items} distinct int64 ids")
        anns: list[AnnoyIndex] = []
        try:
            for name, sha, size in zip(
                files, shas, _shard_sizes(n_items, shards) if n_items else [], strict=True
            ):
                path = self.directory / name
                if verify_ann and check_annoy_file(path, dim, self.metric, size) != sha:
                    raise IndexRefused(f"{name}: sha256 mismatch")
                ann = AnnoyIndex(dim, self.metric)
                try:
                    ann.load(str(path), prefault=False)
                except OSError as exc:
                    raise IndexRefused(f"{name}: {exc}") from exc
                anns.append(ann)
                if ann.get_n_items() != size or ann.f != dim:
                    raise IndexRefused(f"{name}: Annoy sees {ann.get_n_items()} items of f={ann.f}")
        except BaseException:
            for ann in anns:
                ann.unload()
            raise
        per_k = int(man.get("search_k_per_result") or PER_K_LADDER[-1])
        return _Generation(number, dim, anns, ids, np.argsort(ids, kind="stable"), n_trees, per_k)

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
            found = self._disk_numbers()
            for number in sorted(found, reverse=True):
                if "json" not in found[number]:
                    continue
                if self._current and self._current.number == number:
                    return number
                try:
                    man = json.loads((self.directory / _names(number)[2]).read_bytes())
                    if not isinstance(man, dict):
                        raise IndexRefused("manifest is not an object")
                    for key, want in (expect_meta or {}).items():
                        if (man.get("meta") or {}).get(key) != want:
                            raise IndexRefused(
                                f"meta {key!r} is {man.get('meta', {}).get(key)!r}, want {want!r}"
                            )
                    gen = self._open(number, man)
                except (OSError, ValueError, KeyError, TypeError, IndexRefused) as exc:
                    log.warning("index generation %d refused: %s", number, exc)
                    self.load_failures.append((number, str(exc)))
                    self._bad.add(number)
                    continue
                self._swap(gen, drop_upto=-1)
                return number
            return None

    def _swap(self, gen: _Generation, *, drop_upto: int) -> None:
        with self._lock:
            old, self._current = self._current, gen
            self._loaded.add(gen)
            self._dim = gen.dim
            d = self._delta
            keep = [i for i, r in d.row_of.items() if d.seqs[r] > drop_upto and d.vecs is not None
                    and d.vecs.shape[1] == gen.dim]  # fmt: skip
            rows = [d.row_of[i] for i in keep]
            vecs = d.vecs[rows] if d.vecs is not None and d.vecs.shape[1] == gen.dim else None
            removed = {i: s for i, s in d.removed.items() if s > drop_upto}
            self._delta = _Delta(removed=removed)
            if vecs is not None and len(rows):
                self._append(np.asarray(keep, np.int64), vecs, d.seqs[rows])
            self._snap = None
            if old is not None:
                old.retired = True
                self._release_locked(old, 0)
            self._collect_locked()

    def _release_locked(self, gen: _Generation, dec: int = 1) -> None:
        gen.refs -= dec
        if gen.retired and gen.refs <= 0 and gen in self._loaded:
            self._loaded.discard(gen)
            for ann in gen.anns:
                ann.unload()
            self._collect_locked()

    def _collect_locked(self) -> None:
        """Delete files of generations older than the current one that are neither among the
        newest ``keep_generations`` good ones nor mapped by a reader."""
        if self._current is None:
            return
        found = self._disk_numbers()
        older = sorted((n for n in found if n < self._current.number), reverse=True)
        good = [n for n in older if n not in self._bad and "json" in found[n]]
        keep = set(good[: self.keep_generations - 1]) | {g.number for g in self._loaded}
        for number in older:
            if number not in keep:
                for suffix in found[number]:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.directory / f"gen-{number:06d}.{suffix}")
                self._bad.discard(number)

    # ----- delta ------------------------------------------------------------------------------
    def _append(self, ids: np.ndarray, vecs: np.ndarray, seqs: np.ndarray) -> None:
        d = self._delta
        if d.vecs is None or d.n + len(ids) > len(d.ids):
            cap = max(64, 2 * (d.n + len(ids)))
            nv = np.zeros((cap, vecs.shape[1]), np.float32)
            ni, ns = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
            if d.vecs is not None:
                nv[: d.n], ni[: d.n], ns[: d.n] = d.vecs[: d.n], d.ids[: d.n], d.seqs[: d.n]
            d.vecs, d.ids, d.seqs = nv, ni, ns
        d.vecs[d.n : d.n + len(ids)], d.ids[d.n : d.n + len(ids)] = vecs, ids
        d.seqs[d.n : d.n + len(ids)] = seqs
        for k, tid in enumerate(ids.tolist()):
            d.row_of[tid] = d.n + k
            d.removed.pop(tid, None)
        d.n += len(ids)
        if d.n > 64 and len(d.row_of) < d.n // 2:  # compact superseded rows
            rows = np.fromiter(d.row_of.values(), np.int64, len(d.row_of))
            d.vecs, d.ids, d.seqs = d.vecs[rows], d.ids[rows], d.seqs[rows]
            d.n = len(rows)
            d.row_of = {int(t): r for r, t in enumerate(d.ids.tolist())}

    def add_fresh(self, track_id: int, vector) -> bool:
        """Add or replace one track featurised after the build; False (counted) if rejected."""
        return self.set_delta([track_id], [vector], replace=False) == 0

    def set_delta(self, ids, vectors, *, removed: Iterable[int] = (), replace: bool = True) -> int:
        """Set (``replace``) or extend the delta: fresh (track_id, vector) pairs and removed ids.
        Returns the number of rejected vectors."""
        ids = np.asarray(ids).astype(np.int64).reshape(-1)
        with self._lock:
            mask, x, dim = self._clean_rows(vectors, self._dim)
            if len(ids) != len(mask):
                raise ValueError(f"{len(ids)} ids for {len(mask)} vectors")
            if self._dim is None and mask.any():
                self._dim = dim
            n_rej = int(len(mask) - mask.sum())
            self.rejected += n_rej
            if replace:
                self._delta = _Delta()
            self._seq += 1
            if mask.any():
                self._append(ids[mask], x[mask], np.full(int(mask.sum()), self._seq))
            for tid in removed:
                self._remove_locked(int(tid))
            self._snap = None
        return n_rej

    def _remove_locked(self, track_id: int) -> None:
        self._delta.row_of.pop(track_id, None)
        self._delta.removed[track_id] = self._seq

    def remove(self, track_id: int) -> None:
        """Hide a deleted track from every answer from now on (until it is added again)."""
        with self._lock:
            self._seq += 1
            self._remove_locked(int(track_id))
            self._snap = None

    def _snapshot_locked(self) -> _Snapshot:
        if self._snap is None:
            d = self._delta
            rows = np.fromiter(d.row_of.values(), np.int64, len(d.row_of))
            vecs = d.vecs[rows] if d.vecs is not None else np.zeros((0, self._dim or 1), np.float32)
            unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True) if self.metric == "angular" else vecs
            cand = np.concatenate([d.ids[rows], np.fromiter(d.removed, np.int64, len(d.removed))])
            gen = self._current
            hidden = frozenset(cand[gen.items_of(cand) >= 0].tolist()) if gen is not None else frozenset()
            self._snap = _Snapshot(d.ids[rows], vecs, unit, hidden)
        return self._snap

    # ----- queries ----------------------------------------------------------------------------
    def _pin(self) -> tuple[_Generation | None, _Snapshot]:
        with self._lock:
            gen = self._current
            if gen is not None:
                gen.refs += 1
            return gen, self._snapshot_locked()

    def _unpin(self, gen: _Generation | None) -> None:
        if gen is not None:
            with self._lock:
                self._release_locked(gen)

    def _delta_distances(self, snap: _Snapshot, q: np.ndarray) -> np.ndarray:
        if self.metric == "angular":
            # einsum, not BLAS: a threaded gemv stalls for ms when another process holds a core
            cos = np.einsum("ij,j->i", snap.unit, q / np.linalg.norm(q))
            return np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))
        diff = snap.vecs - q
        if self.metric == "euclidean":
            return np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return np.abs(diff).sum(axis=1)

    def query(self, vector, n: int, *, exclude: Iterable[int] = frozenset()) -> list[tuple[int, float]]:
        """The ``n`` nearest (track_id, distance), ascending, over generation + delta, without
        ``exclude`` and removed tracks. Distances are Annoy's for the metric (angular:
        sqrt(2 - 2 cos)). ValueError for an invalid query vector."""
        exclude = exclude if isinstance(exclude, (set, frozenset)) else set(exclude)
        gen, snap = self._pin()
        try:
            dim = gen.dim if gen else self._dim
            if dim is None:  # nothing was ever indexed
                return []
            q = self._query_vector(vector, dim)
            if n <= 0:
                return []
            found: dict[int, float] = {}
            if len(snap.ids):
                dist = self._delta_distances(snap, q)
                take = min(len(dist), n + len(exclude))
                part = np.argpartition(dist, take - 1)[:take] if take < len(dist) else np.arange(len(dist))
                for tid, dd in zip(snap.ids[part].tolist(), dist[part].tolist(), strict=True):
                    if tid not in exclude:
                        found[tid] = dd
            if gen is not None and gen.anns:
                total = len(gen.ids)
                pool = self._query_pool(len(gen.anns))
                shard_items = gen.anns[0].get_n_items()
                base = n + len(exclude)  # plus the hidden items expected among the answers
                ask = min(total, base + min(len(snap.hidden), 3 * base * len(snap.hidden) // total + 5))
                qs = q.tolist()
                while True:
                    sk = self._search_k or search_k_for(gen.per_k, shard_items, gen.n_trees, min(base, 2 * n))
                    items, dists = search_shards(gen.anns, qs, ask, max(sk, ask * gen.n_trees), pool)
                    kept = 0
                    for tid, dd in zip(gen.ids[items].tolist(), dists, strict=True):
                        if tid not in snap.hidden and tid not in exclude:
                            kept += 1
                            found.setdefault(tid, dd)
                    if kept >= n or len(items) < ask or ask >= total:
                        break
                    ask = min(total, ask * 4)
            return sorted(found.items(), key=lambda t: (t[1], t[0]))[:n]
        finally:
            self._unpin(gen)

    def generation_ids(self) -> np.ndarray:
        """Track ids in the current generation (int64; empty when there is none)."""
        gen = self._current
        return gen.ids.copy() if gen is not None else np.zeros(0, np.int64)

    def vector(self, track_id: int) -> np.ndarray | None:
        """The vector stored for ``track_id`` (float32), or None if unknown or removed."""
        gen, snap = self._pin()
        try:
            hit = np.flatnonzero(snap.ids == track_id)
            if len(hit):
                return snap.vecs[hit[0]].copy()
            if track_id in snap.hidden or gen is None or not gen.anns:
                return None
            item = int(gen.items_of(np.asarray([track_id], np.int64))[0])
            if item < 0:
                return None
            shards = len(gen.anns)
            return np.asarray(gen.anns[item % shards].get_item_vector(item // shards), np.float32)
        finally:
            self._unpin(gen)

    @property
    def generation(self) -> int | None:
        gen = self._current
        return gen.number if gen else None

    @property
    def size(self) -> int:
        """Tracks a query can return (generation + fresh - removed)."""
        gen, snap = self._pin()
        try:
            return (len(gen.ids) if gen else 0) - len(snap.hidden) + len(snap.ids)
        finally:
            self._unpin(gen)

    @property
    def stale(self) -> int:
        """Fresh and removed tracks since the current generation was built."""
        with self._lock:
            return len(self._delta.row_of) + len(self._delta.removed)

    def close(self) -> None:
        """Unmap every generation (call when no query can be running)."""
        with self._lock:
            for gen in list(self._loaded):
                for ann in gen.anns:
                    ann.unload()
            self._loaded.clear()
            self._current = None
            pool, self._pool, self._pool_threads = self._pool, None, 0
        if pool is not None:
            pool.shutdown(wait=True)
