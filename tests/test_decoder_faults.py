"""Failures that are the engine's or a plugin's, not the file's, never reach the failure ledger
(issue 12 item 2): a raising plugin decoder falls through to the built-in one; a decoder's bad
answer and a worker that crashes twice leave the track pending; a script without a ``__main__``
guard fails clearly instead of recording its tracks as ``decode_error``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from recengine.testing import encode, tone

from .conftest import make_engine

RAISING = """
import recengine

@recengine.hookimpl
def load_audio(path, config):
    raise RuntimeError("this decoder plugin is broken")
"""

BAD_ANSWER = """
import recengine

@recengine.hookimpl
def load_audio(path, config):
    return {"samples": "not audio"}
"""

CRASHING = """
import os
import recengine

@recengine.hookimpl
def load_audio(path, config):
    os._exit(3)
"""


def _library(tmp_path: Path, n: int = 3) -> Path:
    lib = tmp_path / "lib"
    for i in range(n):
        encode(tone(300.0 + 100 * i, 1.5), lib / f"t{i}.wav")
    return lib


def _plugin(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755)
    (folder / "decoder_plugin.py").write_text(source)
    return folder


def test_raising_plugin_decoder_falls_through_to_the_builtin(tmp_path):
    lib = _library(tmp_path)
    engine = make_engine(tmp_path, [lib], plugin_dirs=[str(_plugin(tmp_path, RAISING))])
    try:
        report = engine.scan()
        assert report.featurised == 3 and not report.failed
        assert engine.catalog.failures() == []
    finally:
        engine.close()


def test_bad_decoder_answer_is_not_the_files_fault(tmp_path):
    lib = _library(tmp_path)
    engine = make_engine(tmp_path, [lib], plugin_dirs=[str(_plugin(tmp_path, BAD_ANSWER))])
    try:
        report = engine.scan()
        assert report.featurised == 0 and not report.failed
        assert engine.catalog.failures() == []
        assert len(engine.scanner(progress=False).jobs()) == 3  # still pending
    finally:
        engine.close()


def test_worker_crashing_twice_leaves_the_track_pending(tmp_path):
    lib = _library(tmp_path, n=2)
    engine = make_engine(tmp_path, [lib], plugin_dirs=[str(_plugin(tmp_path, CRASHING))])
    try:
        report = engine.scan()
        assert report.featurised == 0 and not report.failed
        assert engine.catalog.failures() == []
        assert len(engine.scanner(progress=False).jobs()) == 2
    finally:
        engine.close()


def test_script_without_main_guard_fails_clearly_and_records_nothing(tmp_path):
    """The README's "From Python" snippet as a script: worker processes import the main script
    (forkserver), which scans again inside them; the scan stops with a message naming the guard."""
    lib = _library(tmp_path, n=2)
    data = tmp_path / "data"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        {"library": {"folders": [str(lib)]}, "data_dir": str(data), "plugin_dirs": []}))
    script = tmp_path / "snippet.py"
    script.write_text(textwrap.dedent("""
        from recengine import Engine

        with Engine.open("config.yaml") as engine:
            engine.scan()
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECENGINE_")}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode != 0
    assert "__main__" in out.stderr, out.stderr[-2000:]
    with sqlite3.connect(data / "catalog.db") as con:
        assert con.execute("SELECT count(*) FROM failures").fetchone()[0] == 0
