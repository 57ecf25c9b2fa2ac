"""`recengine evaluate`: its cost on a large library, and whether its replay agrees with bench/personal.py.

    .venv/bin/python bench/evaluate.py speed [--tracks 10000] [--events 50000]
    .venv/bin/python bench/evaluate.py agree /work/simbench/whole [--listeners 60] [--seed 0]

``speed`` makes a catalog of N synthetic tracks (feature rows of the built-in extractors' real
dimensions, as bench/similar_latency.py makes them: 500 artists, 1000 albums) and a history of E
events for one listener (plays of ~2,000 tracks over 90 days, some likes, skips and dislikes),
builds the index, writes two recipes, then runs ``recengine evaluate --html`` as a subprocess and
reports its wall time and peak RSS (targets: < 60 s on 2 cores, < 300 MB).

``agree`` works on a copy of a scanned data dir of the dev corpus (one library folder per label,
as bench/similarity.py's ``whole`` scope makes it; the original is never written). Listeners are
made by bench/personal.py's own ``make_listener``; the methods ``taste``, ``mix``, ``popular`` and
``random`` are measured twice: as bench/personal.py measures them (its ``measure``: 10
recommendations, the held-back tracks absent from the catalog), and by the replay (the held-back
tracks recorded as plays and likes after the cut-off, the replay's discoveries). Both orders are
printed; the check is that they are the same.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from personal import NOW, _Rec, make_listener, measure  # noqa: E402
from similar_latency import fake_catalog  # noqa: E402

from recengine import Engine  # noqa: E402
from recengine.catalog import Catalog  # noqa: E402
from recengine.default_plugins.diversity import DEFAULTS as DIVERSITY_DEFAULTS  # noqa: E402
from recengine.evaluate import split_history  # noqa: E402
from recengine.evaluate.replay import Replay  # noqa: E402
from recengine.models import HistoryEvent  # noqa: E402

DAY = 86400.0
RECIPES = """playlists:
  - {name: For You, kind: user, size: 50}
  - {name: Taste, kind: user, size: 30, strategies: {taste: 1.0}}
"""


def synthetic_history(ids: list[int], n: int, seed: int = 0) -> list[HistoryEvent]:
    """Plays and likes mostly of ~2,000 favourites, a tenth anywhere (new finds), over 90 days."""
    rng = random.Random(seed)
    favourites = rng.sample(ids, min(2000, len(ids)))
    now = time.time()
    events = []
    for _ in range(n):
        r = rng.random()
        kind = "play" if r < 0.85 else "like" if r < 0.92 else "skip" if r < 0.99 else "dislike"
        pool = favourites if kind in ("play", "like") and rng.random() < 0.9 else ids
        events.append(HistoryEvent("default", rng.choice(pool), kind, at=now - rng.uniform(0, 90 * DAY),
                                   listened_s=rng.uniform(10, 240) if kind in ("play", "skip") else None))
    return events


def speed(args) -> int:
    work = args.keep or Path(tempfile.mkdtemp(prefix="recengine-evalbench-"))
    try:
        config = work / "config.yaml"
        if not config.exists():
            (work / "library").mkdir(parents=True)
            config.write_text(f"library: {{folders: ['{work / 'library'}']}}\ndata_dir: '{work / 'data'}'\n"
                              "plugin_dirs: []\ndisabled_plugins: [musicnn_extractor]\n" + RECIPES)
            # in a process of its own: a child's peak RSS counts the pages it shares with its parent at
            # fork time, so the process that later starts `recengine evaluate` must stay small
            maker = multiprocessing.get_context("spawn").Process(target=make_library,
                                                                 args=(config, args.tracks, args.events))
            maker.start()
            maker.join()
            if maker.exitcode:
                return 1
        out, err = work / "stdout.txt", work / "stderr.txt"
        t = time.perf_counter()
        with out.open("w") as stdout, err.open("w") as stderr:
            child = subprocess.Popen([sys.executable, "-m", "recengine", "-q", "--config", str(config), "evaluate",
                                      "--html", str(work / "report.html")], stdout=stdout, stderr=stderr)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS and CPU time
        wall = time.perf_counter() - t
        rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        print(out.read_text())
        if status:
            print(err.read_text(), file=sys.stderr)
            return 1
        html = (work / "report.html").stat().st_size / 1024
        ok = wall < 60 and rss < 300
        print(f"recengine evaluate: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.0f} MB, HTML {html:.0f} KiB "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores) "
              f"[{'PASS' if ok else 'FAIL'}: < 60 s, < 300 MB]")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def make_library(config: Path, tracks: int, events: int) -> None:
    with Engine.open(config, entrypoints=False) as engine:
        t = time.perf_counter()
        fake_catalog(engine, tracks)
        ids = sorted(engine.catalog.present_ids())
        engine.catalog.add_events(synthetic_history(ids, events))
        engine.index.build()
        print(f"{len(ids)} tracks, {events} events, index built in {time.perf_counter() - t:.1f} s", flush=True)


def open_copy(data: Path, work: Path, name: str) -> Engine:
    shutil.copytree(data, work / name)
    with Catalog(work / name / "catalog.db") as catalog:
        roots = [path for _, path, _ in catalog.roots()]
    raw = {"library": {"folders": roots}, "data_dir": str(work / name), "plugin_dirs": [],
           "disabled_plugins": ["musicnn_extractor"]}
    engine = Engine.open(None, raw=raw, entrypoints=False)
    if not engine.index.open():  # the data dir's newest index may be for other weights
        engine.index.build()
    return engine


def agree(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="recengine-evalagree-"))
    try:
        with open_copy(args.data_dir, work, "personal") as plain, open_copy(args.data_dir, work, "replay") as later:
            return _agree(plain, later, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _agree(plain: Engine, later: Engine, args) -> int:
    tracks = {t.track_id: t for t in plain.catalog.tracks(status="ok")}
    labels = {t: Path(tr.root).name for t, tr in tracks.items()}  # one library folder per label
    by_label: dict[str, list[int]] = {}
    for t, lab in sorted(labels.items()):
        by_label.setdefault(lab, []).append(t)
    people = [make_listener(f"s{args.seed}-l{i}", random.Random(f"{args.seed}:{i}"), by_label, 6)
              for i in range(args.listeners)]
    history = [e for p in people for e in p.events]
    plain.record_events(history)
    rng = random.Random(args.seed)
    after = [HistoryEvent(p.user, t, kind, at=NOW + rng.uniform(DAY / 24, 6 * DAY), listened_s=200.0)
             for p in people for t in sorted(p.held) for kind in ("play", "like")]
    later.record_events(history + after)
    cap = int(DIVERSITY_DEFAULTS["max_per_album"])
    plays = {p.user: {} for p in people}
    for e in history:
        if e.kind == "play":
            plays[e.user][e.track_id] = plays[e.user].get(e.track_id, 0) + 1
    total = {t: sum(c.get(t, 0) for c in plays.values()) for t in tracks}
    mixes = {"taste": ((), {"taste": 1.0}, {}), "mix": ((), {"taste": 1.0, "diversity": 0.5, "discovery": 0.1}, {})}
    replay = Replay(later.catalog, later.index, later.scorers, later.config)
    personal: dict[str, list[dict]] = {}
    replayed: dict[str, list[tuple[float, float]]] = {}
    t0 = time.monotonic()
    for i, who in enumerate(people):
        others = {t: total[t] - plays[who.user].get(t, 0) for t in tracks}
        unknown = sorted(set(tracks) - who.history)
        lists = {
            "taste": plain.recommend(who.user, 10, strategies={"taste": 1.0}, now=NOW),
            "mix": plain.recommend(who.user, 10, now=NOW),
            "popularity": [_Rec(tracks[t]) for t in sorted(unknown, key=lambda t: (-others[t], t))][:10],
            "random": [_Rec(tracks[t]) for t in random.Random(f"{args.seed}:{i}:baselines").sample(unknown, 10)],
        }
        for name, recs in lists.items():
            personal.setdefault(name, []).append(measure(recs, who, labels, 10, cap))
        for m in replay.run(split_history(later.catalog, who.user, cutoff=NOW), mixes):
            replayed.setdefault(m.name, []).append((m.discoveries.hit_rate, m.discoveries.ndcg))
    print(f"{args.listeners} listeners, {time.monotonic() - t0:.1f} s")
    print(f"{'method':12} {'personal HR@10':>15} {'NDCG@10':>8} {'replay HR@10':>13} {'NDCG@10':>8}")
    p_hr = {n: float(np.mean([r['hr'] for r in rs])) for n, rs in personal.items()}
    r_hr = {n: float(np.mean([h for h, _ in rs])) for n, rs in replayed.items()}
    for name in personal:
        print(f"{name:12} {p_hr[name]:15.3f} {np.mean([r['ndcg'] for r in personal[name]]):8.3f} "
              f"{r_hr[name]:13.3f} {np.mean([n for _, n in replayed[name]]):8.3f}")
    p_order = sorted(p_hr, key=lambda n: -p_hr[n])
    r_order = sorted(r_hr, key=lambda n: -r_hr[n])
    same = p_order == r_order
    print(f"bench/personal.py order: {' > '.join(p_order)}\nreplay order:            {' > '.join(r_order)}\n"
          f"[{'PASS' if same else 'FAIL'}] the same order")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--tracks", type=int, default=10000)
    p.add_argument("--events", type=int, default=50000)
    p.add_argument("--keep", type=Path, help="make the library in this folder and keep it (reused when there)")
    p = sub.add_parser("agree")
    p.add_argument("data_dir", type=Path, help="a scanned data dir of the dev corpus (copied, never written)")
    p.add_argument("--listeners", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    return speed(args) if args.mode == "speed" else agree(args)


if __name__ == "__main__":
    sys.exit(main())
