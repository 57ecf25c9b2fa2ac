"""The daemon syncs ``sources:`` by itself, each on its interval: a star in a real supysonic server
becomes a like without ``recengine sync``; a source that cannot be reached is one log line per try,
shown in ``recengine status``, and never stops the daemon."""

from __future__ import annotations

import argparse
import logging
import threading

import pytest
import yaml

from recengine.cli.library import cmd_status
from recengine.config import build_config, core_options
from recengine.service import Daemon, read_status
from recengine.sources import SubsonicClient, parse_sources
from recengine.testing import encode, tone, wait_for

from .conftest import make_engine
from .supysonic import free_port, supysonic_server


@pytest.fixture
def library(tmp_path):
    music = tmp_path / "music"
    for i, (artist, freq) in enumerate([("Ann", 220), ("Ann", 330), ("Bob", 440)]):
        encode(tone(freq, 2.0), music / artist / f"{i + 1:02d} Song {i + 1}.ogg",
               tags={"artist": artist, "title": f"Song {i + 1}", "album": f"{artist} album"})
    return music


def _likes(engine, user: str) -> list[str]:
    return sorted(engine.catalog.track(e.track_id).relpath for e in engine.catalog.events(user) if e.kind == "like")


def test_the_daemon_syncs_each_source_on_its_interval_and_a_dead_one_never_stops_it(
        tmp_path, library, monkeypatch, caplog, capsys):
    monkeypatch.setenv("SUPY_PASSWORD", "secret")
    caplog.set_level(logging.INFO, logger="recengine.service.sources")
    with supysonic_server(tmp_path / "supy", library) as url:
        client = SubsonicClient(url, "alice", password="secret")
        client.ping()
        songs = {s.path: s.id for s in client.songs()}
        sources = [
            {"name": "supy", "kind": "subsonic", "url": url, "user": "alice", "password": "${SUPY_PASSWORD}",
             "recengine_user": "zoe", "interval_s": 0.5},
            {"name": "gone", "kind": "subsonic", "url": f"http://127.0.0.1:{free_port()}", "user": "a",
             "password": "x", "interval_s": 0.3},
        ]
        engine = make_engine(tmp_path, [library], sources=sources, http__enabled=False, daemon__settle_s=0.2)
        daemon = Daemon(engine, status_interval_s=0.2)
        thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
        thread.start()
        try:
            wait_for(lambda: len(engine.catalog.tracks(present=True)) == 3, timeout=60, what="the start-up reconcile")
            client.call("star", [("id", songs["Bob/03 Song 3.ogg"])])
            wait_for(lambda: _likes(engine, "zoe") == ["Bob/03 Song 3.ogg"], timeout=30,
                     what="the daemon's sync to bring the star in")

            status = wait_for(lambda: (s := read_status(engine.config.data_dir)) and s.get("sources", {})
                              .get("gone", {}).get("failures", 0) >= 2 and s["sources"]["supy"]["last_ok"] and s,
                              timeout=30, what="status.json with both sources")
            supy, gone = status["sources"]["supy"], status["sources"]["gone"]
            assert supy["last_error"] is None and supy["interval_s"] == 0.5 and supy["last_report"].startswith("supy: 3 songs")
            assert gone["last_ok"] is None and "cannot reach the server" in gone["last_error"]
            assert thread.is_alive() and daemon.state not in ("stopping", "retrying")

            failures = [r for r in caplog.records if r.getMessage().startswith("source gone: sync failed")]
            assert len(failures) >= 2
            assert all(r.levelno == logging.ERROR and r.exc_info is None and "\n" not in r.getMessage()
                       for r in failures)

            assert cmd_status(engine, argparse.Namespace(json=False)) == 0
            out = capsys.readouterr().out
            line = {ln.split(":")[0]: ln for ln in out.splitlines() if ln.startswith("source ")}
            assert "synced" in line["source supy"] and "never synced" not in line["source supy"]
            assert "never synced" in line["source gone"] and "cannot reach the server" in line["source gone"]
            assert _likes(engine, "zoe") == ["Bob/03 Song 3.ogg"]  # synced many times, counted once
        finally:
            daemon.stop()
            thread.join(30)
            engine.close()
        assert not thread.is_alive() and daemon.exit_code == 0


def test_interval_default_comes_from_daemon_sync_interval_s(tmp_path):
    def parse(raw):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(raw))
        return parse_sources(build_config(path, core_options()), env={})

    entry = {"kind": "subsonic", "url": "http://x", "user": "a", "password": "p"}
    assert parse({"sources": [entry]})[0].interval_s == 3600.0
    assert parse({"sources": [entry], "daemon": {"sync_interval_s": 120}})[0].interval_s == 120.0
    assert parse({"sources": [{**entry, "interval_s": 30}], "daemon": {"sync_interval_s": 120}})[0].interval_s == 30.0


def test_a_reloaded_config_brings_new_sources_and_forgets_removed_ones(tmp_path):
    from recengine.service.reload import reconfigure
    from recengine.service.sources import SourceScheduler

    def config(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "plugin_dirs": [], "sources": [
            {"name": name, "kind": "subsonic", "url": "http://127.0.0.1:9", "user": "a", "password": "p"}]}))
        return build_config(path, core_options())

    with make_engine(tmp_path, []) as engine:
        reconfigure(engine, config("first"))
        scheduler = SourceScheduler(engine, threading.Event())
        scheduler._load()
        assert list(scheduler.health()["sources"]) == ["first"]
        reconfigure(engine, config("second"))
        scheduler._load()
        assert list(scheduler.health()["sources"]) == ["second"] and list(scheduler._due) == ["second"]
