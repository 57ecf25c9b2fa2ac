"""Issue 12, done when: one library holding every bad input the test suite makes
(tests/bad_inputs.py) plus ten good files. `recengine scan` featurises the good files, lists every
bad one with a reason (`recengine failures`: the ledger and the skipped entries) and exits 0; a
running daemon does the same live when the same files are dropped into the folder it watches,
and keeps running.

Every ffmpeg call goes through the logging stand-in (tests/fakes/ffmpeg_fake.py), so the files
named HANGME and FLOODME make it hang (ignoring SIGTERM) or flood its pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recengine.catalog import Catalog
from recengine.testing import wait_for

from .bad_inputs import fake_ffmpeg_env, make_every_bad_input, make_good, unlock
from .daemons import DaemonRun, check_invariants

#: The scan and the daemon analyse alike: the default windows, and what the hanging ffmpeg costs.
ANALYSIS = {"windows": 3, "window_s": 20.0, "timeout_s": 3.0}


@pytest.fixture(scope="module")
def fake_env(tmp_path_factory) -> dict[str, str]:
    return fake_ffmpeg_env(tmp_path_factory.mktemp("fakebin"))


@pytest.fixture
def library(tmp_path, fake_env, monkeypatch):
    """Builds the library in ``folder`` (with the fake ffmpeg in the environment, as the tests'
    own encoding goes through it); returns (expected outcomes of the bad inputs, good files)."""
    for var, value in fake_env.items():
        monkeypatch.setenv(var, value)
    made: list[Path] = []

    def build(folder: Path) -> tuple[dict[str, set[str]], list[Path]]:
        made.append(folder)
        expected = make_every_bad_input(folder, tmp_path / "outside")
        return expected, make_good(folder / "good")

    yield build
    for folder in made:
        unlock(folder)


def cli_env(fake_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECENGINE_")}
    # the strictest terminal: a name that is not UTF-8 must still print (as its bytes)
    return {**env, **fake_env, "PYTHONIOENCODING": "utf-8:strict"}


def cli(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recengine", "--config", str(config), *args],
                          capture_output=True, timeout=180, env=env)


def listed(config: Path, env: dict[str, str], root: Path) -> dict[str, str]:
    """relpath -> reason of every entry `recengine failures --json` lists (``skipped:<reason>`` for
    the skipped ones), after checking that the text listing names each of them too."""
    out = cli(config, "failures", "--json", env=env)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    rows = json.loads(out.stdout)
    text = cli(config, "failures", env=env)
    assert text.returncode == 0 and b"Traceback" not in text.stderr, text.stderr.decode(errors="replace")
    got = {}
    for row in rows:
        assert row["reason"] and row["message"], row
        assert os.fsencode(row["path"]) in text.stdout, row["path"]  # printed as its bytes
        rel = os.path.relpath(row["path"], root)
        got[rel] = f"skipped:{row['reason']}" if row["kind"] == "skipped" else row["reason"]
    return got


def analysed(data: Path) -> set[str]:
    catalog = Catalog(data / "catalog.db", migrate=False)
    try:
        return {t.relpath for t in catalog.tracks(status="ok")}
    finally:
        catalog.close()


def check_outcomes(expected: dict[str, set[str]], ok: set[str], bad: dict[str, str]) -> None:
    """Every entry landed where it may: featurised, or listed with its reason; nothing else is
    featurised or listed."""
    wrong = {}
    for rel, allowed in expected.items():
        got = "ok" if rel in ok else bad.get(rel, "nowhere")
        if got not in allowed:
            wrong[rel] = (got, sorted(allowed))
    assert not wrong, wrong
    assert not (set(bad) - set(expected)), sorted(set(bad) - set(expected))
    assert not {rel for rel in ok if not rel.startswith("good/")} - set(expected)


def searchable(config: Path, env: dict[str, str], good: list[Path]) -> set[str]:
    """The good files `recengine similar` finds near the first one."""
    out = cli(config, "similar", str(good[0]), "-n", "100", "--json", env=env)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return {r["path"] for r in json.loads(out.stdout)} & {str(p) for p in good}


def test_one_scan_of_every_bad_input_and_ten_good_files(tmp_path, library, fake_env):
    lib = tmp_path / "lib"
    expected, good = library(lib)
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"library": {"folders": [str(lib)]}, "data_dir": str(data), "plugin_dirs": [],
                                      "scan": {"workers": 2}, "analysis": ANALYSIS}))
    env = cli_env(fake_env)
    scan = cli(config, "scan", env=env)
    assert scan.returncode == 0, scan.stderr.decode(errors="replace")
    assert b"Traceback" not in scan.stderr
    summary = scan.stdout.decode()
    ok = analysed(data)
    bad = listed(config, env, lib)
    check_outcomes(expected, ok, bad)
    assert {f"good/{p.name}" for p in good} <= ok
    assert f"{len(ok)} featurised" in summary
    failed = sum(1 for reason in bad.values() if not reason.startswith("skipped:"))
    assert f"{failed} failed (" in summary and f"{len(bad) - failed} skipped (" in summary, summary
    assert searchable(config, env, good) == {str(p) for p in good[1:]}


@pytest.fixture
def daemon_run(tmp_path):
    runs: list[DaemonRun] = []

    def make(folders: list[Path], **overrides) -> DaemonRun:
        runs.append(DaemonRun(tmp_path, folders, **overrides))
        return runs[-1]

    yield make
    for run in runs:
        run.kill_all()


def test_the_daemon_does_the_same_live(tmp_path, library, fake_env, daemon_run):
    """The files are made inside the watched folder while the daemon runs (its timer reconcile
    is an hour away: what it finds, the watcher told it), most of them in folders it watches
    already, the rest in folders made meanwhile."""
    lib = tmp_path / "lib"
    for folder in ("special", "odd", "links", "wav"):
        (lib / folder).mkdir(parents=True)
    run = daemon_run([lib], daemon={"reconcile_interval_s": 3600}, analysis=ANALYSIS,
                     http={"enabled": False})
    run.env = cli_env(fake_env) | {"COUNT_LOG": str(run.count_log), "COUNT_SLEEP": "0", "RECENGINE_LOAD_PLUGINS": ""}
    proc = run.start()
    run.wait_running()
    expected, good = library(lib)
    names = {f"good/{p.name}" for p in good}

    seen: dict[str, object] = {}

    def settled():
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode}:\n{run.log()}")
        ok = analysed(run.data)
        pending = run.q("SELECT count(*) FROM tracks WHERE status='pending' AND missing_since IS NULL")[0][0]
        bad = listed(run.cfg, run.env, lib)
        seen.update(pending=pending, missing=sorted(rel for rel in [*expected, *names] if rel not in ok | set(bad)))
        return None if pending or seen["missing"] else (ok, bad)

    try:
        ok, bad = wait_for(settled, 60, "every file featurised or listed", interval=1.0)
    except AssertionError:
        raise AssertionError(f"neither featurised nor listed: {seen}\n{run.log()[-4000:]}") from None
    check_outcomes(expected, ok, bad)
    assert searchable(run.cfg, run.env, good) == {str(p) for p in good[1:]}
    assert proc.poll() is None, run.log()
    status = run.cli("status")
    assert status.returncode == 0 and "daemon: running" in status.stdout
    assert "Traceback" not in run.log(), run.log()[-3000:]
    rc, took = run.stop()
    assert rc == 0 and took < 10
    check_invariants(run)
