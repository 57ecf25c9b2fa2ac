"""What a feature executor costs per job when the job itself costs nothing: the ceiling of one scanning
parent, and the scheduler's CPU per task.

    .venv/bin/python bench/executor_overhead.py [--jobs 20000] [--workers 2] [--quiet]

The jobs name files that do not exist: a worker answers each at once (``vanished``, no decode), so
what is timed is the executor itself: jobs out, batches scheduled, results back and yielded. Runs
the local pool (``FeaturePool``) and the Dask executor on a real ``dask scheduler`` and ``--workers``
``dask worker`` processes (one thread each) on 127.0.0.1, and reports jobs/s, the parent's CPU per
job, and for Dask the scheduler's and the workers' CPU per job (from ``/proc/<pid>/stat``).

Before the jobs, the Dask processes sit idle for ``--idle-s`` seconds, and again after the workers'
first task (which turns their profiler off): their CPU then is what Dask's own diagnostics cost
(event-loop ticks, system and memory monitors, the profiler's stack sampling). ``--quiet`` also runs
them with the environment README recommends (``QUIET_ENV``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recengine.analysis import FeatureJob, FeaturePool  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
RAW = {"plugin_dirs": [], "library": {"folders": ["/nonexistent"]}}
QUIET_ENV = {
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "500ms",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
    "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s",
}


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / CLK_TCK


def jobs(n: int) -> list[FeatureJob]:
    return [FeatureJob(i, f"/nonexistent/{i}.flac", "x", 1, 1, (("timbre", 1),)) for i in range(n)]


def drain(executor, todo: list[FeatureJob]) -> tuple[float, float, int]:
    t, c = time.perf_counter(), time.process_time()
    n = sum(1 for _ in executor.map(todo))
    return time.perf_counter() - t, time.process_time() - c, n


def run_local(n: int, workers: int) -> dict:
    with FeaturePool.for_config(None, RAW, workers) as pool:
        drain(pool, jobs(2 * workers))  # start the workers
        wall, cpu, got = drain(pool, jobs(n))
    return {
        "executor": "local",
        "jobs": got,
        "wall_s": wall,
        "jobs_per_s": got / wall,
        "parent_cpu_ms": 1e3 * cpu / got,
    }


def start_dask(base: Path, workers: int, env: dict[str, str]) -> tuple[list[subprocess.Popen], str]:
    """A real scheduler and ``workers`` one-thread workers (no nanny) on 127.0.0.1."""
    sched_file = base / "scheduler.json"
    sched_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "dask"]
    opts = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True, "cwd": base,
            "env": env}  # fmt: skip
    procs = [subprocess.Popen([*argv, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], **opts)]  # fmt: skip
    while not sched_file.exists():
        time.sleep(0.05)
    time.sleep(0.2)
    address = json.loads(sched_file.read_text())["address"]
    for _ in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    *argv,
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--local-directory",
                    str(base),
                ],
                **opts,
            )
        )
    return procs, address


def idle_cpu(procs: list[subprocess.Popen], seconds: float) -> list[float]:
    """Each process's CPU over ``seconds`` of doing nothing, as a share of one core."""
    before = [cpu_of(p.pid) for p in procs]
    time.sleep(seconds)
    return [(cpu_of(p.pid) - b) / seconds for p, b in zip(procs, before, strict=True)]


def run_dask(n: int, workers: int, base: Path, *, idle_s: float, quiet: bool) -> dict:
    from distributed import Client

    from recengine.analysis.dask_executor import DaskExecutor

    procs, address = start_dask(base, workers, {**os.environ, **(QUIET_ENV if quiet else {})})
    try:
        executor = DaskExecutor.for_config(None, RAW, address)
        try:
            with Client(address, set_as_default=False) as c:
                c.wait_for_workers(workers, timeout=60)
            time.sleep(2)
            idle = idle_cpu(procs, idle_s)
            drain(executor, jobs(4 * workers))  # the workers build their Worker (and stop their profiler)
            idle_after = idle_cpu(procs, idle_s)
            before = [cpu_of(p.pid) for p in procs]
            wall, cpu, got = drain(executor, jobs(n))
            used = [cpu_of(p.pid) - b for p, b in zip(procs, before, strict=True)]
        finally:
            executor.close()
        return {
            "executor": "dask (quiet env)" if quiet else "dask",
            "jobs": got,
            "wall_s": wall,
            "jobs_per_s": got / wall,
            "parent_cpu_ms": 1e3 * cpu / got,
            "scheduler_cpu_ms": 1e3 * used[0] / got,
            "workers_cpu_ms": 1e3 * sum(used[1:]) / got,
            "idle_scheduler_pct": 100 * idle[0],
            "idle_worker_pct": 100 * sum(idle[1:]) / workers,
            "idle_worker_after_task_pct": 100 * sum(idle_after[1:]) / workers,
        }
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--idle-s", type=float, default=10.0, help="seconds the Dask processes are watched idle")
    ap.add_argument("--quiet", action="store_true", help="also run Dask with README's quieter environment")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_local(args.jobs, args.workers)]
        for quiet in (False, True) if args.quiet else (False,):
            rows.append(run_dask(args.jobs, args.workers, Path(tmp), idle_s=args.idle_s, quiet=quiet))
    print(
        "| executor | jobs | wall s | jobs/s | parent CPU ms/job | scheduler CPU ms/job | workers CPU ms/job |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['executor']} | {r['jobs']} | {r['wall_s']:.1f} | {r['jobs_per_s']:.0f} | "
            f"{r['parent_cpu_ms']:.3f} | {r.get('scheduler_cpu_ms', float('nan')):.3f} | "
            f"{r.get('workers_cpu_ms', float('nan')):.3f} |"
        )
    print(
        "\n| executor | idle scheduler (% of a core) | idle worker (% of a core): before / after its first task |"
    )
    print("|---|---|---|")
    for r in rows[1:]:
        print(
            f"| {r['executor']} | {r['idle_scheduler_pct']:.2f} | {r['idle_worker_pct']:.2f} / "
            f"{r['idle_worker_after_task_pct']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
