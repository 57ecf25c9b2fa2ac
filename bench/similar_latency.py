"""End-to-end `similar` latency: the CLI (start-up included) and the Python API.

    .venv/bin/python bench/similar_latency.py [--tracks 10000] [--library DIR] [--runs 10]

Without --library it makes a catalog of N tracks whose feature rows are clustered random vectors
of the built-in extractors' real dimensions (no audio is needed to time queries), builds the
index, then times `recengine similar PATH -n 10` as a subprocess and `engine.similar()` in
process. With --library DIR it scans DIR (a real library) into a scratch data dir first and
times the same on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recengine.engine import Engine


def fake_catalog(engine: Engine, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    root = Path(engine.config.library_folders[0])
    catalog = engine.catalog
    root_id = catalog.root_id(str(root))
    dims = {e.name: (e.version, e.dim) for e in engine.extractors}
    centres = {name: rng.normal(size=(50, dim)) for name, (_, dim) in dims.items()}
    paths, now = [], time.time()
    with catalog.write() as db:
        for i in range(n):
            rel = f"artist{i % 500:03d}/album{i % 1000:04d}/track{i:06d}.flac"
            cur = db.execute(
                "INSERT INTO tracks(root_id, relpath, size, mtime_ns, content_sig, status, artist, album, title, "
                "duration, added_at, updated_at) VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, ?, 200.0, ?, ?)",
                (root_id, rel, 1000 + i, i, f"sig{i}", f"Artist {i % 500}", f"Album {i % 1000}", f"Track {i}", now, now))
            tid = cur.lastrowid
            cluster = i % 50
            for name, (version, dim) in dims.items():
                vec = (centres[name][cluster] + 0.3 * rng.normal(size=dim)).astype(np.float32)
                db.execute("INSERT INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (tid, name, version, f"sig{i}", dim, vec.tobytes(), now))
            paths.append(root / rel)
    return paths


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=10000)
    ap.add_argument("--library", type=Path)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recengine-latency-"))
    data = args.data_dir or work / "data"
    library = args.library or work / "library"
    library.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(f"library: {{folders: ['{library.resolve()}']}}\ndata_dir: '{data}'\nplugin_dirs: []\n")
    with Engine.open(config, entrypoints=False) as engine:
        if args.library:
            t = time.perf_counter()
            engine.scan()
            print(f"scanned {args.library} in {time.perf_counter() - t:.1f} s")
            paths = [t.path for t in engine.catalog.tracks(status="ok")]
        elif not engine.catalog.tracks():
            t = time.perf_counter()
            paths = fake_catalog(engine, args.tracks)
            print(f"catalog of {len(paths)} synthetic tracks in {time.perf_counter() - t:.1f} s")
        else:
            paths = [t.path for t in engine.catalog.tracks()]
        t = time.perf_counter()
        engine.index.build()
        print(f"index built in {time.perf_counter() - t:.1f} s ({engine.index.store.size} tracks, "
              f"dim {engine.index.scaler.dim})")
        rng = np.random.default_rng(1)
        seeds = [paths[i] for i in rng.integers(0, len(paths), size=max(args.runs, 50))]
        api = []
        for seed in seeds:
            t = time.perf_counter()
            engine.similar([seed], 10)
            api.append((time.perf_counter() - t) * 1000)
    cli = []
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time start-up as installed (bytecode cached), not compiling
    subprocess.run([sys.executable, "-m", "recengine", "--help"], check=True, capture_output=True, env=env)
    for seed in seeds[:args.runs]:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "recengine", "-q", "--config", str(config), "similar", str(seed),
                        "-n", "10"], check=True, capture_output=True, env=env)
        cli.append(time.perf_counter() - t)
    print(f"\n{'tracks':>8} {'API p50 ms':>11} {'API p99 ms':>11} {'CLI p50 s':>10} {'CLI max s':>10}")
    print(f"{len(paths):>8} {statistics.median(api):>11.2f} {percentile(api, 99):>11.2f} "
          f"{statistics.median(cli):>10.3f} {max(cli):>10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
