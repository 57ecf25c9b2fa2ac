"""HTTP API latency, the map's cost, and the server's resident memory, over loopback.

    .venv/bin/python bench/api.py [--tracks 10000] [--map-tracks 100000] [--requests 1000] [--frames]

Makes a catalog of synthetic tracks (clustered random feature rows of the built-in extractors'
real dimensions, as bench/similar_latency.py does; no audio is needed to time queries) and builds
its index, then starts a server process on a free loopback port that opens the engine the way the
daemon does (catalog + index) and reports its RSS before and after the HTTP server starts. The
client times ``GET /api/v1/similar?track=ID&n=10`` over one keep-alive connection (after a warm
up) and ``GET /api/v1/map`` cold (first call after start) and cached. The server's RSS is read
from /proc after the load: "extra" is what the HTTP server added beside the engine. With
``--frames`` the page is opened in headless Chromium on the --map-tracks library and the map's
frame times are measured while it is zoomed, panned and hovered (bench/map_frames.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from similar_latency import fake_catalog  # noqa: E402

from recengine.engine import Engine  # noqa: E402

TOKEN = "bench-token"


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident memory (MB) of a process: ``VmRSS`` in all, ``RssAnon`` its private memory,
    ``RssFile`` the mapped files' pages (the index files: page cache the kernel can drop)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_library(work: Path, n: int) -> Path:
    """A config whose catalog holds ``n`` synthetic tracks, with the index built."""
    library, data = work / "library", work / "data"
    library.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(f"library: {{folders: ['{library}']}}\ndata_dir: '{data}'\nplugin_dirs: []\n"
                      f"http: {{port: 0, token: {TOKEN}}}\n")
    with Engine.open(config, entrypoints=False) as engine:
        if not engine.catalog.counts()["ok"]:
            t = time.perf_counter()
            fake_catalog(engine, n)
            print(f"catalog of {n} synthetic tracks in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            t = time.perf_counter()
            engine.index.build()
            print(f"index built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return config


def serve(config: Path) -> int:
    """The server process: open the engine as the daemon does, report RSS, serve until stdin closes."""
    from recengine.web import WebSettings, start_server

    with Engine.open(config, entrypoints=False) as engine:
        engine.catalog.counts()
        engine.index.vectors([1])  # the index is mapped, as in a running daemon
        before, before_anon = rss_mb(), rss_mb(field="RssAnon")
        stop = threading.Event()
        handle = start_server(engine, WebSettings.from_config(engine.config), stop)
        started, scaling, tracks = time.perf_counter(), engine.similarity.local_scaling, engine.catalog.counts()["ok"]
        while scaling is not None and scaling.known < tracks and time.perf_counter() - started < 300:
            time.sleep(0.1)  # a server that has been up a while: its local scaling is worked out
        warm_s = time.perf_counter() - started
        print(json.dumps({"port": handle.port, "rss_engine_mb": before, "rss_started_mb": rss_mb(),
                          "anon_engine_mb": before_anon,
                          "warm_s": warm_s}), flush=True)
        sys.stdin.read()
        handle.stop()
    return 0


class Server:
    def __init__(self, config: Path):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(config)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.conn = http.client.HTTPConnection("127.0.0.1", self.info["port"], timeout=60)

    def get(self, path: str) -> tuple[float, bytes]:
        t = time.perf_counter()
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - t) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
        return elapsed, body

    def rss(self, field: str = "VmRSS") -> float:
        return rss_mb(self.proc.pid, field)

    def close(self) -> None:
        self.conn.close()
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_similar(config: Path, n_tracks: int, requests: int) -> dict:
    server = Server(config)
    try:
        rng = np.random.default_rng(1)
        ids = rng.integers(1, n_tracks + 1, size=requests + 100)
        for tid in ids[:100]:
            server.get(f"/api/v1/similar?track={tid}&n=10")
        times = [server.get(f"/api/v1/similar?track={tid}&n=10")[0] for tid in ids[100:]]
        health = [server.get("/api/v1/health")[0] for _ in range(200)]
        return {"tracks": n_tracks, "p50": statistics.median(times), "p99": pct(times, 99), "max": max(times),
                "health_p50": statistics.median(health), "rss_engine": server.info["rss_engine_mb"],
                "warm_s": server.info["warm_s"],
                "rss_after": server.rss(), "anon_engine": server.info["anon_engine_mb"],
                "anon_after": server.rss("RssAnon")}
    finally:
        server.close()


def bench_map(config: Path, n_tracks: int) -> dict:
    server = Server(config)
    try:
        cold, body = server.get("/api/v1/map")
        cached = [server.get("/api/v1/map")[0] for _ in range(10)]
        count = json.loads(body)["count"]
        return {"tracks": count, "cold_ms": cold, "cached_p50_ms": statistics.median(cached),
                "cached_max_ms": max(cached), "bytes": len(body), "rss_engine": server.info["rss_engine_mb"],
                "rss_after": server.rss(), "anon_engine": server.info["anon_engine_mb"],
                "anon_after": server.rss("RssAnon")}
    finally:
        server.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=10000)
    ap.add_argument("--map-tracks", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--frames", action="store_true", help="also time the page's map in headless Chromium")
    ap.add_argument("--work", type=Path, help="keep the synthetic libraries here (reused when present)")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve)
    work = args.work or Path(tempfile.mkdtemp(prefix="recengine-api-"))
    small = make_library(work / f"lib{args.tracks}", args.tracks)
    s = bench_similar(small, args.tracks, args.requests)
    print(f"\nGET /api/v1/similar, {s['tracks']} tracks, {args.requests} requests over one keep-alive connection:")
    print(f"  p50 {s['p50']:.2f} ms  p99 {s['p99']:.2f} ms  max {s['max']:.2f} ms  (GET /health p50 "
          f"{s['health_p50']:.2f} ms; local scaling worked out {s['warm_s']:.1f} s after start)")
    print(f"  server RSS: engine {s['rss_engine']:.0f} MB, after the load {s['rss_after']:.0f} MB "
          f"(+{s['rss_after'] - s['rss_engine']:.0f} MB for the HTTP server, of which "
          f"+{s['anon_after'] - s['anon_engine']:.0f} MB private, the rest mapped index pages)")
    if args.map_tracks:
        big = make_library(work / f"lib{args.map_tracks}", args.map_tracks)
        m = bench_map(big, args.map_tracks)
        print(f"\nGET /api/v1/map, {m['tracks']} tracks ({m['bytes'] / 1e6:.1f} MB of JSON):")
        print(f"  cold {m['cold_ms']:.0f} ms  cached p50 {m['cached_p50_ms']:.1f} ms  max {m['cached_max_ms']:.1f} ms")
        print(f"  server RSS: engine {m['rss_engine']:.0f} MB, after {m['rss_after']:.0f} MB "
              f"(+{m['rss_after'] - m['rss_engine']:.0f} MB, of which +{m['anon_after'] - m['anon_engine']:.0f} MB "
              "private, the rest mapped index pages)")
        if args.frames:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            subprocess.run([sys.executable, str(Path(__file__).parent / "map_frames.py"), str(big)], check=True,
                           env=env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
