"""Featurising throughput and memory of the real engine, next to the ffmpeg full-decode floor.

    .venv/bin/python bench/featurize.py /work/corpus --workers 2 [--repeat 3]
    .venv/bin/python bench/featurize.py /work/corpus --workers 2 --windows 1 --window-s 30
    .venv/bin/python bench/featurize.py /work/corpus --workers 2 --long        # + a 3-hour file
    .venv/bin/python bench/featurize.py /work/corpus --workers 2 --executor dask --repeat 3

Each repetition:

1. **engine**: a fresh data dir, ``Engine.open(None, raw={library: {folders: [DIR]}, data_dir, plugin_dirs:
   [], scan: {workers: N}})`` and ``engine.scan(workers=N)``, run in a child process of this script.
   Reported: tracks/s over the scan's own wall time (reconcile + pool start-up + featurising + commits),
   the child's whole wall time (interpreter, imports, ``Engine.open`` too), and audio seconds per CPU
   second, where CPU is everything the scan ran: the scanning process, the forkserver, the workers,
   their ffmpeg children and multiprocessing's resource tracker.
2. **floor**: the same files, ``ffmpeg -nostdin -v error -i F -ac 1 -ar 22050 -f s16le -y /dev/null``
   with N processes at a time, timed wall-clock.

How the CPU is counted. ``getrusage(RUSAGE_CHILDREN)`` only holds children that were *waited for*, each
with the descendants *they* waited for. The workers are children of the forkserver (which reaps them,
and they reap their ffmpeg), but nobody reaps the forkserver: it outlives the scanning process. This
script therefore makes itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``): when the scanning
child exits, the forkserver and anything else left over are re-parented to this script, which waits
for every one of them. The ``RUSAGE_CHILDREN`` difference across the phase is then the exact CPU of
the whole tree. The sampler thread that watches memory runs in this script, so its own CPU is not
counted. A per-role split (parent / forkserver / workers / ffmpeg) comes from the last
``/proc/<pid>/stat`` sample of each process (utime, stime and, for workers, the reaped ffmpeg children
in cutime/cstime): approximate, since up to 50 ms before a process exits are not seen.

Memory: a sampler thread walks the process tree every 50 ms (``/proc/<pid>/task/*/children``) and
reads ``VmHWM`` (the kernel's peak RSS of the process, so short spikes between samples count too)
of each process; reported is the largest per role. RSS includes pages shared with the forkserver
(numpy and recengine preloaded).

``--executor dask``: each repetition also scans with ``scan.executor: dask`` (the two alternate in
order), on a ``LocalCluster`` of N one-thread worker processes (with the quieter diagnostics that
README recommends, ``DASK_QUIET``) started in the scanning child before ``Engine.open`` (its start-up is reported, not counted in the scan's wall time: a cluster outlives
scans), or on the scheduler at ``--scheduler``; the table adds the Dask scan and Dask / local.
``--kill-worker-at K`` SIGKILLs one LocalCluster worker when the K-th result is committed (its nanny
starts another) and checks that every file was featurised once.

The files are read once before the first repetition so both sides start from a warm page cache.
``--long`` adds a 3-hour stereo Ogg Vorbis file (lavfi sine + pink noise, generated once per run, or
kept at ``--long-file``) scanned on its own folder, for the peak RSS of the worker and the parent.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05
AUDIO_EXT = {".ogg", ".opus", ".oga", ".mp3", ".flac", ".wav", ".m4a", ".aac", ".wma", ".aiff", ".aif"}
TARGET_TRACKS_S = 10.0
TARGET_FLOOR_RATIO = 1.5
TARGET_WORKER_MB = 300
TARGET_PARENT_MB = 200
TARGET_DASK_RATIO = 0.9


# --- the scanning child ----------------------------------------------------------------------------


def scan_child(spec_path: str) -> None:
    """Runs in the child process: open an engine on a fresh data dir, scan, write a JSON summary."""
    started = time.monotonic()
    spec = json.loads(Path(spec_path).read_text())
    from recengine import Engine
    from recengine.analysis.decode import plan_windows
    from recengine.library import scan as scanner

    commit_s: list[float] = []
    worker_cpu_s: list[float] = []
    first_result: list[float] = []
    scan_started: list[float] = []

    original_commit = scanner.Scanner.commit
    original_featurise = scanner.Scanner.featurise

    def timed_commit(self, result, report):  # parent-side cost of one result (SQLite + hooks)
        if not first_result:
            first_result.append(time.monotonic())
        t = time.perf_counter()
        original_commit(self, result, report)
        commit_s.append(time.perf_counter() - t)
        worker_cpu_s.append(result.seconds)

    def timed_featurise(self, *args, **kwargs):
        scan_started.append(time.monotonic())
        return original_featurise(self, *args, **kwargs)

    scanner.Scanner.commit = timed_commit
    scanner.Scanner.featurise = timed_featurise

    raw = {
        "library": {"folders": [spec["dir"]]},
        "data_dir": spec["data_dir"],
        "plugin_dirs": [],
        "scan": {"workers": spec["workers"]},
    }
    cluster, cluster_start_s = None, 0.0
    if spec.get("executor") == "dask":
        scheduler = spec.get("scheduler")
        if not scheduler:
            cluster, cluster_start_s = start_local_cluster(spec["workers"])
            scheduler = cluster.scheduler_address
            if spec.get("kill_worker_at"):
                kill_one_worker_at(scanner.Scanner, cluster, spec["kill_worker_at"])
        raw["scan"].update(executor="dask", dask={"scheduler": scheduler})
    if spec.get("windows") or spec.get("window_s"):
        raw["analysis"] = {}
        if spec.get("windows"):
            raw["analysis"]["windows"] = spec["windows"]
        if spec.get("window_s"):
            raw["analysis"]["window_s"] = spec["window_s"]
    engine = Engine.open(None, raw=raw)
    opened = time.monotonic()
    report = engine.scan(workers=spec["workers"])
    scanned = time.monotonic()
    if cluster is not None:
        cluster.close(timeout=30)
    windows = engine.config["analysis.windows"]
    window_s = engine.config["analysis.window_s"]
    cat = engine.catalog
    rows = cat.query(
        "SELECT t.track_id, r.path, t.relpath, t.duration, t.status FROM tracks t JOIN roots r USING(root_id)"
    )
    paths = [str(Path(root) / rel) for _, root, rel, _, _ in rows]
    ok = [(d or 0.0) for _, _, _, d, status in rows if status == "ok"]
    analysed = sum(length for d in ok for _, length in plan_windows(d, windows, window_s))
    failures = [(f.reason, f.path, f.message) for f in cat.failures()]
    ((feature_rows, featurised_tracks),) = cat.query(
        "SELECT count(*), count(DISTINCT track_id) FROM features"
    )
    n_extractors = len(engine.extractor_versions())
    engine.close()
    self_ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "featurised": report.featurised,
        "failed": dict(report.failed),
        "failures": failures,
        "scan_s": report.seconds,
        "open_s": opened - started - cluster_start_s,
        "cluster_start_s": cluster_start_s,
        "executor": spec.get("executor") or "local",
        "feature_rows": feature_rows,
        "featurised_tracks": featurised_tracks,
        "n_extractors": n_extractors,
        "killed_worker": KILLED,
        "child_s": scanned - started,
        "pool_to_first_result_s": (first_result[0] - scan_started[0])
        if first_result and scan_started
        else None,
        "commit_s": commit_s,
        "worker_cpu_s": worker_cpu_s,
        "paths": paths,
        "audio_s": sum(ok),
        "analysed_s": analysed,
        "parent_cpu_s": self_ru.ru_utime + self_ru.ru_stime,
        "parent_maxrss_mb": self_ru.ru_maxrss / 1024,
        "windows": windows,
        "window_s": window_s,
    }
    Path(spec["out"]).write_text(json.dumps(out))


KILLED: list[int] = []


#: The Dask settings README recommends for featurising workers: less diagnostics polling (measured
#: by bench/executor_overhead.py --quiet; here the LocalCluster's scheduler and nannies run in the
#: scanning process, which took 17-18 s of CPU per dev-corpus scan with Dask's defaults, 5 s with these).
DASK_QUIET = {
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.worker.profile.enabled": False,
}


def start_local_cluster(workers: int):
    """A LocalCluster of ``workers`` one-thread worker processes on loopback; (cluster, seconds)."""
    import logging

    import dask
    from distributed import LocalCluster

    t = time.monotonic()
    dask.config.set(DASK_QUIET)  # in this process (scheduler, nannies) and in the spawned workers
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    return cluster, time.monotonic() - t


def kill_one_worker_at(scanner_cls, cluster, at: int) -> None:
    """SIGKILL one of ``cluster``'s worker processes when the ``at``-th result is committed."""
    import signal

    commit = scanner_cls.commit
    seen = [0]

    def killing_commit(self, result, report):
        commit(self, result, report)
        seen[0] += 1
        if seen[0] == at:
            pid = next(iter(cluster.workers.values())).process.pid
            os.kill(pid, signal.SIGKILL)
            KILLED.append(pid)

    scanner_cls.commit = killing_commit


# --- process-tree sampler ---------------------------------------------------------------------------


@dataclass
class Proc:
    pid: int
    role: str
    hwm_kb_by_role: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    child_cpu_s: float = 0.0


@dataclass
class Sampler:
    """Polls the descendants of this process every ``SAMPLE_S`` seconds, by role."""

    parent_pid: int
    procs: dict[tuple[int, int], Proc] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    @staticmethod
    def _children(pid: int) -> list[int]:
        out: list[int] = []
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out += [int(x) for x in fh.read().split()]
        return out

    @staticmethod
    def _role(cmd: bytes, parent_role: str) -> str:
        """The role of a process from its command line and its parent's role, at this moment: a
        fork not yet exec'd has its parent's command line (and memory), so it is looked at again
        once it has exec'd (its ``VmHWM`` restarts then)."""
        argv0 = os.path.basename(cmd.split(b"\0", 1)[0])
        if parent_role == "worker":
            return "ffmpeg" if b"ffmpeg" in argv0 else "worker-fork"
        if parent_role == "forkserver":
            return "worker"  # forked from the forkserver: same command line as the forkserver
        if b"multiprocessing.forkserver" in cmd:
            return "forkserver"  # a child of the parent, or re-parented to us once the parent exited
        if b"resource_tracker" in cmd:
            return "resource_tracker"
        if b"spawn_main" in cmd:
            return "worker"  # a LocalCluster's worker process (spawned by its nanny in the parent)
        if b"--_child" in cmd:
            return "parent"  # the scanning process (or a fork of it not yet exec'd)
        return "ffmpeg" if b"ffmpeg" in argv0 else "other"

    def _sample(self) -> None:
        stack = [(pid, "bench") for pid in self._children(self.parent_pid)]
        while stack:
            pid, parent_role = stack.pop()
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    stat = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/status") as fh:
                    status = fh.read()
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            key = (pid, int(stat[19]))  # (pid, start time): pids are not reused within a key
            proc = self.procs.get(key)
            if not cmd and proc is not None:
                role = proc.role  # an exiting process has an empty command line: keep what it was
            else:
                role = self._role(cmd, parent_role)
            if proc is None:
                proc = self.procs[key] = Proc(pid, role)
            proc.role = role  # the latest: CPU goes to what the process became after exec
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    kb = int(line.split()[1])
                    proc.hwm_kb_by_role[role] = max(proc.hwm_kb_by_role.get(role, 0), kb)
                    break
            proc.cpu_s = (int(stat[11]) + int(stat[12])) / CLK_TCK
            proc.child_cpu_s = (int(stat[13]) + int(stat[14])) / CLK_TCK
            stack += [(c, role) for c in self._children(pid)]

    def by_role(self) -> dict[str, dict]:
        out: dict[str, dict] = {}

        def entry(role: str) -> dict:
            return out.setdefault(role, {"n": 0, "peak_mb": 0.0, "cpu_s": 0.0, "reaped_children_cpu_s": 0.0})

        for p in self.procs.values():
            for role, kb in p.hwm_kb_by_role.items():
                entry(role)["peak_mb"] = max(entry(role)["peak_mb"], kb / 1024)
            r = entry(p.role)
            r["n"] += 1
            r["cpu_s"] += p.cpu_s
            r["reaped_children_cpu_s"] += p.child_cpu_s
        return out


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def reap_all(timeout: float = 60.0) -> None:
    """Wait for every remaining descendant re-parented to us (forkserver, resource tracker)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                print(
                    "warning: descendants still running after the scan; CPU may be undercounted",
                    file=sys.stderr,
                )
                return
            time.sleep(0.02)


# --- phases -------------------------------------------------------------------------------------------


def run_engine(
    directory: Path,
    data_dir: Path,
    workers: int,
    windows: int | None,
    window_s: float | None,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    kill_worker_at: int | None = None,
) -> dict:
    data_dir.mkdir(parents=True, exist_ok=True)
    spec_path = data_dir / "bench-spec.json"
    out_path = data_dir / "bench-out.json"
    spec = {
        "dir": str(directory),
        "data_dir": str(data_dir),
        "workers": workers,
        "windows": windows,
        "window_s": window_s,
        "out": str(out_path),
        "executor": executor,
        "scheduler": scheduler,
        "kill_worker_at": kill_worker_at,
    }
    spec_path.write_text(json.dumps(spec))
    reap_all(0)
    cpu0 = children_cpu()
    sampler = Sampler(os.getpid()).start()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--_child", str(spec_path)], cwd=ROOT
    )
    proc.wait()
    wall = time.monotonic() - t0
    reap_all()
    sampler.stop()
    cpu = children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"the scanning child failed with exit code {proc.returncode}")
    out = json.loads(out_path.read_text())
    out.update(cpu_s=cpu, process_wall_s=wall, roles=sampler.by_role())
    n = out["featurised"] + sum(out["failed"].values())
    out["tracks"] = n
    out["tracks_per_s"] = n / out["scan_s"]
    out["audio_per_cpu"] = out["audio_s"] / cpu
    out["analysed_per_cpu"] = out["analysed_s"] / cpu
    return out


def floor_cmd(path: str) -> list[str]:
    return [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        path,
        "-ac",
        "1",
        "-ar",
        "22050",
        "-f",
        "s16le",
        "-y",
        "/dev/null",
    ]


def run_floor(paths: list[str], workers: int) -> dict:
    reap_all(0)
    cpu0 = children_cpu()
    queue = list(reversed(paths))
    running: dict[int, subprocess.Popen] = {}
    failed = 0
    t0 = time.monotonic()
    while queue or running:
        while queue and len(running) < workers:
            p = subprocess.Popen(floor_cmd(queue.pop()), stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            running[p.pid] = p
        pid, status = os.wait()
        if pid in running:
            running.pop(pid).returncode = os.waitstatus_to_exitcode(status)
            failed += status != 0
    wall = time.monotonic() - t0
    cpu = children_cpu() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "failed": failed, "tracks_per_s": len(paths) / wall}


def warm_cache(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT)
    for p in files:
        with open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass
    return files


def make_long_file(path: Path, seconds: int = 3 * 3600) -> float:
    """A stereo 44.1 kHz Ogg Vorbis file of a sine plus pink noise; returns the seconds it took."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".part")  # not an audio extension: never scanned
    t0 = time.monotonic()
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=44100:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"anoisesrc=color=pink:sample_rate=44100:amplitude=0.2:duration={seconds}",
            "-filter_complex",
            "[0:a][1:a]amix=inputs=2,aformat=channel_layouts=stereo[a]",
            "-map",
            "[a]",
            "-c:a",
            "libvorbis",
            "-q:a",
            "2",
            "-f",
            "ogg",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(path)
    return time.monotonic() - t0


# --- reporting -------------------------------------------------------------------------------------------


def best_median(values: list[float], higher_is_better: bool = True) -> str:
    best = max(values) if higher_is_better else min(values)
    return f"{best:.2f} / {statistics.median(values):.2f}"


def print_run(i: int, e: dict, f: dict) -> None:
    roles = e["roles"]
    commit = e["commit_s"]
    label = "engine" if e.get("executor", "local") == "local" else "dask  "
    print(
        f"run {i}: {label} {e['tracks']} files in {e['scan_s']:.1f} s scan ({e['child_s']:.1f} s with start-up) "
        f"= {e['tracks_per_s']:.2f} tracks/s; CPU {e['cpu_s']:.1f} s; "
        f"{e['audio_per_cpu']:.0f} audio s / CPU s ({e['analysed_per_cpu']:.0f} analysed s / CPU s)"
    )
    if f["wall_s"] == f["wall_s"]:  # not NaN: the floor was run
        print(
            f"       floor {len(e['paths'])} files in {f['wall_s']:.1f} s = {f['tracks_per_s']:.2f} tracks/s, "
            f"CPU {f['cpu_s']:.1f} s, {f['failed']} refused by ffmpeg; engine/floor = "
            f"{e['tracks_per_s'] / f['tracks_per_s']:.2f}x"
        )
    split = ", ".join(f"{r} {v['cpu_s']:.1f}" for r, v in sorted(roles.items()))
    ffmpeg = roles.get("worker", {}).get("reaped_children_cpu_s", 0.0)
    print(
        f"       CPU by role (s, sampled): {split}, ffmpeg (reaped by workers) {ffmpeg:.1f}; "
        f"parent commits {sum(commit):.2f} s ({1000 * statistics.mean(commit) if commit else 0:.1f} ms each); "
        f"pool start to first result {e['pool_to_first_result_s'] or 0:.2f} s"
    )
    if e.get("executor") == "dask":
        once = e["feature_rows"] == e["featurised_tracks"] * e["n_extractors"]
        killed = f"worker pid {e['killed_worker'][0]} SIGKILLed mid-scan; " if e.get("killed_worker") else ""
        print(
            f"       dask: cluster start {e['cluster_start_s']:.2f} s (not in the scan wall); {killed}"
            f"{e['featurised_tracks']} tracks featurised, {e['feature_rows']} feature rows "
            f"({'each file once' if once else 'NOT each file once'})"
        )


def summary_table(
    engine_runs: list[dict], floor_runs: list[dict], workers: int, dask_runs: list[dict] | None = None
) -> None:
    def row(name: str, values: list[float], target: str = "", higher: bool = True) -> None:
        print(f"| {name} | {best_median(values, higher)} | {len(values)} | {target} |")

    print("\n| measure | best / median | runs | target |")
    print("|---|---|---|---|")
    row("engine tracks/s (scan wall)", [e["tracks_per_s"] for e in engine_runs], f">= {TARGET_TRACKS_S:g}")
    row(
        "engine tracks/s (incl. interpreter + Engine.open)", [e["tracks"] / e["child_s"] for e in engine_runs]
    )
    row("engine scan wall (s)", [e["scan_s"] for e in engine_runs], higher=False)
    row("engine CPU total (s)", [e["cpu_s"] for e in engine_runs], higher=False)
    row("audio s / CPU s (whole tracks)", [e["audio_per_cpu"] for e in engine_runs])
    row("analysed audio s / CPU s", [e["analysed_per_cpu"] for e in engine_runs])
    row(
        f"engine tracks per CPU s x {workers} (CPU-bound projection)",
        [e["tracks"] / e["cpu_s"] * workers for e in engine_runs],
    )
    row("floor tracks/s (ffmpeg full decode)", [f["tracks_per_s"] for f in floor_runs])
    row(
        f"floor tracks per CPU s x {workers} (CPU-bound projection)",
        [len(e["paths"]) / f["cpu_s"] * workers for e, f in zip(engine_runs, floor_runs, strict=True)],
    )
    row("floor wall (s)", [f["wall_s"] for f in floor_runs], higher=False)
    row(
        "engine / floor",
        [e["tracks_per_s"] / f["tracks_per_s"] for e, f in zip(engine_runs, floor_runs, strict=True)],
        f">= {TARGET_FLOOR_RATIO:g}x",
    )
    row(
        "engine / floor by CPU",
        [
            (e["tracks"] / e["cpu_s"]) / (len(e["paths"]) / f["cpu_s"])
            for e, f in zip(engine_runs, floor_runs, strict=True)
        ],
    )
    row(
        "parent peak RSS (MB)",
        [e["roles"].get("parent", {}).get("peak_mb", 0) for e in engine_runs],
        higher=False,
    )
    row(
        "worker peak RSS (MB)",
        [e["roles"].get("worker", {}).get("peak_mb", 0) for e in engine_runs],
        higher=False,
    )
    row(
        "ffmpeg peak RSS (MB)",
        [e["roles"].get("ffmpeg", {}).get("peak_mb", 0) for e in engine_runs],
        higher=False,
    )
    row(
        "forkserver peak RSS (MB)",
        [e["roles"].get("forkserver", {}).get("peak_mb", 0) for e in engine_runs],
        higher=False,
    )
    if dask_runs:
        row("dask tracks/s (scan wall)", [d["tracks_per_s"] for d in dask_runs])
        row("dask scan wall (s)", [d["scan_s"] for d in dask_runs], higher=False)
        row("dask CPU total (s)", [d["cpu_s"] for d in dask_runs], higher=False)
        row(
            "dask / local tracks/s (same repetition)",
            [d["tracks_per_s"] / e["tracks_per_s"] for e, d in zip(engine_runs, dask_runs, strict=True)],
            f">= {TARGET_DASK_RATIO:g}",
        )
        row(
            "dask / local by CPU",
            [
                (d["tracks"] / d["cpu_s"]) / (e["tracks"] / e["cpu_s"])
                for e, d in zip(engine_runs, dask_runs, strict=True)
            ],
        )
        row(
            "dask cluster start (s, not in the scan)", [d["cluster_start_s"] for d in dask_runs], higher=False
        )
        row(
            "dask worker peak RSS (MB)",
            [d["roles"].get("worker", {}).get("peak_mb", 0) for d in dask_runs],
            higher=False,
        )
    fails: Counter = Counter()
    for reason, path, message in engine_runs[-1]["failures"]:
        fails[reason] += 1
        print(f"failure: {reason}: {path}: {message}", file=sys.stderr)
    print(f"\nfailures by reason (last run): {dict(fails) or 'none'}")


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?", type=Path)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--windows", type=int, help="analysis.windows (default: the engine's)")
    ap.add_argument("--window-s", type=float, help="analysis.window_s (default: the engine's)")
    ap.add_argument(
        "--data-dir",
        type=Path,
        help="where the scratch data dirs go (must not exist or be empty; kept afterwards, so "
        "bench/similarity.py --data-dir D/run1 can reuse the catalog); default: a temp dir, removed",
    )
    ap.add_argument("--repeat", type=int, default=1, help="repetitions (engine then floor each time)")
    ap.add_argument("--no-floor", action="store_true", help="skip the ffmpeg full-decode floor")
    ap.add_argument("--long", action="store_true", help="also scan a generated 3-hour file for peak RSS")
    ap.add_argument(
        "--long-file",
        type=Path,
        help="where the 3-hour file is kept (generated if missing; its folder is scanned, so keep it "
        "alone there)",
    )
    ap.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="dask: each repetition also scans on a Dask cluster (a LocalCluster of --workers one-thread "
        "worker processes unless --scheduler) and compares it with the local pool",
    )
    ap.add_argument(
        "--scheduler", help="the Dask scheduler to use instead of a LocalCluster (tcp://host:port)"
    )
    ap.add_argument(
        "--kill-worker-at",
        type=int,
        metavar="K",
        help="dask on a LocalCluster: SIGKILL one worker when the K-th result is committed",
    )
    ap.add_argument("--json", type=Path, help="write every measurement to this file")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        scan_child(args._child)
        return 0
    if args.dir is None or not args.dir.is_dir():
        ap.error("DIR must be a folder of audio files")
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: cannot become a child subreaper; forkserver CPU will be missing", file=sys.stderr)
    directory = args.dir.resolve()
    if args.data_dir is not None:
        if args.data_dir.exists() and any(args.data_dir.iterdir()):
            ap.error(f"--data-dir {args.data_dir} is not empty; give a new or empty folder")
        base, cleanup = args.data_dir.resolve(), False
        base.mkdir(parents=True, exist_ok=True)
    else:
        base, cleanup = Path(tempfile.mkdtemp(prefix="recengine-bench-")), True
    results: dict = {"dir": str(directory), "workers": args.workers, "runs": []}
    try:
        files = warm_cache(directory)
        print(f"{directory}: {len(files)} audio files; workers {args.workers}; scratch {base}")
        engine_runs, floor_runs, dask_runs = [], [], []
        for i in range(1, args.repeat + 1):
            dask_first = args.executor == "dask" and i % 2 == 0  # alternate: neither side always runs first
            if dask_first:
                d = run_dask(args, directory, base / f"dask{i}")
            e = run_engine(directory, base / f"run{i}", args.workers, args.windows, args.window_s)
            if args.executor == "dask" and not dask_first:
                d = run_dask(args, directory, base / f"dask{i}")
            f = (
                run_floor(e["paths"], args.workers)
                if not args.no_floor
                else {
                    "wall_s": float("nan"),
                    "cpu_s": float("nan"),
                    "failed": 0,
                    "tracks_per_s": float("nan"),
                }
            )
            print_run(i, e, f)
            engine_runs.append(e)
            floor_runs.append(f)
            run = {"engine": {k: v for k, v in e.items() if k != "paths"}, "floor": f}
            if args.executor == "dask":
                print_run(i, d, f)
                dask_runs.append(d)
                run["dask"] = {k: v for k, v in d.items() if k != "paths"}
            results["runs"].append(run)
        summary_table(engine_runs, floor_runs, args.workers, dask_runs)
        if args.long:
            results["long"] = run_long(args, base)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    finally:
        if cleanup:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def run_dask(args, directory: Path, data_dir: Path) -> dict:
    return run_engine(
        directory,
        data_dir,
        args.workers,
        args.windows,
        args.window_s,
        executor="dask",
        scheduler=args.scheduler,
        kill_worker_at=args.kill_worker_at,
    )


def run_long(args, base: Path) -> dict:
    # the file is scanned as the only file of its folder (the scanner follows no symlink out of a root)
    long_file = args.long_file.resolve() if args.long_file else base / "long-lib" / "long-3h.ogg"
    if not long_file.exists():
        took = make_long_file(long_file)
        print(f"\ngenerated {long_file} ({long_file.stat().st_size / 1e6:.0f} MB) in {took:.0f} s")
    folder = long_file.parent
    e = run_engine(folder, base / "long-data", args.workers, args.windows, args.window_s)
    roles = e["roles"]
    worker = roles.get("worker", {}).get("peak_mb", 0.0)
    parent = roles.get("parent", {}).get("peak_mb", 0.0)
    ffmpeg = roles.get("ffmpeg", {}).get("peak_mb", 0.0)
    print(
        f"\n3-hour file ({e['audio_s'] / 3600:.2f} h, windows {e['windows']} x {e['window_s']:g} s): "
        f"featurised {e['featurised']}, failed {e['failed'] or 0}, scan {e['scan_s']:.1f} s"
    )
    print("| role | peak RSS (MB) | target |")
    print("|---|---|---|")
    print(f"| worker | {worker:.0f} | < {TARGET_WORKER_MB} |")
    print(f"| parent | {parent:.0f} | < {TARGET_PARENT_MB} |")
    print(f"| ffmpeg | {ffmpeg:.0f} | |")
    return {k: v for k, v in e.items() if k != "paths"}


if __name__ == "__main__":
    raise SystemExit(main())
