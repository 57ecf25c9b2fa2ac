"""Same-label similarity of the engine's own vectors: precision@10 and 1-NN over a labelled corpus.

    .venv/bin/python bench/similarity.py /work/corpus --workers 2
    .venv/bin/python bench/similarity.py /work/corpus --data-dir /tmp/simbench   # 2nd run only measures

Layout: ``DIR/<label>/.../<track>``: a track's label is the first folder under DIR (e.g. the
soundtrack). The tracks are scanned through the real engine (``Engine.open(None, raw=...)`` and
``engine.scan()``) into ``--data-dir`` (kept, so a second run finds everything featurised and only
measures) or into a temporary data dir. The vectors are the engine's own index vectors (an index
build: ``vectors.Scaler`` fitted over the library with each extractor's ``weight``, overridden by
``index.weights``, then the ``index.dimensions`` projection); distances with ``vectors.METRIC`` (or
the config's ``index.metric`` when it is not ``auto``), searched exactly, so the numbers measure the
vectors, not Annoy's recall. Metrics come from ``bench/simmetrics.py``: the query track is never its own neighbour;
micro averages over tracks, macro over labels.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from simmetrics import chance_precision, one_nn, precision_at_k  # noqa: E402

from recengine import Engine  # noqa: E402
from recengine.index.vectors import METRIC, Scaler  # noqa: E402

TARGET_P10 = 0.60
TARGET_1NN = 0.75


def engine_weights(engine) -> dict[str, float]:
    """Per-extractor weights: the extractor's ``weight`` attribute, overridden by ``index.weights``."""
    weights = {e.name: float(getattr(e, "weight", 1.0)) for e in engine.extractors}
    for name, value in (engine.config["index.weights"] or {}).items():
        if name in weights:
            weights[name] = float(value)
    return weights


def engine_metric(engine) -> str:
    metric = engine.config["index.metric"]
    return METRIC if metric in (None, "", "auto") else metric


def label_of(path: Path, directory: Path) -> str:
    parts = path.relative_to(directory).parts
    return parts[0] if len(parts) > 1 else "(top level)"


def build_vectors(engine, directory: Path) -> tuple[np.ndarray, list[str], list[str], Scaler]:
    versions = engine.extractor_versions()
    ids, mats = engine.catalog.feature_matrix(versions)
    # the engine's own index vectors: library scaling, block weights and the index projection
    engine.index.build()
    scaler = engine.index.scaler
    scaler.metric = engine_metric(engine)
    vectors = np.stack([engine.index.vector(t) for t in ids])
    paths = [engine.catalog.track(tid).path for tid in ids]
    labels = [label_of(Path(p), directory) for p in paths]
    return vectors, labels, [str(p) for p in paths], scaler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--data-dir", type=Path, help="catalog to create or reuse (default: a temp dir, removed)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", type=Path, help="write the measurements to this file")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        ap.error("DIR must be a folder with one subfolder per label")
    directory = args.dir.resolve()
    cleanup = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="recengine-simbench-")) if cleanup else args.data_dir.resolve()
    try:
        raw = {
            "library": {"folders": [str(directory)]},
            "data_dir": str(data_dir),
            "plugin_dirs": [],
            "scan": {"workers": args.workers},
        }
        with Engine.open(None, raw=raw) as engine:
            t0 = time.monotonic()
            report = engine.scan(workers=args.workers)
            print(f"scan: {report.summary()} ({time.monotonic() - t0:.1f} s); data dir {data_dir}")
            vectors, labels, paths, scaler = build_vectors(engine, directory)
        result = evaluate(vectors, labels, scaler, args.k)
        print_result(result, args.k)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
    finally:
        if cleanup:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def evaluate(vectors: np.ndarray, labels: list[str], scaler: Scaler, k: int) -> dict:
    metric = scaler.metric
    p = precision_at_k(vectors, labels, k=k, metric=metric)
    o = one_nn(vectors, labels, metric=metric)
    c = chance_precision(labels, k=k)
    counts = {lab: labels.count(lab) for lab in sorted(set(labels))}
    return {
        "tracks": len(labels),
        "labels": counts,
        "metric": metric,
        "dim": int(vectors.shape[1]) if vectors.size else 0,
        "weights": scaler.weights,
        "p@k": {"k": k, "micro": p["micro"], "macro": p["macro"], "per_label": p["per_label"]},
        "1nn": {"micro": o["micro"], "macro": o["macro"], "per_label": o["per_label"]},
        "chance": {"micro": c["micro"], "macro": c["macro"], "per_label": c["per_label"]},
    }


def print_result(r: dict, k: int) -> None:
    weights = ", ".join(f"{n} {w:g}" for n, w in r["weights"].items())
    print(
        f"{r['tracks']} tracks, {len(r['labels'])} labels; {r['dim']}-d vectors, metric {r['metric']}; "
        f"weights {weights}"
    )
    print(f"\n| label | tracks | P@{k} | 1-NN | chance |")
    print("|---|---|---|---|---|")
    for lab, n in r["labels"].items():
        print(
            f"| {lab} | {n} | {r['p@k']['per_label'][lab]:.3f} | {r['1nn']['per_label'][lab]:.3f} | "
            f"{r['chance']['per_label'][lab]:.3f} |"
        )
    print("\n| measure | micro | macro | target |")
    print("|---|---|---|---|")
    print(f"| P@{k} | {r['p@k']['micro']:.3f} | {r['p@k']['macro']:.3f} | micro >= {TARGET_P10:.2f} |")
    print(f"| 1-NN | {r['1nn']['micro']:.3f} | {r['1nn']['macro']:.3f} | >= {TARGET_1NN:.2f} |")
    print(f"| chance | {r['chance']['micro']:.3f} | {r['chance']['macro']:.3f} | |")


if __name__ == "__main__":
    raise SystemExit(main())
