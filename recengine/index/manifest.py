"""A generation's files and its manifest (format 1 and 2).

Generation ``N`` is ``gen-NNNNNN``: the Annoy file (``.ann``; a sharded generation has
``.ann``, ``.s1.ann``, ...), the item -> track_id map (``.ids.npy``) and, written last, the
manifest (``.json``: dim, metric, n_items, shards, n_trees, seed, n_jobs, the sha256 of every
file, the calibrated ``search_k_per_result`` and the caller's ``meta``). The manifest's rename is
the commit point. Format 1 (one Annoy file: ``ann_file``/``ann_sha256``) is still read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recengine.faults import faultpoint
from recengine.fileio import atomic_write
from recengine.index.annoy_file import IndexRefused

FORMAT = 2
#: the name of every file of a generation: (number, kind), kind one of ann, sN.ann, ids.npy, json
NAME_RE = re.compile(r"^gen-(\d{6,})\.((?:s\d+\.)?ann|ids\.npy|json)$")


def stem(number: int) -> str:
    return f"gen-{number:06d}"


def ids_name(number: int) -> str:
    return f"{stem(number)}.ids.npy"


def manifest_name(number: int) -> str:
    return f"{stem(number)}.json"


def shard_names(number: int, shards: int) -> list[str]:
    """Annoy file of each shard: ``gen-NNNNNN.ann``, ``gen-NNNNNN.s1.ann``, ..."""
    return [f"{stem(number)}.ann"] + [f"{stem(number)}.s{s}.ann" for s in range(1, shards)]


@dataclass(frozen=True)
class Manifest:
    """What a manifest says about its generation, checked for consistency (not yet the files)."""

    number: int
    dim: int
    n_items: int
    n_trees: int
    shards: int
    ann_files: list[str]
    ann_sha256: list[str]
    ids_sha256: str
    per_k: int | None  # calibrated search_k per result; None in generations made before calibration
    meta: dict[str, Any]


def parse_manifest(man: Any, number: int, metric: str) -> Manifest:
    """The manifest of generation ``number``; IndexRefused when it does not describe it."""
    if not isinstance(man, dict):
        raise IndexRefused("manifest is not an object")
    try:
        dim, n_items, n_trees = int(man["dim"]), int(man["n_items"]), int(man["n_trees"])
        if man["format"] == 1:  # one Annoy file
            shards, files, shas = 1, [man["ann_file"]], [man["ann_sha256"]]
            files, shas = (files, shas) if n_items else ([], [])
        else:
            shards, files, shas = int(man["shards"]), list(man["ann_files"]), list(man["ann_sha256"])
        ok = (man["format"] in (1, FORMAT) and man["generation"] == number and man["metric"] == metric
              and dim > 0 and n_items >= 0 and man["ids_file"] == ids_name(number) and 1 <= shards <= max(n_items, 1)
              and files == (shard_names(number, shards) if n_items else []) and len(shas) == len(files))  # fmt: skip
        parsed = Manifest(number, dim, n_items, n_trees, shards, files, shas, man["ids_sha256"],
                          int(man["search_k_per_result"]) if man.get("search_k_per_result") else None,
                          dict(man.get("meta") or {}))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexRefused(f"manifest field missing or bad: {exc}") from exc
    if not ok:
        raise IndexRefused("manifest does not describe this generation/metric")
    return parsed


def read_manifest(directory: Path, number: int, metric: str, expect_meta: Mapping[str, Any]) -> Manifest:
    """Generation ``number``'s manifest; IndexRefused if it is unreadable or an item of
    ``expect_meta`` differs from its ``meta``."""
    man = parse_manifest(json.loads((directory / manifest_name(number)).read_bytes()), number, metric)
    for key, want in expect_meta.items():
        if man.meta.get(key) != want:
            raise IndexRefused(f"meta {key!r} is {man.meta.get(key)!r}, want {want!r}")
    return man


def write_generation(directory: Path, number: int, ids: np.ndarray, fields: Mapping[str, Any]) -> Manifest:
    """Write the id map, then the manifest (``fields`` plus format, number and checksums): the
    generation exists from the manifest's rename on. Its Annoy files must be in place already."""
    buf = io.BytesIO()
    np.save(buf, ids, allow_pickle=False)
    ids_bytes = buf.getvalue()
    atomic_write(directory / ids_name(number), ids_bytes)
    manifest = {**fields, "format": FORMAT, "generation": number, "ids_file": ids_name(number),
                "ids_sha256": hashlib.sha256(ids_bytes).hexdigest()}  # fmt: skip
    faultpoint("before_index_replace")
    atomic_write(directory / manifest_name(number), (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode())
    faultpoint("after_index_replace")
    return parse_manifest(manifest, number, manifest["metric"])


def remove_files(directory: Path, number: int, shards: int) -> None:
    """Remove what a failed write of generation ``number`` may have left."""
    for name in (*shard_names(number, shards), ids_name(number), manifest_name(number)):
        with contextlib.suppress(OSError):
            os.unlink(directory / name)
