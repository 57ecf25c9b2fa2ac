"""The Dask executor (issue 18): the same features as the local pool, path mapping, and the faults: a
worker SIGKILLed mid-scan, a file that kills its workers, the scheduler unreachable or lost.

Everything runs on loopback: a ``LocalCluster`` of two worker processes, and real ``dask scheduler``
and ``dask worker`` processes (no dashboard), each torn down by its fixture (process groups killed,
waited for) so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

from recengine.analysis import ExecutorUnavailable
from recengine.analysis.dask_executor import PathMap, forwarded_env
from recengine.config import ConfigError
from recengine.testing import noise, tone, wait_for, wav_bytes

from .conftest import make_engine
from .daemons import DaemonRun

CRASHING = """
import os
import recengine

@recengine.hookimpl
def load_audio(path, config):
    if path.name.startswith("crash"):
        os._exit(3)
"""


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each; a task that kills its workers twice is KilledWorker."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1", silence_logs=50)
    try:
        yield cluster
    finally:
        cluster.close(timeout=20)


def _wav_library(root: Path, n: int, *, seconds: float = 1.2) -> Path:
    """``n`` distinct short WAVs (no two the same audio), written without ffmpeg."""
    for i in range(n):
        samples = tone(150.0 + 9.0 * i, seconds) + noise(seconds, seed=i, amp=0.05)
        path = root / f"d{i // 50}" / f"t{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_bytes(samples.astype(np.float32)))
    return root


@pytest.fixture(scope="module")
def wavs_200(tmp_path_factory) -> Path:
    return _wav_library(tmp_path_factory.mktemp("wavs200"), 200)


class DaskProcesses:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, each in its own process
    group; :meth:`stop` kills every group and waits for it."""

    def __init__(self, base: Path):
        self.base = base
        self.procs: list[subprocess.Popen] = []
        self.scheduler_file = base / "scheduler.json"

    def _start(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.base / f"dask-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "dask", *argv], cwd=self.base, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
        log.close()
        self.procs.append(proc)
        return proc

    def scheduler(self, port: int = 0) -> str:
        self.scheduler_file.unlink(missing_ok=True)
        self._start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                return json.loads(self.scheduler_file.read_text())["address"]
            time.sleep(0.05)
        raise AssertionError("the dask scheduler did not start: " + self.logs())

    def worker(self, env: dict[str, str] | None = None) -> subprocess.Popen:
        return self._start("worker", "--scheduler-file", str(self.scheduler_file), "--host", "127.0.0.1",
                           "--nthreads", "1", "--no-nanny", "--no-dashboard", "--death-timeout", "30",
                           "--local-directory", str(self.base), env=env)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.base.glob("dask-*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)


@pytest.fixture
def dask_processes(tmp_path):
    procs = DaskProcesses(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()


def _wait_for_workers(address: str, n: int) -> None:
    with Client(address, timeout=20, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=60)


def _vectors(engine) -> dict[tuple[str, str], np.ndarray]:
    rows = engine.catalog.query("SELECT t.relpath, f.extractor, f.version, f.vector FROM features f "
                                "JOIN tracks t USING(track_id)")
    return {(rel, f"{ext}/{ver}"): np.frombuffer(blob, dtype=np.float32) for rel, ext, ver, blob in rows}


class CountingCommits:
    """Wraps a scanner's commit: how often each track's result arrived, and a hook after the n-th."""

    def __init__(self, scanner, after: int = 0, then=lambda: None):
        self.seen: Counter = Counter()
        self.original, self.after, self.then = scanner.commit, after, then
        scanner.commit = self

    def __call__(self, result, report):
        self.seen[result.job.track_id] += 1
        self.original(result, report)
        if len(self.seen) == self.after:
            self.then()


# --- the same features ------------------------------------------------------------------------------


def test_dask_scan_gives_the_local_features_value_by_value(tmp_path, cluster, styled_library, styled_data):
    """The styled library scanned on the cluster, its files read by the workers through a path_map
    alias, equals the local pool's scan of it (styled_data) vector by vector, tags and durations too."""
    alias = tmp_path / "as-the-workers-see-it"
    alias.symlink_to(styled_library, target_is_directory=True)
    shutil.copytree(styled_data, tmp_path / "local" / "data")
    local = make_engine(tmp_path / "local", [styled_library])
    engine = make_engine(tmp_path, [styled_library], scan__executor="dask",
                         scan__dask={"scheduler": cluster.scheduler_address, "path_map": {str(styled_library): str(alias)}})
    try:
        report = engine.scan()
        assert report.featurised == 15 and not report.failed, report.summary()
        mine, theirs = _vectors(engine), _vectors(local)
        assert mine.keys() == theirs.keys() and len(mine) >= 15
        for key, vec in theirs.items():
            assert np.array_equal(mine[key], vec), key
        cols = "relpath, artist, album, title, genre, duration, status, content_sig"
        assert sorted(engine.catalog.query(f"SELECT {cols} FROM tracks")) == \
            sorted(local.catalog.query(f"SELECT {cols} FROM tracks"))
    finally:
        engine.close()
        local.close()


def test_path_map_sends_the_workers_path(tmp_path, cluster):
    """Mapped to a folder the workers do not have, every file is 'vanished' for them: proof that the
    mapped path is what they open; nothing reaches the failure ledger and the tracks stay pending."""
    lib = _wav_library(tmp_path / "lib", 3)
    engine = make_engine(tmp_path, [lib], scan__dask={"path_map": {str(lib): str(tmp_path / "nowhere")}})
    try:
        report = engine.scan(executor="dask", scheduler=cluster.scheduler_address)
        assert report.featurised == 0 and not report.failed
        assert engine.catalog.failures() == [] and len(engine.scanner(progress=False).jobs()) == 3
    finally:
        engine.close()


def test_path_map_rules():
    pm = PathMap.from_config({"/srv/music": "/mnt/nas", "/srv/music/classical": "/mnt/cl", "/": "/root-of"})
    assert pm.to_worker("/srv/music/a/b.flac") == "/mnt/nas/a/b.flac"
    assert pm.to_worker("/srv/music/classical/x.flac") == "/mnt/cl/x.flac"  # the longest prefix
    assert pm.to_worker("/srv/musicals/x.flac") == "/root-of/srv/musicals/x.flac"  # whole components only
    assert PathMap.from_config({}).to_worker("/srv/music/a.ogg") == "/srv/music/a.ogg"


def test_workers_get_only_the_environment_the_config_needs():
    raw = {"sources": [{"password": "${NAVI_PW}"}], "library": {"folders": ["/m"]}}
    env = {"NAVI_PW": "s", "AWS_SECRET": "x", "RECENGINE_DISABLE_PLUGINS": "a", "PATH": "/bin"}
    assert forwarded_env(raw, env) == {"NAVI_PW": "s", "RECENGINE_DISABLE_PLUGINS": "a"}


# --- faults -----------------------------------------------------------------------------------------


def test_file_that_kills_its_workers_is_deferred_and_the_rest_analysed(tmp_path, cluster):
    """A decoder plugin that exits the worker on one file: Dask gives up on that task (KilledWorker),
    its batch-mate is sent again alone and analysed; the file is left pending as the local pool
    leaves a file that crashed it twice (not the file's fault: no ledger entry), not retried again."""
    lib = _wav_library(tmp_path / "lib", 2)
    (lib / "d0" / "t001.wav").rename(lib / "d0" / "crash.wav")
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "crashing_decoder.py").write_text(CRASHING)
    engine = make_engine(tmp_path, [lib], plugin_dirs=[str(plugins)])
    try:
        report = engine.scan(executor="dask", scheduler=cluster.scheduler_address)
        assert report.featurised == 1 and not report.failed, report.summary()
        assert engine.catalog.failures() == []
        assert [Path(j.path).name for j in engine.scanner(progress=False).jobs()] == ["crash.wav"]
    finally:
        engine.close()


def test_worker_sigkilled_mid_scan_loses_and_duplicates_nothing(tmp_path, wavs_200, dask_processes):
    """200 files on two real `dask worker` processes; the one busy at the 20th result is SIGKILLed:
    its tasks run again on the other, and every file arrives once and is featurised once."""
    address = dask_processes.scheduler()
    workers = [dask_processes.worker(), dask_processes.worker()]
    _wait_for_workers(address, 2)
    engine = make_engine(tmp_path, [wavs_200])
    killed: list[int] = []

    def kill_a_busy_worker():
        with Client(address, timeout=10, set_as_default=False) as client:
            busy = [addr for addr, keys in client.processing().items() if keys]
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    try:
        scanner = engine.scanner(progress=False, executor="dask", scheduler=address)
        counts = CountingCommits(scanner, after=20, then=kill_a_busy_worker)
        report = scanner.run()
        assert killed and killed[0] in {w.pid for w in workers}
        assert [w.poll() for w in workers].count(None) == 1  # one worker is gone for good
        assert report.featurised == 200 and not report.failed, report.summary()
        assert len(counts.seen) == 200 and set(counts.seen.values()) == {1}
        n_ext = len(engine.extractor_versions())
        assert engine.catalog.query("SELECT count(*), count(DISTINCT track_id) FROM features") == [(200 * n_ext, 200)]
        assert engine.catalog.query("SELECT count(*) FROM tracks WHERE status='ok'") == [(200,)]
    finally:
        engine.close()


def test_scheduler_lost_mid_scan_keeps_what_was_committed(tmp_path, dask_processes):
    """The scheduler SIGKILLed after the 6th result: the scan ends with one clear error, the results
    committed before stay, and the next scan (on a new scheduler) does only the rest."""
    lib = _wav_library(tmp_path / "lib", 24)
    address = dask_processes.scheduler()
    dask_processes.worker()
    _wait_for_workers(address, 1)
    engine = make_engine(tmp_path, [lib])
    try:
        scanner = engine.scanner(progress=False, executor="dask", scheduler=address)
        CountingCommits(scanner, after=6, then=lambda: os.killpg(dask_processes.procs[0].pid, signal.SIGKILL))
        with pytest.raises(ExecutorUnavailable, match="lost the Dask scheduler"):
            scanner.run()
        kept = engine.catalog.query("SELECT count(*) FROM tracks WHERE status='ok'")[0][0]
        assert 6 <= kept < 24
        address = dask_processes.scheduler()
        dask_processes.worker()
        _wait_for_workers(address, 1)
        again = engine.scanner(progress=False, executor="dask", scheduler=address)
        counts = CountingCommits(again)
        report = again.run()
        assert report.featurised == 24 - kept and len(counts.seen) == 24 - kept
        assert engine.catalog.query("SELECT count(*) FROM tracks WHERE status='ok'") == [(24,)]
    finally:
        engine.close()


def test_daemon_waits_for_the_scheduler_then_analyses_on_the_cluster(tmp_path, dask_processes):
    """The daemon with scan.executor: dask, started before its scheduler: status says what fails and
    it retries; once a scheduler and a worker are up, every file is analysed on that worker, once
    (the counting extractor logs each decode with its pid), and so is a file copied in afterwards."""
    lib = _wav_library(tmp_path / "lib", 3)
    port = _closed_port()
    run = DaemonRun(tmp_path, [lib], scan={"executor": "dask", "dask": {
        "scheduler": f"tcp://127.0.0.1:{port}", "connect_timeout_s": 10}})  # 1 s timed out under load
    try:
        run.start()
        wait_for(lambda: "cannot reach the Dask scheduler" in str((run.status().get("problem") or {}).get("error")),
                 30, "the daemon to say that the scheduler is unreachable")
        dask_processes.scheduler(port)
        worker = dask_processes.worker(env={"COUNT_LOG": str(run.count_log), "COUNT_SLEEP": "0"})
        run.wait_ok(3, timeout=60)
        _wav_library(tmp_path / "staging", 4)
        os.replace(tmp_path / "staging" / "d0" / "t003.wav", lib / "d0" / "new.wav")
        run.wait_ok(4, timeout=30)
        wait_for(lambda: run.status().get("problem") is None, 30, "status.json to drop the problem")
        assert {line.split()[0] for line in run.count_log.read_text().splitlines()} == {str(worker.pid)}
        assert len(run.decodes()) == 4
        assert run.stop()[0] == 0
    finally:
        run.kill_all()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_clear_error_line(tmp_path):
    lib = _wav_library(tmp_path / "lib", 1)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"library": {"folders": [str(lib)]}, "data_dir": str(tmp_path / "data"),
                                  "plugin_dirs": [], "models_dir": str(tmp_path / "none"),
                                  "scan": {"dask": {"connect_timeout_s": 1}}}))
    address = f"tcp://127.0.0.1:{_closed_port()}"
    out = subprocess.run([sys.executable, "-m", "recengine", "--config", str(config), "scan", "--scheduler", address],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[0].startswith(f"recengine: error: cannot reach the Dask scheduler at {address}"), \
        out.stderr
    assert "Traceback" not in out.stderr


def test_local_scans_never_import_dask(tmp_path):
    lib = _wav_library(tmp_path / "lib", 1)
    code = ("import sys; from tests.conftest import make_engine; from pathlib import Path; "
            f"e = make_engine(Path({str(tmp_path)!r}), [Path({str(lib)!r})]); r = e.scan(); e.close(); "
            "assert r.featurised == 1, r.summary(); assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr[-2000:]


# --- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scan", "key", "words"), [
    ({"executor": "spark"}, "scan.executor", "expected one of local, dask"),
    ({"dask": {"scheduler": "8786"}}, "scan.dask.scheduler", "tcp://host:8786"),
    ({"dask": {"scheduler": "http://h:8786"}}, "scan.dask.scheduler", "tcp://host:8786"),
    ({"dask": {"path_map": {"music": "/mnt/music"}}}, "scan.dask.path_map", "absolute"),
    ({"dask": {"path_map": ["/a", "/b"]}}, "scan.dask.path_map", "mapping"),
    ({"dask": {"connect_timeout_s": 0}}, "scan.dask.connect_timeout_s", "greater than 0"),
])
def test_bad_dask_settings_are_config_errors(tmp_path, scan, key, words):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        make_engine(tmp_path, [tmp_path], scan=scan)
    assert words in str(err.value)


def test_dask_executor_without_a_scheduler_says_which_key(tmp_path):
    engine = make_engine(tmp_path, [tmp_path], scan__executor="dask")
    try:
        with pytest.raises(ConfigError, match=r"scan\.dask\.scheduler"):
            engine.scanner(progress=False)
    finally:
        engine.close()


def test_dask_executor_without_the_extra_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if `pip install 'recengine[dask]'` was not run
    monkeypatch.delitem(sys.modules, "recengine.analysis.dask_executor", raising=False)
    engine = make_engine(tmp_path, [tmp_path])
    try:
        with pytest.raises(ExecutorUnavailable, match=r"pip install 'recengine\[dask\]'"):
            engine.scanner(progress=False, executor="dask", scheduler="tcp://127.0.0.1:8786")
    finally:
        engine.close()
