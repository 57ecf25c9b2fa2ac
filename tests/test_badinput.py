"""Bad input and a misbehaving ffmpeg (RELIABILITY rules 4 and 5, tests T27-T32).

One generated corpus of broken, odd and hostile files goes through one scan of a real engine
(2 worker processes). Every ffmpeg call goes through a logging stand-in (tests/fakes/ffmpeg_fake.py)
that execs the real ffmpeg, so the tests can see which files reached ffmpeg and with what argv.
Then each file must have landed in its class in the failure ledger, or have been featurised.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from recengine.analysis.decode import DecodeFailure, pid_alive
from recengine.library import Scanner, ScanReport
from recengine.testing import encode, tone

from .bad_inputs import (
    EXPECTED,
    PLAYLISTS,
    SILENT_MINUTES,
    SPECIAL,
    VANISHING,
    fake_ffmpeg_env,
    hanging_and_flooding,
    make_corpus,
    readable_as_this_user,
)
from .conftest import make_engine
from .fakes import ffmpeg_fake
from .fakes.decoding import decode

REPO = Path(__file__).resolve().parent.parent


# An extractor in a drop-in plugin folder: the scan featurises with it whatever the built-in
# extractors are (worker processes load the same folder).
PROBE_PLUGIN = """
import numpy as np
import recengine


class Probe:
    name = "badinput_probe"
    version = 1
    dim = 2

    def extract(self, samples, sr):
        x = samples.astype(np.float64)
        return np.array([np.sqrt(np.mean(x * x)), np.abs(x).max()], dtype=np.float32)


@recengine.hookimpl
def register_extractors(register):
    register(Probe())
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "badinput_probe.py").write_text(PROBE_PLUGIN)
    return str(folder)


@pytest.fixture(scope="module")
def fake_ffmpeg(tmp_path_factory):
    """The logging ffmpeg, set as RECENGINE_FFMPEG for this module (workers inherit it)."""
    bin_dir = tmp_path_factory.mktemp("fakebin")
    env = fake_ffmpeg_env(bin_dir)
    with pytest.MonkeyPatch.context() as mp:
        for var, value in env.items():
            mp.setenv(var, value)
        for var in (
            "RECENGINE_CONFIG",
            "RECENGINE_DISABLE_PLUGINS",
            "RECENGINE_LOAD_PLUGINS",
            "RECENGINE_FAULTPOINT",
        ):
            mp.delenv(var, raising=False)
        exe, log, piddir = Path(env["RECENGINE_FFMPEG"]), Path(env["FAKE_FFMPEG_LOG"]), Path(env["FAKE_FFMPEG_PIDDIR"])
        real = env["FAKE_FFMPEG_REAL"]
        yield SimpleNamespace(exe=exe, log=log, piddir=piddir, real=real)


def calls(fake) -> list[list[str]]:
    """The decoding calls (the tests' own encoding goes through the same binary)."""
    return [c["argv"] for c in ffmpeg_fake.read_log(fake.log) if c["argv"][-1] == "pipe:1"]


def calls_for(fake, path: Path) -> list[list[str]]:
    url = "file:" + str(path)
    return [argv for argv in calls(fake) if url in argv]


def run_scan(engine) -> tuple[ScanReport, Scanner, float]:
    scanner = engine.scanner(progress=False)
    report = ScanReport()
    started = time.monotonic()
    scanner.reconcile(report)
    reconcile_s = time.monotonic() - started
    scanner.featurise(report, workers=2)
    report.seconds = time.monotonic() - started
    return report, scanner, reconcile_s


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, fake_ffmpeg, plugin_dir):
    """The corpus after one scan (reconcile, then one file deleted before featurising)."""
    base = tmp_path_factory.mktemp("badinput")
    root = base / "library"
    make_corpus(root)
    engine = make_engine(base, [root], plugin_dirs=[plugin_dir])
    try:
        scanner = engine.scanner(progress=False)
        report = ScanReport()
        started = time.monotonic()
        scanner.reconcile(report)
        reconcile_s = time.monotonic() - started
        (root / VANISHING).unlink()  # T27k: gone between the event (reconcile) and the decode
        scanner.featurise(report, workers=2)
        report.seconds = time.monotonic() - started
        yield SimpleNamespace(engine=engine, root=root, report=report, reconcile_s=reconcile_s, base=base)
    finally:
        engine.close()
        (root / "locked.mp3").chmod(0o644)


def outcome(engine, root: Path) -> dict[str, str]:
    """relpath -> "ok" or the failure reason, for every present track."""
    failures = {f.path: f.reason for f in engine.catalog.failures()}
    out = {}
    for track in engine.catalog.tracks():
        path = f"{root}/{track.relpath}"
        out[track.relpath] = failures.get(path, "ok" if track.status == "ok" else track.status)
    return out


# --- T27 -------------------------------------------------------------------------------------------------


def test_scan_finishes_and_counts(scanned):
    report = scanned.report
    assert not report.interrupted
    assert report.added == len(EXPECTED) + 1  # + the file that vanished before its decode
    assert sum(report.failed.values()) + report.featurised == len(EXPECTED)


@pytest.mark.parametrize("relpath", sorted(EXPECTED))
def test_file_lands_in_its_class(scanned, relpath):
    got = outcome(scanned.engine, scanned.root)
    assert got.get(relpath) in EXPECTED[relpath], f"{relpath!r}: {got.get(relpath)}"


def test_every_file_accounted_for(scanned):
    """Invariant 3: each audio file is featurised or in the ledger (the vanished one aside)."""
    got = outcome(scanned.engine, scanned.root)
    assert set(got) == set(EXPECTED) | {VANISHING}
    for f in scanned.engine.catalog.failures():
        assert f.message and "\n" not in f.reason


def test_downmixed_samples_stay_in_range(scanned):
    """The 6-channel WAV (every channel at 0.5) reached the extractors as a mean, not a sum."""
    engine = scanned.engine
    track = engine.catalog.track_by_path(scanned.root / "wav/6ch.wav")
    vectors = engine.catalog.features_of(track.track_id, engine.extractor_versions())
    rms, peak = vectors["badinput_probe"]
    assert 0.45 < peak <= 1.0 and rms == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_vanished_file_has_no_failure_row(scanned):
    """T27k: ENOENT is "vanished": not a property of the file, so no ledger row."""
    assert not any(f.path.endswith(VANISHING) for f in scanned.engine.catalog.failures())
    assert outcome(scanned.engine, scanned.root)[VANISHING] != "ok"


def test_special_files_are_skipped_quickly(scanned, fake_ffmpeg):
    """T27i: FIFO, socket and a symlink to /dev/zero never become tracks, never reach ffmpeg, never
    block; decoding one directly fails at once (a FIFO is never opened)."""
    got = outcome(scanned.engine, scanned.root)
    assert not set(SPECIAL) & set(got)
    assert scanned.reconcile_s < 5
    for rel in SPECIAL:
        path = scanned.root / rel
        assert not calls_for(fake_ffmpeg, path)
        started = time.monotonic()
        with pytest.raises(DecodeFailure) as e:
            decode(path, ffmpeg=str(fake_ffmpeg.exe))
        assert time.monotonic() - started < 1
        assert e.value.reason == "not_audio"


def test_mode_000_file(scanned):
    """T27j. As root, mode 000 does not stop reading (os.access says so), so the file is featurised;
    as another user it is a `permission` failure."""
    reason = outcome(scanned.engine, scanned.root)["locked.mp3"]
    assert reason == ("ok" if readable_as_this_user(scanned.root / "locked.mp3") else "permission")


def test_silent_long_file_decodes_only_windows(scanned, fake_ffmpeg):
    """T27g: a long silent file: one ffmpeg call, seeking to the windows, never the whole file."""
    config = scanned.engine.config
    windows, window_s = config["analysis.windows"], config["analysis.window_s"]
    argvs = calls_for(fake_ffmpeg, scanned.root / "silent.flac")
    assert len(argvs) == 1
    argv = argvs[0]
    lengths = [float(argv[i + 1]) for i, a in enumerate(argv) if a == "-t"]
    seeks = [float(argv[i + 1]) for i, a in enumerate(argv) if a == "-ss"]
    assert len(lengths) == windows and sum(lengths) <= windows * window_s + 1e-6
    assert len(seeks) == windows and all(0 < s < SILENT_MINUTES * 60 for s in seeks)
    assert not any(
        t.track_id for t in scanned.engine.catalog.tracks(status="ok") if t.relpath == "silent.flac"
    )


def test_ffmpeg_argv_hygiene(scanned, fake_ffmpeg):
    """Rule 4: every call has -nostdin, a file: URL with an absolute path inside the library, and
    the protocol whitelist before every input."""
    argvs = calls(fake_ffmpeg)
    assert argvs
    for argv in argvs:
        assert "-nostdin" in argv
        inputs = [argv[i + 1] for i, a in enumerate(argv) if a == "-i"]
        assert inputs and all(u.startswith("file:/") for u in inputs)
        assert argv.count("-protocol_whitelist") == len(inputs)
        assert all(u[len("file:") :].startswith(str(scanned.root) + "/") for u in inputs)


def test_playlists_never_reach_ffmpeg(scanned, fake_ffmpeg):
    """T27l: playlists and cue sheets are not audio extensions; a playlist with an audio name is
    refused by its signature before ffmpeg (whose HLS demuxer would follow it)."""
    got = outcome(scanned.engine, scanned.root)
    assert not set(PLAYLISTS) & set(got)
    blob = json.dumps(calls(fake_ffmpeg))
    for needle in ("/etc/passwd", ".m3u8", ".cue", ".pls", "hls.mp3", "cover.mp3"):
        assert needle not in blob


def test_failures_cli_lists_the_ledger(scanned, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "library": {"folders": [str(scanned.root)]},
                "data_dir": str(scanned.engine.config.data_dir),
                "plugin_dirs": [],
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECENGINE_")}
    out = subprocess.run(
        [sys.executable, "-m", "recengine", "-c", str(config), "failures", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    ledger = scanned.engine.catalog.failures()
    failed = [r for r in rows if r["kind"] == "failed"]
    assert len(failed) == len(ledger) > 0
    assert {r["reason"] for r in failed} >= {"empty", "decode_error", "not_audio", "no_audio_stream", "silent"}
    skipped = {os.path.relpath(r["path"], scanned.root): r["reason"] for r in rows if r["kind"] == "skipped"}
    assert skipped == {"special/fifo.wav": "fifo", "special/socket.wav": "socket", "special/zero.wav": "symlink_outside"}
    plain = subprocess.run(
        [sys.executable, "-m", "recengine", "-c", str(config), "failures"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert plain.returncode == 0 and "silent.flac" in plain.stdout


def test_good_file_added_later_is_featurised(scanned, fake_ffmpeg):
    """After the bad scan, a new good file is featurised by the next scan; failed files are not
    decoded again while unchanged."""
    before = len(calls(fake_ffmpeg))
    encode(tone(660.0, 2.0), scanned.root / "late.ogg")
    report = scanned.engine.scan(workers=2)
    assert report.added == 1 and report.featurised == 1 and not report.failed
    assert outcome(scanned.engine, scanned.root)["late.ogg"] == "ok"
    assert len(calls(fake_ffmpeg)) == before + 1


# --- T28, T29: ffmpeg that hangs or floods ---------------------------------------------------------------


def test_hanging_and_flooding_ffmpeg(tmp_path, fake_ffmpeg, engine_factory, plugin_dir):
    """T28: an ffmpeg that hangs and ignores SIGTERM (with a child doing the same) gets `timeout`
    after analysis.timeout_s, its whole group is killed, later files flow. T29: an ffmpeg writing
    endless bytes is cut off at the cap and killed."""
    for pid_file in fake_ffmpeg.piddir.iterdir():
        pid_file.unlink()
    root = tmp_path / "lib"
    hanging_and_flooding(root)
    for i in range(4):
        encode(tone(300.0 + 100 * i, 1.5), root / f"c{i}.flac")
    engine = engine_factory([root], analysis__timeout_s=2.0, plugin_dirs=[plugin_dir])
    started = time.monotonic()
    report = engine.scan(workers=2)
    elapsed = time.monotonic() - started
    got = outcome(engine, root)
    assert got["a_HANGME.mp3"] == "timeout"
    assert got["b_FLOODME.wav"] == "decode_error"
    assert all(got[f"c{i}.flac"] == "ok" for i in range(4))
    assert report.featurised == 4
    assert elapsed < 30
    pids = [int(p.read_text()) for p in fake_ffmpeg.piddir.iterdir()]
    assert len(pids) >= 3  # the hanging fake, its child, the flooding fake
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if pid_alive(p)], "orphaned ffmpeg processes"
    flood = [f for f in engine.catalog.failures() if f.path.endswith("b_FLOODME.wav")][0]
    assert "more than" in flood.message


# --- T30: no ffmpeg ---------------------------------------------------------------------------------------


def test_scan_without_ffmpeg_fails_fast(tmp_path):
    root = tmp_path / "lib"
    encode(tone(440.0, 1.5), root / "a.wav")
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"library": {"folders": [str(root)]}, "data_dir": str(data), "plugin_dirs": []})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECENGINE_", "FAKE_FFMPEG"))}
    env["RECENGINE_FFMPEG"] = "/nonexistent/ffmpeg"
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "recengine", "-c", str(config), "scan"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert out.returncode != 0
    assert elapsed < 2.0, f"took {elapsed:.1f} s"
    assert "install" in out.stderr and "ffmpeg" in out.stderr
    db = data / "catalog.db"
    if db.exists():
        import sqlite3

        with sqlite3.connect(db) as con:
            for table in ("tracks", "roots", "failures"):
                assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


# --- T32: repeated scans leave no temp files -------------------------------------------------------------


def test_repeated_scans_leave_no_temp_files(scanned, tmp_path, monkeypatch, plugin_dir):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    counts = []
    for i in range(3):
        engine = make_engine(tmp_path / f"run{i}", [scanned.root], plugin_dirs=[plugin_dir])
        try:
            report, _, _ = run_scan(engine)
            assert sum(report.failed.values()) + report.featurised == report.added
        finally:
            engine.close()
        stale = list((tmp_path / f"run{i}").rglob("*.tmp"))
        assert not stale
        counts.append(sum(1 for _ in tmp.rglob("*")))
    assert counts[0] == counts[1] == counts[2], counts
    assert counts[0] <= 1, sorted(os.listdir(tmp))  # at most multiprocessing's own per-process dir


def test_corpus_files_left_unmodified(scanned):
    """Scanning never writes into the library (apart from the root marker)."""
    for rel in EXPECTED:
        path = scanned.root / rel
        assert path.exists() and stat.S_ISREG(os.lstat(path).st_mode)
    leftovers = [
        p.name for p in scanned.root.iterdir() if p.name.startswith(".") and p.name != ".recengine-root"
    ]
    assert not leftovers
