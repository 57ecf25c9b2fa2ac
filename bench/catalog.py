"""The catalog at scale: SQLite write rates, bytes per track and the whole-library reads, on generated rows.

    .venv/bin/python bench/catalog.py                                   # up to 1M tracks
    .venv/bin/python bench/catalog.py --checkpoints 0,100000 --matrix-at 100000 --dir /var/tmp

The rows are those a scan writes with the default extractors (names and dimensions read from the
engine: 7 feature rows of 1,008 float32 in all per track), with tags and a ~55-character path.

The library grows in steps. Between checkpoints it is filled in bulk (10,000 tracks per
transaction, the columns ``add_track`` and ``save_features`` write: the fast path a bulk import
would take). At each checkpoint (``--checkpoints``) the real API is timed on ``--sample`` more
tracks, one transaction each as reconcile and the scanner commit them (``synchronous=FULL``, so each
is an fsync of the WAL): ``Catalog.add_track`` (what a first reconcile does per new file) and
``Catalog.save_features`` (per featurised file). Then the reads that walk the whole library, each in
a fresh child process for its own peak RSS: ``needs_features`` (what every featurise pass, the
daemon's too, starts with), ``files_under`` (a root's every file: each reconcile of a folder, the
daemon's per-hint ones too, starts with it), ``counts`` (``recengine status``), ``present_ids`` (recommendation
candidates, and every index refresh) and, up to ``--matrix-at`` tracks, ``feature_blocks`` (what an
index build reads: every vector in memory) and ``index_build`` (``engine.index.build()``: that read,
scaling, the projection to 64 axes, the Annoy build). Reported: the catalog file size, bytes per track (the file alone), and its WAL apart (it keeps the
size of the largest transaction: the bulk fill's, here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recengine.catalog import Catalog  # noqa: E402
from recengine.models import Tags  # noqa: E402

FILL_CHUNK = 10_000


def extractor_dims() -> dict[str, tuple[int, int]]:
    """name -> (version, dim) of the engine's default extractors (the neural one when installed)."""
    from recengine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.open(None, raw={"plugin_dirs": [], "library": {"folders": [tmp]}, "data_dir": tmp})
        dims = {e.name: (e.version, e.dim) for e in engine.extractors}
        engine.close()
    return dims


def relpath(i: int) -> str:
    return f"Artist {i // 1000:05d}/Album {i // 12 % 100:03d} ({1960 + i % 60})/{i % 12 + 1:02d} Track {i:08d}.flac"


def sig(i: int) -> str:
    return f"{i:032x}"


def tags(i: int) -> Tags:
    return Tags(
        artist=f"Artist {i // 1000:05d}",
        album=f"Album {i // 12 % 100:03d}",
        title=f"Track {i:08d}",
        genre="Rock",
        tracknumber=i % 12 + 1,
    )


def vectors(rng: np.random.Generator, dims: dict[str, tuple[int, int]], n: int) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal((n, dim), dtype=np.float32) for name, (_, dim) in dims.items()}


def fill(cat: Catalog, root_id: int, start: int, stop: int, dims: dict, rng: np.random.Generator) -> None:
    """Tracks ``start..stop`` with all their features, in bulk transactions."""
    for a in range(start, stop, FILL_CHUNK):
        b = min(stop, a + FILL_CHUNK)
        vecs = vectors(rng, dims, b - a)
        now = time.time()
        with cat.write() as db:
            first = db.execute("SELECT coalesce(max(track_id), 0) + 1 FROM tracks").fetchone()[0]
            db.executemany(
                "INSERT INTO tracks(track_id, root_id, relpath, size, mtime_ns, inode, content_sig, duration, artist, "
                "album, title, genre, tracknumber, status, added_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?)",
                [
                    (
                        first + k,
                        root_id,
                        relpath(i),
                        30_000_000 + i,
                        1_700_000_000_000_000_000 + i,
                        i,
                        sig(i),
                        240.0,
                        *_tag_values(tags(i)),
                        now,
                        now,
                    )
                    for k, i in enumerate(range(a, b))
                ],
            )
            db.executemany(
                "INSERT INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (first + k, name, dims[name][0], sig(i), dims[name][1], vecs[name][k].tobytes(), now)
                    for k, i in enumerate(range(a, b))
                    for name in dims
                ],
            )


def _tag_values(t: Tags) -> tuple:
    return t.artist, t.album, t.title, t.genre, t.tracknumber


def timed_api(cat: Catalog, root_id: int, start: int, n: int, dims: dict, rng: np.random.Generator) -> dict:
    """``n`` tracks through the API, one transaction each: add_track, then save_features."""
    vecs = vectors(rng, dims, n)
    ids = []
    t = time.perf_counter()
    for i in range(start, start + n):
        ids.append(
            cat.add_track(root_id, relpath(i), 30_000_000 + i, 1_700_000_000_000_000_000 + i, i, sig(i))
        )
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    for k, (tid, i) in enumerate(zip(ids, range(start, start + n), strict=True)):
        cat.save_features(
            tid, sig(i), {name: (dims[name][0], vecs[name][k]) for name in dims}, tags(i), 240.0
        )
    save_s = time.perf_counter() - t
    return {
        "add_track_per_s": n / add_s,
        "save_features_per_s": n / save_s,
        "add_track_ms": 1e3 * add_s / n,
        "save_features_ms": 1e3 * save_s / n,
    }


# --- whole-library reads, each in a child process ------------------------------------------------------

READS = ("needs_features", "files_under", "counts", "present_ids", "feature_blocks", "index_build")
#: the reads that hold every vector in memory, run only up to --matrix-at tracks
HEAVY = ("feature_blocks", "index_build")


def read_child(db_path: str, what: str, versions_json: str) -> None:
    versions = json.loads(versions_json)
    t = time.perf_counter()
    cat = Catalog(Path(db_path), migrate=False)
    opened = time.perf_counter() - t
    t = time.perf_counter()
    if what == "needs_features":
        n = len(cat.needs_features(versions))
    elif what == "files_under":
        n = len(cat.files_under(cat.roots()[0][0]))
    elif what == "counts":
        n = cat.counts()["ok"]
    elif what == "present_ids":
        n = len(cat.present_ids())
    elif what == "feature_blocks":
        n = len(cat.feature_blocks(versions)[0])
    else:  # the whole index build: every vector read, scaled, projected to 64 axes, Annoy built
        from recengine import Engine

        cat.close()
        t = time.perf_counter()
        raw = {
            "plugin_dirs": [],
            "library": {"folders": ["/srv/music"]},
            "data_dir": str(Path(db_path).parent),
        }
        with Engine.open(None, raw=raw) as engine:
            engine.index.build()
            n = engine.index.store.size
        cat = Catalog(Path(db_path), migrate=False)
    took = time.perf_counter() - t
    cat.close()
    print(
        json.dumps(
            {
                "what": what,
                "s": took,
                "open_s": opened,
                "rows": n,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def timed_read(db_path: Path, what: str, versions: dict[str, int]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--_read", str(db_path), what, json.dumps(versions)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss_mb() -> float:
    """Peak RSS of a child that imports the catalog and opens nothing (subtracted from the reads')."""
    code = (
        "import resource, sys; sys.path.insert(0, '.'); import recengine.catalog, numpy; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    )


def file_mb(db_path: Path) -> tuple[float, float]:
    """The catalog file and its WAL (which keeps the size of the largest transaction since it opened)."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.stat().st_size / 1e6, (wal.stat().st_size if wal.exists() else 0) / 1e6


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="0,100000,1000000", help="library sizes to measure at")
    ap.add_argument("--sample", type=int, default=2000, help="tracks timed through the API per checkpoint")
    ap.add_argument(
        "--matrix-at",
        type=int,
        default=100_000,
        help="run feature_blocks and index_build (every vector in memory) only up to this many tracks",
    )
    ap.add_argument(
        "--dir", help="where the catalog goes (default: a temp dir; a real disk, for honest fsyncs)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the catalog afterwards")
    ap.add_argument("--json", type=Path, help="write the measurements to this file")
    ap.add_argument("--_read", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._read:
        read_child(*args._read)
        return 0
    checkpoints = sorted(int(c.replace("_", "")) for c in args.checkpoints.split(","))
    dims = extractor_dims()
    versions = {name: v for name, (v, _) in dims.items()}
    base = Path(tempfile.mkdtemp(prefix="recengine-catalog-bench-", dir=args.dir))
    db_path = base / "catalog.db"
    rng = np.random.default_rng(0)
    rss0 = baseline_rss_mb()
    print(
        f"catalog {db_path}; extractors {', '.join(f'{n}:{d}' for n, (_, d) in dims.items())} "
        f"({sum(d for _, d in dims.values())} float32 per track); API sample {args.sample}; "
        f"read RSS above a bare child's {rss0:.0f} MB"
    )
    print(
        f"| tracks | add_track/s | save_features/s | file MB | bytes/track | "
        f"{' | '.join(r + ' s (MB)' for r in READS)} |"
    )
    print("|---|---|---|---|---|" + "---|" * len(READS))
    results = []
    try:
        cat = Catalog(db_path)
        root_id = cat.root_id("/srv/music")
        have = 0
        for point in checkpoints:
            t = time.perf_counter()
            fill(cat, root_id, have, point, dims, rng)
            fill_s = time.perf_counter() - t
            api = timed_api(cat, root_id, 10**9 + point, args.sample, dims, rng)
            have = point
            total = have + args.sample * (checkpoints.index(point) + 1)
            size, wal = file_mb(db_path)
            reads = {}
            for what in READS:
                if what in HEAVY and total > args.matrix_at:
                    continue
                r = timed_read(db_path, what, versions)
                r["rss_above_mb"] = r["peak_rss_mb"] - rss0
                reads[what] = r
            row = {
                "tracks": total,
                "fill_s": fill_s,
                **api,
                "file_mb": size,
                "wal_mb": wal,
                "bytes_per_track": size * 1e6 / total,
                "reads": reads,
            }
            results.append(row)
            cells = " | ".join(
                f"{reads[w]['s']:.2f} ({reads[w]['rss_above_mb']:.0f})" if w in reads else "-" for w in READS
            )
            print(
                f"| {total:,} | {api['add_track_per_s']:.0f} ({api['add_track_ms']:.2f} ms) | "
                f"{api['save_features_per_s']:.0f} ({api['save_features_ms']:.2f} ms) | {size:,.0f} (+{wal:.0f} WAL) | "
                f"{row['bytes_per_track']:,.0f} | {cells} |",
                flush=True,
            )
        cat.close()
        if args.json:
            args.json.write_text(json.dumps({"dims": dims, "sample": args.sample, "rows": results}, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {db_path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
