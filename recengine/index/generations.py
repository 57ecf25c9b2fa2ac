"""Generations on disk and in memory: opening, numbering, reference-counted retirement, GC.

A generation's files are never rewritten, so a mapped file is never changed under a reader (annoy
#335, #379). Before a generation is mapped its manifest is checked against the files and each
Annoy file's structure against the manifest (:mod:`recengine.index.annoy_file`), so a wrong or
damaged file is refused instead of crashing the process (annoy #394). A query pins the current
generation (a reference count); a generation that was swapped out is unmapped and its files
deleted only when its last reader is done. Numbers are never reused while any file of that
number exists. Entries of the index folder that are not regular files (a folder named like a
manifest, a link) are never read or deleted: they are skipped with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from recengine.index.annoy_file import IndexRefused, item_vectors, map_annoy_file, sha256_of
from recengine.index.calibration import PER_K_LADDER
from recengine.index.manifest import NAME_RE, Manifest, ids_name, stem
from recengine.index.shards import shard_sizes
from recengine.index.validation import IdLookup

log = logging.getLogger(__name__)


class IndexDirectoryError(OSError):
    """The index folder's path holds something that is not a folder and cannot be moved aside."""


def prepare_directory(path: Path) -> None:
    """Make the index folder. A file (or a dangling link) where it belongs is moved aside to
    ``<name>.not-a-folder-<time>`` with a warning (nothing is deleted; the index is derived data,
    rebuilt from the catalog); IndexDirectoryError, one line, if it cannot be moved."""
    if not path.is_dir() and os.path.lexists(path):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.not-a-folder-{stamp}")
        n = 1
        while os.path.lexists(aside):
            n += 1
            aside = path.with_name(f"{path.name}.not-a-folder-{stamp}-{n}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            pass  # another process moved it first
        except OSError as exc:
            raise IndexDirectoryError(
                f"{path} is not a folder and cannot be moved aside ({exc.strerror}): move or remove it "
                "(the index is rebuilt from the catalog)") from None
        else:
            log.warning("%s was not a folder: moved it aside to %s; the index is rebuilt from the catalog",
                        path, aside.name)
    path.mkdir(parents=True, exist_ok=True)


@dataclass(eq=False)
class Generation:
    """One mapped generation: its Annoy shards, item matrices and id map."""

    number: int
    dim: int
    anns: list[AnnoyIndex]  # one per shard; empty when the generation has no items
    items: list[np.ndarray]  # per shard: (shard items, dim) float32 view of the Annoy file's items
    lookup: IdLookup  # of the track id of each global item
    n_trees: int
    per_k: int
    meta: dict[str, Any]
    refs: int = 0
    retired: bool = False

    @property
    def track_ids(self) -> np.ndarray:
        """Global item -> track_id."""
        return self.lookup.ids

    def items_of(self, track_ids: np.ndarray) -> np.ndarray:
        """Global item of each track id, -1 where the id is not in this generation."""
        return self.lookup.positions(track_ids)

    def vectors_of(self, items: np.ndarray) -> np.ndarray:
        """(len(items), dim) float32 copy of the stored vectors of global ``items`` (all >= 0)."""
        shards = len(self.anns)
        if shards == 1:
            return np.asarray(self.items[0][items])
        out = np.empty((len(items), self.dim), np.float32)
        for s in range(shards):
            mine = items % shards == s
            out[mine] = self.items[s][items[mine] // shards]
        return out

    def unmap(self) -> None:
        for ann in self.anns:
            ann.unload()
        self.items = []


def open_generation(directory: Path, man: Manifest, metric: str, *, verify_ann: bool = True) -> Generation:
    """Map generation ``man.number`` after checking its id map and (``verify_ann``) Annoy files
    against the manifest; IndexRefused if they do not match."""
    ids_path = directory / ids_name(man.number)
    if sha256_of(ids_path) != man.ids_sha256:
        raise IndexRefused(f"{ids_path.name}: sha256 mismatch")
    ids = np.load(ids_path, allow_pickle=False)
    if ids.dtype != np.int64 or ids.shape != (man.n_items,) or len(np.unique(ids)) != man.n_items:
        raise IndexRefused(f"{ids_path.name}: not {man.n_items} distinct int64 ids")
    anns: list[AnnoyIndex] = []
    items: list[np.ndarray] = []
    try:
        sizes = shard_sizes(man.n_items, man.shards) if man.n_items else []
        for name, sha, size in zip(man.ann_files, man.ann_sha256, sizes, strict=True):
            path = directory / name
            anns.append(map_annoy_file(path, man.dim, metric, size, sha if verify_ann else None))
            items.append(item_vectors(path, man.dim, metric, size))
    except BaseException:
        for ann in anns:
            ann.unload()
        raise
    return Generation(man.number, man.dim, anns, items, IdLookup(ids), man.n_trees,
                      man.per_k or PER_K_LADDER[-1], man.meta)  # fmt: skip


@dataclass
class Generations:
    """The generations of one index folder: the current one, those still mapped by readers, and
    those refused. Not thread-safe: the store holds its lock around every call."""

    directory: Path
    keep: int  # good generations kept on disk, the current one included
    current: Generation | None = None
    _mapped: set[Generation] = field(default_factory=set)
    _bad: set[int] = field(default_factory=set)
    _odd_seen: set[str] = field(default_factory=set)

    def on_disk(self) -> dict[int, set[str]]:
        """number -> kinds of file present (``ann``, ``s1.ann``, ``ids.npy``, ``json``), regular
        files only."""
        return self._scan()[0]

    def next_number(self) -> int:
        """One more than any number on disk or in use (odd entries included: a name is never reused)."""
        found, odd = self._scan()
        taken = set(found) | odd | ({self.current.number} if self.current else set())
        return max(taken, default=0) + 1

    def _scan(self) -> tuple[dict[int, set[str]], set[int]]:
        found: dict[int, set[str]] = {}
        odd: set[int] = set()
        for entry in os.scandir(self.directory):
            if not (m := NAME_RE.match(entry.name)):
                continue
            if entry.is_file(follow_symlinks=False):
                found.setdefault(int(m.group(1)), set()).add(m.group(2))
                continue
            odd.add(int(m.group(1)))
            if entry.name not in self._odd_seen:
                self._odd_seen.add(entry.name)
                log.warning("index: %s is not a regular file: skipped (move it out of %s)",
                            entry.name, self.directory)
        return found, odd

    def refused(self, number: int) -> None:
        self._bad.add(number)

    def install(self, gen: Generation) -> None:
        """Make ``gen`` current; the previous one is retired (unmapped once no reader pins it)."""
        old, self.current = self.current, gen
        self._mapped.add(gen)
        if old is not None:
            old.retired = True
            self.release(old, 0)
        self.collect()

    def pin(self) -> Generation | None:
        gen = self.current
        if gen is not None:
            gen.refs += 1
        return gen

    def release(self, gen: Generation, dec: int = 1) -> None:
        gen.refs -= dec
        if gen.retired and gen.refs <= 0 and gen in self._mapped:
            self._mapped.discard(gen)
            gen.unmap()
            self.collect()

    def collect(self) -> None:
        """Delete files of generations older than the current one that are neither among the
        newest ``keep`` good ones nor mapped by a reader."""
        if self.current is None:
            return
        found = self.on_disk()
        older = sorted((n for n in found if n < self.current.number), reverse=True)
        good = [n for n in older if n not in self._bad and "json" in found[n]]
        keep = set(good[: self.keep - 1]) | {g.number for g in self._mapped}
        for number in older:
            if number not in keep:
                for kind in found[number]:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.directory / f"{stem(number)}.{kind}")
                self._bad.discard(number)

    def close(self) -> None:
        """Unmap every generation (when no query can be running)."""
        for gen in self._mapped:
            gen.unmap()
        self._mapped.clear()
        self.current = None
