"""Annoy files: checked before they are mapped, written so a reader never sees half a file.

Annoy trusts its file: a node pointer out of range crashes the process (annoy #394). So before a
file is mapped, :func:`check_annoy_file` reads its node structure against the manifest's ``f``,
metric and item count (every child and leaf entry in range, the root holding every item) while it
hashes it. :func:`save_annoy_files` writes each built index to a temp file, fsyncs it, checks it
the same way and renames it into place. :func:`item_vectors` maps the item nodes (the first
``n_items`` nodes of the file, one per item) as a numpy matrix, for bulk vector lookups.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from recengine.faults import faultpoint
from recengine.fileio import fsync_dir

#: metric -> (node header bytes before the vector, offset of ``children`` in int32 words).
LAYOUT = {"angular": (12, 1), "euclidean": (16, 2), "manhattan": (16, 2)}
_CHUNK_NODES = 1 << 16


class IndexRefused(Exception):
    """A generation that must not be loaded (manifest, checksum or structure mismatch)."""


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _node_words(dim: int, metric: str) -> int:
    header, _ = LAYOUT[metric]
    return (header + 4 * dim) // 4


def check_annoy_file(path: Path, dim: int, metric: str, n_items: int) -> str:
    """sha256 of an Annoy file after checking its node structure fits ``dim``/``metric``/``n_items``
    (so every pointer Annoy follows stays inside the file); raises IndexRefused otherwise."""
    _, coff = LAYOUT[metric]
    words = _node_words(dim, metric)
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


def map_annoy_file(path: Path, dim: int, metric: str, n_items: int, expect_sha: str | None) -> AnnoyIndex:
    """The Annoy index in ``path``, mapped. With ``expect_sha``, the file is checked first
    (:func:`check_annoy_file`) and must have that sha256; IndexRefused if anything is off."""
    if expect_sha is not None and check_annoy_file(path, dim, metric, n_items) != expect_sha:
        raise IndexRefused(f"{path.name}: sha256 mismatch")
    ann = AnnoyIndex(dim, metric)
    try:
        ann.load(str(path), prefault=False)
    except OSError as exc:
        raise IndexRefused(f"{path.name}: {exc}") from exc
    if ann.get_n_items() != n_items or ann.f != dim:
        ann.unload()
        raise IndexRefused(f"{path.name}: Annoy sees {ann.get_n_items()} items of f={ann.f}")
    return ann


def item_vectors(path: Path, dim: int, metric: str, n_items: int) -> np.ndarray:
    """(n_items, dim) float32 view of the item vectors stored in a checked Annoy file (read-only,
    memory-mapped: the pages are the ones Annoy maps, nothing is copied)."""
    if not n_items:
        return np.zeros((0, dim), np.float32)
    header, _ = LAYOUT[metric]
    words = _node_words(dim, metric)
    with open(path, "rb") as f:  # a plain array over the map (np.memmap's indexing costs ~25 us a call)
        mapped = mmap.mmap(f.fileno(), 4 * words * n_items, access=mmap.ACCESS_READ)
    nodes = np.frombuffer(mapped, dtype="<i4").reshape(n_items, words)
    return nodes[:, header // 4 :].view("<f4")


def save_annoy_files(anns: list[AnnoyIndex], directory: Path, names: list[str], sizes: list[int],
                     dim: int, metric: str) -> list[str]:  # fmt: skip
    """Write each built index to ``directory/name`` (temp, fsync, structure check, rename); every
    index is unloaded after. Returns the sha256 of each file. On failure no file is left."""
    shas: list[str] = []
    written: list[str] = []
    try:
        for ann, name, size in zip(anns, names, sizes, strict=True):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            os.close(fd)
            written.append(tmp)
            ann.save(tmp)  # Annoy unlinks and rewrites tmp, then maps it
            ann.unload()
            faultpoint("mid_index_write")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            shas.append(check_annoy_file(Path(tmp), dim, metric, size))
        for tmp, name in zip(written, names, strict=True):
            os.replace(tmp, directory / name)
    except BaseException:
        for tmp in written:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for ann in anns:
            ann.unload()
        raise
    fsync_dir(directory)
    return shas
