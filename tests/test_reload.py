"""Re-reading the config while running: SIGHUP makes a running daemon write a recipe added to the
file, a file that does not validate keeps the running config, and systemd hears READY, RELOADING
and STOPPING."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recengine.engine import Engine
from recengine.service.reload import ConfigReloader, read_config
from recengine.testing import wait_for

RECIPE_A = {"name": "First", "kind": "user", "size": 5, "output": "out", "writers": ["m3u8"]}
RECIPE_B = {"name": "Second", "kind": "radio", "size": 5, "output": "out", "writers": ["m3u8"]}


def write_config(path: Path, library: Path, recipes: list[dict], **extra) -> None:
    config = {"library": {"folders": [str(library)]}, "data_dir": str(path.parent / "data"),
              "plugin_dirs": [], "scan": {"workers": 2}, "http": {"enabled": False},
              "outputs": {"out": {"dir": str(path.parent / "out")}}, "playlists": recipes, **extra}
    path.write_text(yaml.safe_dump(config))


def test_a_reload_adopts_recipes_outputs_and_weights_and_keeps_the_catalog(tmp_path, styled_library):
    path = tmp_path / "config.yaml"
    write_config(path, styled_library, [RECIPE_A])
    with Engine.open(path) as engine:
        engine.scan()
        catalog, index = engine.catalog, engine.index
        assert index.store.generation is not None
        reloader = ConfigReloader()
        assert not reloader.poll(engine)  # nothing asked for
        write_config(path, styled_library, [RECIPE_A, RECIPE_B], index={"weights": {"timbre": 3.0}})
        reloader.request()
        assert reloader.poll(engine) and not reloader.pending
        assert [r.name for r in engine.recipes] == ["First", "Second"]
        assert engine.config["index.weights"] == {"timbre": 3.0}
        assert engine.catalog is catalog and engine.index is not index
        assert engine.index.weights["timbre"] == 3.0
        assert engine.index.store.generation is None  # made with other weights: rebuilt, not reused
        assert engine.index.build() is not None
        engine.playlists.refresh(["Second"], force=True)
        assert (tmp_path / "out" / "Second.m3u8").exists()


def test_a_config_that_fails_on_reload_is_logged_and_the_running_one_kept(tmp_path, styled_library, caplog):
    path = tmp_path / "config.yaml"
    write_config(path, styled_library, [RECIPE_A])
    with Engine.open(path) as engine:
        config = engine.config
        reloader = ConfigReloader()
        for broken in ("library: {folder: [/srv]}\n",                     # unknown key
                       "playlists: [{name: X, kind: radioo}]\n",          # a recipe mistake
                       "playlists: [\n"):                                 # not YAML
            path.write_text(broken)
            reloader.request()
            with caplog.at_level(logging.ERROR, logger="recengine.service.reload"):
                assert not reloader.poll(engine)
            assert engine.config is config and [r.name for r in engine.recipes] == ["First"]
            assert f"config reload failed, the running config is kept: {path}" in caplog.text
            caplog.clear()
        path.unlink()
        reloader.request()
        assert not reloader.poll(engine) and engine.config is config


def test_the_defaults_have_no_file_to_re_read(tmp_path):
    with Engine.open(None, raw={"data_dir": str(tmp_path / "d"), "plugin_dirs": []}) as engine:
        with pytest.raises(Exception, match="no file to re-read"):
            read_config(engine)


# --- the daemon -----------------------------------------------------------------------------------


def test_sighup_writes_an_added_recipe_without_a_restart_and_a_broken_file_keeps_the_old(
        tmp_path, styled_library):
    path = tmp_path / "config.yaml"
    write_config(path, styled_library, [RECIPE_A], daemon={"settle_s": 0.2, "reconcile_interval_s": 3600})
    notify = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(notify))
    server.settimeout(60)
    log = tmp_path / "daemon.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "RECENGINE_LOAD_PLUGINS": ""}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "recengine", "--config", str(path), "daemon"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        assert server.recv(256) == b"READY=1"
        out = tmp_path / "out"
        wait_for(lambda: (out / "First.m3u8").exists(), 60, "the first recipe's playlist")
        write_config(path, styled_library, [RECIPE_A, RECIPE_B], daemon={"settle_s": 0.2})
        proc.send_signal(signal.SIGHUP)
        assert re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=\d+", server.recv(256))
        assert server.recv(256) == b"READY=1"
        wait_for(lambda: (out / "Second.m3u8").exists(), 30, "the added recipe's playlist")
        path.write_text("playlists: [{name: Third, kind: radioo}]\n")
        proc.send_signal(signal.SIGHUP)
        assert server.recv(256).startswith(b"RELOADING=1") and server.recv(256) == b"READY=1"
        wait_for(lambda: "config reload failed, the running config is kept" in log.read_text(), 10, "the error")
        assert "playlists[0].kind" in log.read_text()
        assert proc.poll() is None  # still running on the old config
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert server.recv(256) == b"STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
