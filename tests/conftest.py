"""Shared fixtures: an isolated environment, generated audio, and engines on temp folders."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recengine.engine import Engine
from recengine.testing import chord, encode, noise, pulses, tone

PLUGIN_FIXTURES = Path(__file__).parent / "plugins"

#: After the last test, the pytest process gets this long (s) to exit before the exit guard says why
#: it did not and ends it with the session's own exit status.
EXIT_GRACE_S = 120.0
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config):
    """The exit guard: a run whose tests are over but whose process does not exit (a thread or a child
    process that something left behind, joined at interpreter shutdown) would hang CI until its own
    time limit. After :data:`EXIT_GRACE_S` this prints every thread's stack and every child process
    (what to fix), then exits with the status the tests earned, which a leak does not change."""
    status = config.stash.get(_EXIT_STATUS, 1)

    def guard() -> None:
        time.sleep(EXIT_GRACE_S)
        sys.stderr.write(f"\nexit guard: pytest did not exit {EXIT_GRACE_S:.0f} s after its last test; "
                         f"threads: {[t.name for t in threading.enumerate()]}; "
                         f"child processes: {_children()}\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(status)

    threading.Thread(target=guard, name="pytest-exit-guard", daemon=True).start()
    # and if even that thread cannot run (a hang in interpreter finalisation, where Python threads
    # are frozen): faulthandler's own C thread prints the stacks and exits (status 1)
    faulthandler.dump_traceback_later(EXIT_GRACE_S + 60, exit=True)


def _children() -> list[str]:
    """``pid command`` of this process's children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid():
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{stat.parent.name} {cmdline.strip()}")
        except (OSError, IndexError, ValueError):
            continue
    return found



@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads the developer's config, data dir or plugin environment variables."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))  # no developer's ~/.config/recengine
    for var in ("RECENGINE_CONFIG", "RECENGINE_DISABLE_PLUGINS", "RECENGINE_LOAD_PLUGINS",
                "RECENGINE_FAULTPOINT", "RECENGINE_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


def sounds(seconds: float = 3.0) -> dict[str, np.ndarray]:
    """A small palette of distinct sounds."""
    return {
        "tone_a440": tone(440, seconds),
        "tone_c262": tone(261.63, seconds),
        "chord_cmaj": chord([261.63, 329.63, 392.0], seconds),
        "noise_white": noise(seconds, seed=1),
        "noise_pink": noise(seconds, seed=2, colour="pink"),
        "pulses_120": pulses(120, seconds, seed=3),
    }


@pytest.fixture(scope="session")
def small_library(tmp_path_factory) -> Path:
    """Six sounds in five formats (30 files), built once per test session."""
    root = tmp_path_factory.mktemp("library")
    for i, (name, samples) in enumerate(sounds().items()):
        for fmt in (".wav", ".flac", ".mp3", ".ogg", ".opus"):
            encode(samples, root / name / f"{name}{fmt}", tags={"artist": f"Artist {i}", "title": name})
    return root


def make_engine(tmp_path: Path, folders: list[Path], **extra) -> Engine:
    # models_dir: no neural model unless a test asks for one (session fixtures run before the
    # per-test environment is isolated, so the default folder would differ between fixtures)
    raw = {"library": {"folders": [str(f) for f in folders]}, "data_dir": str(tmp_path / "data"),
           "plugin_dirs": [], "scan": {"workers": 2}, "models_dir": str(tmp_path / "no-models")}
    for key, value in extra.items():
        node = raw
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return Engine.open(None, raw=raw, entrypoints=False)


@pytest.fixture
def engine_factory(tmp_path):
    engines = []

    def factory(folders, **extra):
        engine = make_engine(tmp_path, folders, **extra)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


def copy_tree(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


STYLE_MAKERS = {
    "tones": lambda i: tone(220 * 2 ** (i / 12), 3.0) + tone(330 * 2 ** (i / 12), 3.0, amp=0.2),
    "noise": lambda i: noise(3.0, seed=10 + i, colour="pink" if i % 2 else "white"),
    "drums": lambda i: pulses(100 + 10 * i, 3.0, seed=20 + i),
}


@pytest.fixture(scope="session")
def styled_library(tmp_path_factory) -> Path:
    """Three styles of five tracks each (artist = style), in mixed formats."""
    root = tmp_path_factory.mktemp("styled")
    fmts = (".flac", ".ogg", ".mp3", ".wav", ".opus")
    for style, make in STYLE_MAKERS.items():
        for i in range(5):
            encode(make(i), root / style / f"{style}{i}{fmts[i]}",
                   tags={"artist": style.title(), "album": f"{style} album", "title": f"{style} {i}",
                         "genre": "Christmas" if (style, i) == ("tones", 4) else style})
    return root


@pytest.fixture(scope="session")
def styled_data(styled_library, tmp_path_factory) -> Path:
    """The styled library scanned once; tests get a copy of its data dir."""
    base = tmp_path_factory.mktemp("styled_data")
    engine = make_engine(base, [styled_library])
    try:
        report = engine.scan()
        assert report.featurised == 15, report.summary()
    finally:
        engine.close()
    return base / "data"


@pytest.fixture
def styled(tmp_path, styled_library, styled_data):
    """An engine on a private copy of the scanned styled library's data."""
    import shutil

    shutil.copytree(styled_data, tmp_path / "data")
    engine = make_engine(tmp_path, [styled_library])
    yield engine
    engine.close()
