"""Same-label similarity of what the engine returns: precision@10 and 1-NN, per extractor and fused,
on the whole corpus and on two disjoint halves of its labels.

    .venv/bin/python bench/similarity.py /work/corpus --data-dir /tmp/simbench   # kept: 2nd run only measures
    .venv/bin/python bench/similarity.py /work/corpus --only fused --json out.json

Layout: ``DIR/<label>/.../<track>`` (the dev corpus: a label is a soundtrack). Halves: the labels
sorted by name, half A the even positions, half B the odd ones. Each scope (whole, A, B) is its
own library (its own data dir, scaling and index: ``library.folders`` = that scope's label
folders), scanned through the real engine; then, for each extractor alone (``index.weights``
giving the others 0) and for the fused default weights, an index is built and every track is
queried with ``engine.similar(track, k)``: the numbers are what a user gets (the index, its
calibrated recall, duplicate removal and any re-ranking included), not a distance matrix.
"micro" averages over tracks, "macro" over labels; chance is a random ranking's precision.
Choose a design on one half, confirm it on the other: a gain on one half only is noise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from simmetrics import chance_precision  # noqa: E402

from recengine import Engine  # noqa: E402

#: Issue targets for the built-in features alone (1.25x the single-Gaussian + MP baseline on v2)
TARGET_P10, TARGET_1NN = 0.42, 0.59


def scopes(directory: Path) -> dict[str, list[Path]]:
    labels = sorted(p for p in directory.iterdir() if p.is_dir())
    return {"whole": labels, "A": labels[0::2], "B": labels[1::2]}


def measure(engine, folders: list[Path], k: int) -> dict:
    """Query every analysed track; score the answers against the folder labels."""
    label_of = {}
    for track in engine.catalog.tracks(status="ok"):
        path = Path(track.path)
        label_of[track.track_id] = next((f.name for f in folders if path.is_relative_to(f)), "?")
    ids = sorted(label_of)
    hits_p, hits_1, started = [], [], time.perf_counter()
    for tid in ids:
        recs = engine.similar([tid], k)
        same = [label_of.get(r.track.track_id) == label_of[tid] for r in recs[:k]]
        hits_p.append(sum(same) / k)
        hits_1.append(1.0 if same and same[0] else 0.0)
    labels = [label_of[t] for t in ids]
    chance = chance_precision(labels, k=k)

    def micro_macro(values: list[float]) -> tuple[float, float]:
        arr, labs = np.asarray(values), np.asarray(labels)
        return float(arr.mean()), float(np.mean([arr[labs == lab].mean() for lab in set(labels)]))

    p_micro, p_macro = micro_macro(hits_p)
    n_micro, n_macro = micro_macro(hits_1)
    return {"tracks": len(ids), "labels": len(set(labels)), f"p@{k}": [p_micro, p_macro],
            "1nn": [n_micro, n_macro], "chance": [chance["micro"], chance["macro"]],
            "query_ms": 1000 * (time.perf_counter() - started) / max(len(ids), 1)}


SETTINGS: dict[str, object] = {}  # --set KEY=VALUE (dotted config keys), for trying a setting


def open_engine(folders: list[Path], data_dir: Path, workers: int, weights: dict | None = None) -> Engine:
    raw = {"library": {"folders": [str(f) for f in folders]}, "data_dir": str(data_dir), "plugin_dirs": [],
           "scan": {"workers": workers}}
    if weights is not None:
        raw["index"] = {"weights": weights}
    for key, value in SETTINGS.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return Engine.open(None, raw=raw)


def run_scope(name: str, folders: list[Path], data_dir: Path, args) -> dict:
    with open_engine(folders, data_dir, args.workers) as engine:
        t0 = time.monotonic()
        report = engine.scan(workers=args.workers)
        print(f"[{name}] scan: {report.summary()} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
        extractors = {e.name: float(getattr(e, "weight", 1.0)) for e in engine.extractors}
        fused_weights = {**extractors, **(engine.config["index.weights"] or {})}
    variants: dict[str, dict | None] = {"fused": None}
    if args.only != "fused":
        variants.update({n: {m: (1.0 if m == n else 0.0) for m in extractors} for n in extractors})
    results = {}
    for variant, weights in variants.items():
        with open_engine(folders, data_dir, args.workers, weights) as engine:
            engine.index.build()
            results[variant] = measure(engine, folders, args.k)
            results[variant]["weights"] = weights or fused_weights
    return results


def print_table(all_results: dict, k: int) -> None:
    print(f"| variant | scope | tracks | labels | P@{k} micro | P@{k} macro | 1-NN micro | 1-NN macro | chance |")
    print("|---|---|---|---|---|---|---|---|---|")
    variants = list(next(iter(all_results.values())))
    for variant in variants:
        for scope, results in all_results.items():
            r = results[variant]
            print(f"| {variant} | {scope} | {r['tracks']} | {r['labels']} | {r[f'p@{k}'][0]:.3f} | "
                  f"{r[f'p@{k}'][1]:.3f} | {r['1nn'][0]:.3f} | {r['1nn'][1]:.3f} | {r['chance'][0]:.3f} |")
    print(f"\ntargets (built-in features, every scope): P@{k} micro >= {TARGET_P10}, 1-NN micro >= {TARGET_1NN}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--data-dir", type=Path, help="where the three catalogs live (kept; default: temp, removed)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--only", choices=("all", "fused"), default="all", help="fused only, or each extractor too")
    ap.add_argument("--scopes", default="whole,A,B", help="comma-separated subset of whole,A,B")
    ap.add_argument("--json", type=Path, help="write the measurements to this file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config setting for every engine, e.g. similarity.candidates=50 (YAML value)")
    args = ap.parse_args(argv)
    for item in args.set:
        key, _, value = item.partition("=")
        SETTINGS[key] = yaml.safe_load(value)
    if not args.dir.is_dir():
        ap.error("DIR must be a folder with one subfolder per label")
    directory = args.dir.resolve()
    base = Path(tempfile.mkdtemp(prefix="recengine-simbench-")) if args.data_dir is None else args.data_dir.resolve()
    try:
        wanted = args.scopes.split(",")
        results = {name: run_scope(name, folders, base / name, args)
                   for name, folders in scopes(directory).items() if name in wanted}
        print_table(results, args.k)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    finally:
        if args.data_dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
