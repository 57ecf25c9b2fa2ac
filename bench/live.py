"""Live benchmark: the daemon on a 5,000-track library, new files copied in one at a time, then a burst.

Measures, for 4-minute MP3s copied in one by one, the time from the copy being closed to

  (a) the track appearing in ``similar`` results through the Python API (an engine in this process
      on the daemon's data dir), and
  (b) the file of a playlist recipe (``refresh: {on: [library]}``) being rewritten (mtime change);

then copies a burst of files at once and checks each is featurised exactly once (a drop-in extractor
logs every decode), sampling the daemon's and its workers' RSS from ``/proc`` throughout.

The generated library and the extra files are cached under ``--cache`` (default
``/tmp/recengine-live``) and reused by later runs; so is a snapshot of the data dir after the
initial scan (``--rescan`` to scan afresh). Usage::

    .venv/bin/python bench/live.py                 # 5,000 tracks of 20 s, 10 live adds, burst of 500
    .venv/bin/python bench/live.py --library DIR   # an existing library instead of the generated one
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recengine.testing import noise, pulses, tone, wav_bytes, write_counting_plugin  # noqa: E402

SR = 22050
ALBUM = 100  # tracks per generated folder (one ffmpeg process each)
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"

# --- generated audio -------------------------------------------------------------------------------


def sound(i: int, seconds: float, variant: int = 0) -> np.ndarray:
    """Track ``i``: one of several styles with parameters drawn from ``i`` (distinct content per i).
    ``variant`` perturbs it slightly (a near neighbour of the same track)."""
    rng = np.random.default_rng(i)
    style = i % 4
    shift = 1.0 + 0.003 * variant
    seed = i * 1000 + variant
    if style == 0:  # chord + a little noise
        base = 110 * 2 ** (rng.integers(0, 36) / 12) * shift
        x = sum(tone(base * r, seconds, SR, 0.3) for r in (1.0, 1.25, 1.5)) + noise(seconds, SR, 0.03, seed)
    elif style == 1:  # coloured noise
        x = noise(
            seconds, SR, 0.2 + 0.3 * rng.random(), seed, colour="pink" if rng.random() < 0.5 else "white"
        )
    elif style == 2:  # drums + bass tone
        x = pulses(70 + rng.integers(0, 110) * shift, seconds, SR, 0.7, seed) + tone(
            55 * 2 ** (rng.integers(0, 24) / 12), seconds, SR, 0.2
        )
    else:  # tremolo tone over pink noise
        f = 220 * 2 ** (rng.integers(0, 24) / 12) * shift
        t = np.arange(int(seconds * SR)) / SR
        x = tone(f, seconds, SR, 0.4) * (0.6 + 0.4 * np.sin(2 * np.pi * (2 + rng.random() * 6) * t)) + noise(
            seconds, SR, 0.1, seed, colour="pink"
        )
    return np.clip(x, -1, 1).astype(np.float32)


def encode_album(folder: str, first: int, count: int, seconds: float) -> str:
    """``count`` tracks from index ``first`` as MP3s in ``folder``: one ffmpeg process splits the
    concatenated audio into tracks (the segment muxer), far cheaper than one process per track."""
    out = Path(folder)
    if (out / ".done").exists():
        return folder
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    audio = np.concatenate([sound(first + k, seconds) for k in range(count)])
    argv = [
        *mp3_from_stdin("64k"),
        "-f",
        "segment",
        "-segment_time",
        str(seconds),
        "-reset_timestamps",
        "1",
        "-segment_start_number",
        str(first),
        str(out / "track%05d.mp3"),
    ]
    subprocess.run(argv, input=wav_bytes(audio, SR), check=True, capture_output=True, timeout=600)
    # the muxer may leave a sliver of a last segment: keep exactly ``count`` tracks
    for extra in sorted(out.glob("track*.mp3"))[count:]:
        extra.unlink()
    (out / ".done").write_text("ok\n")
    return folder


def mp3_from_stdin(bitrate: str) -> list[str]:
    """ffmpeg arguments reading WAV on stdin and encoding MP3 at ``bitrate`` (outputs follow)."""
    return [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "wav", "-i", "pipe:0",
            "-c:a", "libmp3lame", "-b:a", bitrate, "-compression_level", "9"]


def encode_one(path: str, i: int, seconds: float, variant: int) -> str:
    p = Path(path)
    if p.exists():
        return path
    tmp = p.with_name(p.stem + ".part.mp3")
    argv = [
        *mp3_from_stdin("128k"),
        str(tmp),
    ]
    subprocess.run(
        argv, input=wav_bytes(sound(i, seconds, variant), SR), check=True, capture_output=True, timeout=600
    )
    os.replace(tmp, p)
    return path


def build_corpus(
    cache: Path, tracks: int, seconds: float, reps: int, burst: int, jobs: int
) -> dict[str, Path]:
    lib, live, burst_dir = cache / "library", cache / "extra" / "live", cache / "extra" / "burst"
    live.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with cf.ProcessPoolExecutor(jobs) as pool:
        futs = [
            pool.submit(
                encode_album, str(lib / f"album{a:03d}"), a * ALBUM, min(ALBUM, tracks - a * ALBUM), seconds
            )
            for a in range((tracks + ALBUM - 1) // ALBUM)
        ]
        # the burst: different indices from the library's; the live files: 4-minute near
        # neighbours of library track SEED (so they enter its "similar" playlist)
        futs += [
            pool.submit(
                encode_album,
                str(burst_dir / f"b{a:02d}"),
                10_000_000 + a * ALBUM,
                min(ALBUM, burst - a * ALBUM),
                seconds,
            )
            for a in range((burst + ALBUM - 1) // ALBUM)
        ]
        futs += [
            pool.submit(encode_one, str(live / f"live{r:02d}.mp3"), SEED, 240.0, r + 1) for r in range(reps)
        ]
        for n, fut in enumerate(cf.as_completed(futs), 1):
            fut.result()
            if n % 10 == 0 or n == len(futs):
                print(
                    f"  corpus: {n}/{len(futs)} parts ({time.monotonic() - started:.0f} s)", file=sys.stderr
                )
    return {"library": lib, "live": live, "burst": burst_dir}


SEED = 8  # a chord track (style 0): its near neighbours are unmistakable


# --- the daemon -------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[-1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


class RssSampler(threading.Thread):
    """Peak RSS of the daemon and of its largest child (worker, forkserver, ffmpeg), every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_daemon, self.peak_child, self.peak_total = pid, 0, 0, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            d = rss_kb(self.pid)
            kids = [rss_kb(p) for p in descendants(self.pid)]
            self.peak_daemon = max(self.peak_daemon, d)
            self.peak_child = max([self.peak_child, *kids])
            self.peak_total = max(self.peak_total, d + sum(kids))


def wait_for(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pct(values: list[float], p: float) -> float:
    xs = sorted(values)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", type=Path, help="use this library instead of generating one")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/recengine-live"))
    ap.add_argument("--tracks", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each generated track")
    ap.add_argument("--reps", type=int, default=10, help="4-minute files copied in one at a time")
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--settle", type=float, default=1.0, help="daemon.settle_s")
    ap.add_argument("--workers", type=int, default=0, help="scan.workers (0: one per core)")
    ap.add_argument("--min-interval", type=float, default=0.0, help="the recipe's refresh.min_interval_s")
    ap.add_argument("--rescan", action="store_true", help="scan afresh instead of reusing the data snapshot")
    ap.add_argument("--gen-only", action="store_true", help="only build the corpus")
    args = ap.parse_args()

    jobs = os.cpu_count() or 2
    print(f"building/reusing the corpus in {args.cache} ...", file=sys.stderr)
    corpus = build_corpus(args.cache, args.tracks, args.seconds, args.reps, args.burst, jobs)
    if args.gen_only:
        return 0
    lib = args.library or corpus["library"]
    seed_track = next(iter(sorted(lib.rglob(f"track{SEED:05d}.mp3"))), None) or sorted(lib.rglob("*.mp3"))[0]
    added_dir = lib / "_bench_added"
    shutil.rmtree(added_dir, ignore_errors=True)

    work = args.cache / "run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "plugins").mkdir(parents=True)
    write_counting_plugin(work / "plugins")
    count_log = work / "count.log"
    count_log.touch()
    data = work / "data"
    snapshot = args.cache / f"data-snapshot-{lib.name}-{args.tracks}"
    config = {
        "library": {"folders": [str(lib)]},
        "data_dir": str(data),
        "plugin_dirs": [str(work / "plugins")],
        "daemon": {"settle_s": args.settle},
        "scan": {"workers": args.workers},
        "index": {"weights": {"counting": 0}},  # the counting extractor is bookkeeping, not similarity
        # a standing recipe on a library track, and one per live file seeded with it: it is written
        # as soon as its seed is analysed (until then the daemon logs that the seed is unknown)
        "playlists": [
            {
                "name": name,
                "kind": "similar",
                "seeds": [str(seed)],
                "size": 50,
                "refresh": {"on": ["library"], "min_interval_s": args.min_interval},
            }
            for name, seed in [
                ("Like the seed", seed_track),
                *((f"Like live{r:02d}", added_dir / f"live{r:02d}.mp3") for r in range(args.reps)),
            ]
        ],
    }
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = {**os.environ, "COUNT_LOG": str(count_log), "RECENGINE_LOAD_PLUGINS": ""}
    env.pop("RECENGINE_FAULTPOINT", None)
    fresh = args.rescan or not (snapshot / "catalog.db").exists()
    if not fresh:
        shutil.copytree(snapshot, data)

    def start() -> subprocess.Popen:
        err = open(work / "daemon.log", "ab")
        return subprocess.Popen(
            [sys.executable, "-m", "recengine", "--config", str(cfg), "daemon"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    def status() -> dict:
        try:
            return json.loads((data / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    from recengine.catalog import Catalog

    results: dict[str, object] = {}
    proc = start()
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        t0 = time.monotonic()
        wait_for(lambda: (data / "catalog.db").exists(), 60, "the catalog")
        catalog = Catalog(data / "catalog.db", migrate=False)

        def idle() -> bool:
            st = status()
            pending = catalog.query(
                "SELECT count(*) FROM tracks WHERE status='pending' AND missing_since IS NULL"
            )
            return (
                st.get("pid") == proc.pid
                and st.get("state") == "watching"
                and st.get("queue") == 0
                and pending[0][0] == 0
                and st["index"]["generation"] is not None
            )

        wait_for(idle, 6 * 3600, "the initial scan", interval=1.0)
        initial_s = time.monotonic() - t0
        n_ok = catalog.counts()["ok"]
        results["initial"] = {
            "tracks": n_ok,
            "seconds": round(initial_s, 1),
            "fresh_scan": fresh,
            "tracks_per_s": round(n_ok / initial_s, 1) if fresh else None,
        }
        print(
            f"daemon ready: {n_ok} tracks analysed, start-up took {initial_s:.1f} s"
            + (" (full initial scan)" if fresh else " (reused snapshot)"),
            file=sys.stderr,
        )
        if fresh:  # keep the scanned state for the next runs
            shutil.rmtree(snapshot, ignore_errors=True)
            Catalog(data / "catalog.db", migrate=False).backup(data / "snapshot.db")
            snapshot.mkdir(parents=True)
            shutil.move(data / "snapshot.db", snapshot / "catalog.db")
            shutil.copytree(data / "index", snapshot / "index")

        from recengine.engine import Engine

        engine = Engine.open(cfg, entrypoints=False)
        standing = engine.playlists.target_path(engine.playlists.get("Like the seed"), engine.writers["m3u8"])
        wait_for(standing.exists, 60, "the standing playlist file")
        engine.index  # noqa: B018 - load the daemon's generation once
        decodes_before = len(count_log.read_text().splitlines())

        def mtime(path: Path) -> int | None:
            try:
                return path.stat().st_mtime_ns
            except FileNotFoundError:
                return None

        searchable, rewritten, in_playlist = [], [], 0
        added_dir.mkdir()
        for r, src in enumerate(sorted(corpus["live"].glob("live*.mp3"))[: args.reps]):
            dest = added_dir / src.name
            recipe = engine.playlists.get(f"Like {dest.stem}")
            playlist = engine.playlists.target_path(recipe, engine.writers["m3u8"])
            before = mtime(playlist)
            shutil.copyfile(src, dest)  # returns once the copy is closed
            closed = time.monotonic()
            t_search = t_list = None
            while t_search is None or t_list is None:
                now = time.monotonic()
                if now - closed > 60:
                    raise SystemExit(
                        f"live add {r}: not done after 60 s (search {t_search}, playlist {t_list})"
                    )
                if t_list is None and mtime(playlist) != before:
                    t_list = now - closed
                    in_playlist += playlist.read_text().count("\n/") >= 10  # entries: similar tracks
                if t_search is None:
                    row = catalog.query(
                        "SELECT status FROM tracks WHERE relpath=?", (str(dest.relative_to(lib)),)
                    )
                    if row and row[0][0] == "ok":
                        # searchable: its vector is served (generation + fresh delta), a query with
                        # it returns the track itself first, and similar() on it answers
                        engine.index.refresh()
                        tid = engine.resolve(dest).track_id
                        vec = engine.index.vector(tid)
                        if (
                            vec is not None
                            and [t for t, _ in engine.index.query(vec, 1)] == [tid]
                            and len(engine.similar([tid], 10)) == 10
                        ):
                            t_search = time.monotonic() - closed
                time.sleep(0.02)
            searchable.append(t_search)
            rewritten.append(t_list)
            print(
                f"  live add {r}: searchable {t_search:.2f} s, playlist rewritten {t_list:.2f} s",
                file=sys.stderr,
            )
            wait_for(idle, 60, "the daemon to be idle")
        results["live"] = {
            "n": len(searchable),
            "settle_s": args.settle,
            "min_interval_s": args.min_interval,
            "searchable_p50": pct(searchable, 0.5),
            "searchable_p90": pct(searchable, 0.9),
            "playlist_p50": pct(rewritten, 0.5),
            "playlist_p90": pct(rewritten, 0.9),
            "playlists_with_10_plus_entries": in_playlist,
        }

        # the burst: cp -r of the burst folders into the library
        wait_for(idle, 60, "the daemon to be idle")
        before_ok = catalog.counts()["ok"]
        decodes_mid = len(count_log.read_text().splitlines())
        t0 = time.monotonic()
        shutil.copytree(corpus["burst"], added_dir / "burst", ignore=shutil.ignore_patterns(".done"))
        copied = time.monotonic() - t0
        n_burst = sum(1 for _ in (added_dir / "burst").rglob("*.mp3"))
        wait_for(lambda: catalog.counts()["ok"] >= before_ok + n_burst, 3600, "the burst", interval=0.2)
        burst_s = time.monotonic() - t0
        wait_for(idle, 120, "the daemon to be idle")
        lines = count_log.read_text().splitlines()[decodes_mid:]
        sums = [ln.split()[1] for ln in lines]
        results["burst"] = {
            "files": n_burst,
            "copy_s": round(copied, 1),
            "all_featurised_s": round(burst_s, 1),
            "decodes": len(sums),
            "distinct": len(set(sums)),
            "each_once": len(sums) == len(set(sums)) == n_burst,
            "tracks_per_s": round(n_burst / burst_s, 1),
            "live_decodes": decodes_mid - decodes_before,
        }
        engine.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        t_stop = time.monotonic()
        rc = proc.wait(30)
        sampler.halt.set()
        sampler.join()
        results["stop"] = {"exit": rc, "seconds": round(time.monotonic() - t_stop, 2)}
        results["rss_mb"] = {
            "daemon_peak": round(sampler.peak_daemon / 1024, 1),
            "largest_child_peak": round(sampler.peak_child / 1024, 1),
            "daemon_plus_children_peak": round(sampler.peak_total / 1024, 1),
        }
        shutil.rmtree(added_dir, ignore_errors=True)
    print(json.dumps(results, indent=2))
    live = results["live"]
    print(
        f"\nclosed -> searchable: p50 {live['searchable_p50']:.2f} s, p90 {live['searchable_p90']:.2f} s "
        f"(target p50 < 3 s); settle_s {args.settle}"
    )
    print(
        f"closed -> playlist rewritten: p50 {live['playlist_p50']:.2f} s, p90 {live['playlist_p90']:.2f} s "
        f"(target p50 < 5 s); min_interval_s {args.min_interval}"
    )
    b = results["burst"]
    print(f"burst of {b['files']}: all featurised in {b['all_featurised_s']} s, each once: {b['each_once']}")
    print(
        f"RSS peak: daemon {results['rss_mb']['daemon_peak']} MB (target < 300), "
        f"largest child {results['rss_mb']['largest_child_peak']} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
