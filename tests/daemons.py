"""A real daemon as a subprocess, for tests: :class:`DaemonRun` writes a config in a temp folder,
starts ``python -m recengine --config CFG daemon`` on it and observes it (catalog queries,
``status.json``, its log); :func:`check_invariants` checks the catalog it leaves.

A drop-in extractor plugin appends one line per decoded file (pid and a checksum of the samples)
to ``$COUNT_LOG``, so "featurised exactly once" is counted, not guessed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from recengine.analysis.decode import pid_alive
from recengine.catalog import Catalog
from recengine.testing import wait_for, write_counting_plugin


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid``, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[-1].split()
        return fields[0].decode(), int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None:
                children.setdefault(st[1], []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


class DaemonRun:
    """A config in tmp_path and the daemon processes started on it (one at a time)."""

    def __init__(self, tmp_path: Path, folders: list[Path], **overrides: Any):
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.cfg = tmp_path / "config.yaml"
        self.plugins = tmp_path / "plugins"
        self.plugins.mkdir(exist_ok=True)
        write_counting_plugin(self.plugins)
        self.count_log = tmp_path / "count.log"
        self.count_log.touch()
        config = {
            "library": {"folders": [str(f) for f in folders]},
            "data_dir": str(self.data),
            "plugin_dirs": [str(self.plugins)],
            "daemon": {
                "settle_s": 0.2,
                "poll_settle_s": 1.0,
                "poll_interval_s": 0.5,
                "reconcile_interval_s": 2,
            },
            "scan": {"workers": 2},
            "analysis": {"windows": 1, "window_s": 1.0},
        }
        self.config = merge(config, overrides)
        self.cfg.write_text(yaml.safe_dump(self.config))
        self.env = {
            **os.environ,
            "COUNT_LOG": str(self.count_log),
            "COUNT_SLEEP": "0",
            "RECENGINE_LOAD_PLUGINS": "",
        }
        self.env.pop("RECENGINE_FAULTPOINT", None)
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.started: list[subprocess.Popen] = []
        self._catalog: Catalog | None = None

    # processes
    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "recengine", "--config", str(self.cfg), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, **env: str) -> subprocess.Popen:
        self.runs += 1
        self.stderr = self.tmp / f"daemon-{self.runs}.log"
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "recengine", "--config", str(self.cfg), "daemon"],
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.started.append(self.proc)
        return self.proc

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Signal the daemon; (exit code, seconds it took to exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"daemon still running {timeout} s after signal {sig}:\n{self.log()}"
            ) from None
        return rc, time.monotonic() - t0

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                kids = descendants(proc.pid)
                proc.kill()
                proc.wait(10)
                for pid in kids:
                    if pid_alive(pid):
                        os.kill(pid, signal.SIGKILL)
        if self._catalog is not None:
            self._catalog.close()

    # observations
    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            wait_for(lambda: (self.data / "catalog.db").exists(), 30, "the catalog file")
            self._catalog = Catalog(self.data / "catalog.db", migrate=False)
        return self._catalog

    def q(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.catalog.query(sql, params)

    def ok(self) -> int:
        return self.q("SELECT count(*) FROM tracks WHERE status='ok' AND missing_since IS NULL")[0][0]

    def status(self) -> dict:
        try:
            return json.loads((self.data / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def decodes(self) -> list[str]:
        """Checksums of the decoded samples, one per decode."""
        return [line.split()[1] for line in self.count_log.read_text().splitlines()]

    def wait_running(self, timeout: float = 30) -> dict:
        """Until the daemon has finished its start-up reconcile and written its status."""
        assert self.proc is not None

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            st = self.status()
            return st if st.get("pid") == self.proc.pid and st.get("state") == "watching" else None

        return wait_for(ready, timeout, "the daemon to be watching")

    def wait_ok(self, n: int, timeout: float = 30) -> None:
        wait_for(lambda: self.ok() == n, timeout, f"{n} analysed tracks (log:\n{self.stderr.name})")

    def wait_quiet(self, timeout: float = 30) -> None:
        """Until nothing is pending in the catalog and the daemon's queue is empty."""

        def quiet():
            st = self.status()
            return (
                self.q("SELECT count(*) FROM tracks WHERE status='pending' AND missing_since IS NULL")[0][0]
                == 0
                and st.get("queue") == 0
                and st.get("state") == "watching"
            )

        wait_for(quiet, timeout, "the daemon to be idle")


def check_invariants(run: DaemonRun) -> None:
    """check_invariants (1)-(2): integrity, foreign keys, no duplicate paths or feature rows."""
    db = sqlite3.connect(f"file:{run.data / 'catalog.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert (
            db.execute(
                "SELECT root_id, relpath, count(*) FROM tracks WHERE missing_since IS NULL "
                "GROUP BY 1, 2 HAVING count(*) > 1"
            ).fetchall()
            == []
        )
        assert (
            db.execute(
                "SELECT track_id, content_sig, extractor, version, count(*) FROM features "
                "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"
            ).fetchall()
            == []
        )
    finally:
        db.close()
    assert not list(run.data.rglob("*.tmp"))
