"""The extractor contract as the worker runs it: ``setup()`` once per worker process, an extractor's
own ``sample_rate``, ``extract_batch``; and the local executor (pids it reports, crashes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from recengine.analysis import FeatureJob, FeaturePool, Worker, WorkerSettings
from recengine.analysis.track import resample
from recengine.testing import encode, tone

SR = 22050

PLUGIN = '''
import json, os
import numpy as np
import recengine

LOG = os.environ["CONTRACT_LOG"]


def note(**kw):
    with open(LOG, "a") as fh:
        fh.write(json.dumps({"pid": os.getpid(), **kw}) + "\\n")


class Loaded:
    name = "loaded"
    version = 1
    dim = 1

    def setup(self):
        note(event="setup")

    def extract(self, samples, sr):
        note(event="extract")
        return np.array([samples.size], dtype=np.float32)


class Slow:
    """Declares its own rate; returns its samples' count and a hash of them, and its sr."""
    name = "slow"
    version = 1
    dim = 3
    sample_rate = 16000

    def extract(self, samples, sr):
        return np.array([samples.size, float(np.sum(samples.astype(np.float64) ** 2)), sr], dtype=np.float32)


class Fast:
    name = "fast"
    version = 1
    dim = 2
    sample_rate = 44100

    def extract_batch(self, items):
        note(event="batch", n=len(items))
        return [np.array([s.size, sr], dtype=np.float32) for s, sr in items]

    def extract(self, samples, sr):
        raise AssertionError("extract_batch is there")


@recengine.hookimpl
def register_extractors(register):
    register(Loaded())
    register(Slow())
    register(Fast())
'''


@pytest.fixture
def contract(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "contract.py").write_text(PLUGIN)
    log = tmp_path / "contract.log"
    monkeypatch.setenv("CONTRACT_LOG", str(log))
    raw = {"plugin_dirs": [str(plugins)], "data_dir": str(tmp_path / "data")}
    files = [encode(tone(220.0 * (i + 1), 2.0), tmp_path / "lib" / f"t{i}.flac") for i in range(6)]
    jobs = []
    for i, path in enumerate(files):
        st = os.stat(path)
        jobs.append(FeatureJob(i + 1, str(path), f"sig{i}", st.st_size, st.st_mtime_ns,
                               (("loaded", 1), ("slow", 1), ("fast", 1))))

    def events() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return raw, jobs, events


def test_setup_is_called_once_per_worker_process_before_extract(contract):
    raw, jobs, events = contract
    with FeaturePool.for_config(None, raw, 2) as pool:
        results = list(pool.map(jobs))
    assert len(results) == len(jobs) and all(r.blocks.keys() == {"loaded", "slow", "fast"} for r in results)
    seen = events()
    setups = [e["pid"] for e in seen if e["event"] == "setup"]
    assert len(setups) == len(set(setups))  # once per process
    assert os.getpid() not in setups  # never in the scanning process
    for pid in {e["pid"] for e in seen if e["event"] == "extract"}:
        mine = [e["event"] for e in seen if e["pid"] == pid and e["event"] in ("setup", "extract")]
        assert mine[0] == "setup" and mine.count("setup") == 1


def test_extractor_gets_its_own_sample_rate(contract):
    raw, jobs, events = contract
    worker = Worker(WorkerSettings(None, raw, dict(os.environ)))
    results = worker.featurise(jobs[:2])
    for job, result in zip(jobs[:2], results, strict=True):
        assert not result.extractor_errors, result.extractor_errors
        audio = worker.decoder.decode(Path(job.path))
        size, energy, sr = result.blocks["slow"][1]
        # lower rate: the decoded windows resampled, exactly
        expected = resample(audio.samples, SR, 16000)
        assert sr == 16000 and size == expected.size
        assert energy == pytest.approx(float(np.sum(expected.astype(np.float64) ** 2)), rel=1e-6)
        # higher rate: decoded again at that rate (44.1 kHz worth of samples for the same 2 s)
        fast_size, fast_sr = result.blocks["fast"][1]
        assert fast_sr == 44100 and abs(fast_size - 2.0 * 44100) < 0.02 * 44100
        assert result.blocks["loaded"][1][0] == audio.samples.size  # the analysis rate for the rest
    batches = [e for e in events() if e["event"] == "batch"]
    assert [b["n"] for b in batches] == [2]  # one extract_batch call for the two tracks


SLOW_START = '''
import json, os, time
import numpy as np
import recengine

with open(os.environ["CONTRACT_LOG"], "a") as fh:
    fh.write(json.dumps({"pid": os.getpid(), "event": "import"}) + "\\n")
time.sleep(30)  # a worker still starting (a big model loading) when the pool is stopped


class Never:
    name = "never"
    version = 1
    dim = 1

    def extract(self, samples, sr):
        return np.zeros(1, np.float32)


@recengine.hookimpl
def register_extractors(register):
    register(Never())
'''


def test_stopping_the_pool_stops_workers_that_are_still_starting(tmp_path, monkeypatch):
    """A worker that has not reported ready is stopped with the others: one left alive could block
    for ever on the task queue's lock that a killed worker held, and the interpreter joins the
    pool's workers when it exits (CI sat for its whole time limit after the last test)."""
    from recengine.analysis.decode import pid_alive
    from recengine.testing import wait_for

    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "slow_start.py").write_text(SLOW_START)
    log = tmp_path / "slow.log"
    monkeypatch.setenv("CONTRACT_LOG", str(log))
    path = encode(tone(440.0, 1.0), tmp_path / "lib" / "a.flac")
    st = os.stat(path)
    jobs = [FeatureJob(i + 1, str(path), f"sig{i}", st.st_size, st.st_mtime_ns, (("never", 1),)) for i in range(4)]
    raw = {"plugin_dirs": [str(plugins)], "data_dir": str(tmp_path / "data")}

    def starting() -> list[int]:
        return [json.loads(line)["pid"] for line in log.read_text().splitlines()] if log.exists() else []

    with FeaturePool.for_config(None, raw, 2) as pool:
        results = list(pool.map(jobs, stop=lambda: len(starting()) >= 2))
        assert results == []  # nothing done: every track stays pending
        pids = starting()
        assert len(pids) == 2
        wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="the starting workers to stop")
