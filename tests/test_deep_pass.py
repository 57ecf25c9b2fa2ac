"""Fast pass, then deep pass (issue 13): a deep extractor runs after the others, in a second pass.

A tiny deep extractor plugin stands in for musicnn (slow on purpose, counting its calls in
``$DEEP_LOG``), so these tests take seconds: a track is searchable after the fast pass before its
deep block exists; the deep block arrives in the second pass and changes its vector; a deep pass
stopped half-way resumes; a deep failure leaves the track searchable; the daemon makes a new file
searchable without waiting for the deep extractor, and finishes the deep pass in the background,
across a restart; ``recengine status`` shows both passes.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from recengine.testing import noise, pulses, tone, wait_for, wav_bytes

from .conftest import make_engine
from .daemons import DaemonRun, check_invariants

SR = 22050

DEEP_PLUGIN = '''"""A slow "deep" extractor for tests: logs each call to $DEEP_LOG, sleeps $DEEP_SLEEP s,
raises when $DEEP_FAIL is set."""
import os
import time

import numpy as np

import recengine


class SlowDeep:
    name = "slowdeep"
    version = 1
    dim = 3
    deep = True

    def extract(self, samples, sr):
        with open(os.environ["DEEP_LOG"], "a") as fh:
            fh.write(f"{os.getpid()} {samples.size}\\n")
        time.sleep(float(os.environ.get("DEEP_SLEEP") or 0))
        if os.environ.get("DEEP_FAIL"):
            raise RuntimeError("the deep model is broken")
        x = samples.astype(np.float64)
        spec = np.abs(np.fft.rfft(x[: 1 << 14]))
        centroid = float((spec * np.arange(spec.size)).sum() / max(spec.sum(), 1e-9)) / spec.size
        return np.array([float(np.abs(x).mean()), float(x.std()), centroid], dtype=np.float32)


@recengine.hookimpl
def register_extractors(register):
    register(SlowDeep())
'''


def sound(i: int, seconds: float = 1.5) -> np.ndarray:
    kind = i % 3
    if kind == 0:
        return tone(220 * 2 ** (i / 7), seconds, sr=SR)
    if kind == 1:
        return noise(seconds, sr=SR, seed=i, colour="pink" if i % 2 else "white")
    return pulses(90 + 7 * i, seconds, sr=SR, seed=i)


def write_wav(path: Path, i: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(sound(i), SR))
    return path


@pytest.fixture
def deep_env(tmp_path, monkeypatch):
    """The deep plugin in a plugin folder (DaemonRun adds its counting plugin there), its call
    log, and a library of six tracks."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "slowdeep.py").write_text(DEEP_PLUGIN)
    log = tmp_path / "deep.log"
    log.touch()
    monkeypatch.setenv("DEEP_LOG", str(log))  # the workers inherit it
    monkeypatch.setenv("DEEP_SLEEP", "0")
    lib = tmp_path / "lib"
    for i in range(6):
        write_wav(lib / f"t{i}.wav", i)
    return plugins, log, lib


def open_engine(tmp_path: Path, plugins: Path, lib: Path):
    return make_engine(tmp_path, [lib], plugin_dirs=[str(plugins)], analysis__windows=1, analysis__window_s=1.0)


def deep_calls(log: Path) -> int:
    return len(log.read_text().splitlines())


def test_fast_pass_makes_tracks_searchable_then_the_deep_pass_changes_their_vectors(tmp_path, deep_env):
    plugins, log, lib = deep_env
    engine = open_engine(tmp_path, plugins, lib)
    try:
        assert engine.deep_extractors() == {"slowdeep"}
        scanner = engine.scanner(progress=False)
        seen: dict = {}

        def searchable(report):  # between the passes: what a user sees before the deep pass
            engine.index.catch_up(report.featurised)
            track = engine.resolve(lib / "t0.wav").track_id
            seen["deep_calls"] = deep_calls(log)
            seen["similar"] = [r.track.track_id for r in engine.similar([track], 5)]
            seen["vector"] = engine.index.vector(track)
            seen["features"] = engine.catalog.features_of(track, engine.extractor_versions())
            seen["passes"] = engine.passes()

        report = scanner.run(searchable=searchable)
        assert report.featurised == 6 and report.deep_featurised == 6, report.summary()
        assert "deep pass 6 done" in report.summary()
        assert 0 < report.fast_seconds < report.seconds
        # before the deep pass: every track searchable, no deep block anywhere yet
        assert seen["deep_calls"] == 0 and len(seen["similar"]) == 5
        assert seen["features"] is None  # not every extractor's block is there...
        assert seen["passes"] == {"fast": 6, "deep": {"slowdeep": {"done": 0, "pending": 6}}}
        assert deep_calls(log) == 6  # each track once, in the deep pass only
        engine.index.catch_up(report.deep_featurised)
        t0 = engine.resolve(lib / "t0.wav").track_id
        assert "slowdeep" in engine.index.scaler.order  # all six have it: fitted into the scaling
        after = engine.index.vector(t0)
        assert after.shape != seen["vector"].shape or not np.allclose(after, seen["vector"])
        assert engine.passes() == {"fast": 6, "deep": {"slowdeep": {"done": 6, "pending": 0}}}
        again = engine.scan()  # nothing left for either pass
        assert (again.featurised, again.deep_featurised) == (0, 0) and deep_calls(log) == 6
    finally:
        engine.close()


def test_a_deep_pass_stopped_half_way_resumes_and_a_failing_one_leaves_tracks_searchable(
        tmp_path, deep_env, monkeypatch):
    plugins, log, lib = deep_env
    monkeypatch.setenv("DEEP_SLEEP", "0.3")
    engine = open_engine(tmp_path, plugins, lib)
    try:
        def deep_rows() -> int:
            return engine.catalog.query("SELECT count(*) FROM features WHERE extractor='slowdeep'")[0][0]

        first = engine.scan(stop=lambda: deep_rows() >= 2)  # stops once the deep pass has committed some
        assert first.featurised == 6 and first.interrupted and first.deep_featurised < 6
        done = engine.passes()["deep"]["slowdeep"]["done"]
        assert done == first.deep_featurised >= 2
        assert len(engine.similar([engine.resolve(lib / "t1.wav").track_id], 5)) == 5
        monkeypatch.setenv("DEEP_SLEEP", "0")
        second = engine.scan()
        assert second.featurised == 0 and second.deep_featurised == 6 - done  # only the missing ones
        assert engine.passes()["deep"]["slowdeep"] == {"done": 6, "pending": 0}

        write_wav(lib / "new.wav", 9)  # a deep model that fails: the track is searchable, not failed
        monkeypatch.setenv("DEEP_FAIL", "1")
        third = engine.scan()
        assert third.featurised == 1 and third.deep_featurised == 0 and third.deep_failed == 1
        new = engine.resolve(lib / "new.wav")
        assert new.status == "ok" and engine.catalog.failures() == []
        assert engine.index.vector(new.track_id) is not None  # in the index, on its fast blocks
        t2 = engine.resolve(lib / "t2.wav").track_id
        assert new.track_id in {r.track.track_id for r in engine.similar([t2], 6)}
        assert engine.passes()["deep"]["slowdeep"] == {"done": 6, "pending": 1}
    finally:
        engine.close()


def test_the_daemon_makes_a_new_file_searchable_without_waiting_for_the_deep_pass(tmp_path, deep_env):
    plugins, log, lib = deep_env
    run = DaemonRun(tmp_path, [lib], http={"enabled": False})
    assert run.plugins == plugins
    run.env.update(DEEP_LOG=str(log), DEEP_SLEEP="1.5")
    try:
        run.start()
        run.wait_running()
        run.wait_ok(6)
        wait_for(lambda: deep_calls(log) >= 1, 20, "the deep pass to start")
        engine = make_engine(tmp_path / "reader", [lib], plugin_dirs=[str(plugins)],
                             data_dir=str(run.data), analysis__windows=1, analysis__window_s=1.0)
        try:
            new = lib / "new.wav"
            shutil.copy(write_wav(tmp_path / "staging" / "new.wav", 11), new)
            t0 = time.monotonic()

            def searchable():
                engine.index.refresh()
                try:
                    track = engine.resolve(new)
                except LookupError:
                    return None
                return track if track.status == "ok" and len(engine.similar([new], 3)) == 3 else None

            track = wait_for(searchable, 20, "the new file to be searchable")
            took = time.monotonic() - t0
            # searchable on the fast blocks while its deep block is still to come
            have = {e for (e,) in run.q("SELECT extractor FROM features WHERE track_id=?", (track.track_id,))}
            assert "slowdeep" not in have and "counting" in have
            assert took < 8, f"closed -> searchable took {took:.1f} s"
        finally:
            engine.close()
        st = json.loads(run.cli("status", "--json").stdout)
        assert st["passes"]["fast"] == 7 and st["passes"]["deep"]["slowdeep"]["pending"] >= 1
        assert st["daemon"]["passes"]["deep_state"] in ("running", "idle")
        rc, stopped = run.stop()  # in the middle of the deep pass: it resumes after the restart
        assert rc == 0 and stopped < 10
        pending = json.loads(run.cli("status", "--json").stdout)["passes"]["deep"]["slowdeep"]["pending"]
        assert pending >= 1
        run.env["DEEP_SLEEP"] = "0"
        run.start()
        wait_for(lambda: run.q("SELECT count(*) FROM features WHERE extractor='slowdeep'")[0][0] == 7, 30,
                 "the deep pass to finish after the restart")
        text = run.cli("status").stdout
        assert "analysed 7 (fast pass); deep pass (slowdeep): 7 of 7, 0 pending" in text, text
        rc, _ = run.stop()
        assert rc == 0
        check_invariants(run)
    finally:
        run.kill_all()
