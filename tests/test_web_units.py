"""The web server's parts on their own: the token, loopback detection, the browser player's rules,
the map's projection, starting and stopping, and ``recengine serve`` refusing an open address."""

from __future__ import annotations

import json
import socket
import stat
import threading
import time

import numpy as np
import pytest

from recengine.cli import main
from recengine.models import HistoryEvent, Track
from recengine.web import TokenRefused, start_server
from recengine.web.auth import TOKEN_ENV, load_token
from recengine.web.mapview import GRID, fit_axes, prepare
from recengine.web.player import BrowserPlayers
from recengine.web.settings import WebSettings

from .conftest import make_engine


def settings(tmp_path, host="127.0.0.1", token=None, port=0) -> WebSettings:
    return WebSettings(enabled=True, host=host, port=port, token=token, data_dir=tmp_path / "data")


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.20", False), ("music.lan", False)])
def test_loopback(tmp_path, host, loopback):
    assert settings(tmp_path, host).loopback is loopback


def test_token_generated_once_with_mode_0600_then_reused(tmp_path):
    first = load_token(settings(tmp_path), env={})
    assert first.generated and len(first.value) >= 32
    path = tmp_path / "data" / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_token(settings(tmp_path), env={})
    assert again.value == first.value and not again.generated


def test_token_from_env_before_config_and_open_address_needs_one(tmp_path):
    assert load_token(settings(tmp_path, token="from-config"), env={TOKEN_ENV: "from-env"}).value == "from-env"
    assert load_token(settings(tmp_path, token="from-config"), env={}).value == "from-config"
    with pytest.raises(TokenRefused, match="0.0.0.0"):
        load_token(settings(tmp_path, host="0.0.0.0"), env={})
    assert load_token(settings(tmp_path, host="0.0.0.0", token="t"), env={}).value == "t"
    assert not (tmp_path / "data" / "api-token").exists()


def test_session_and_csrf_values_differ_from_the_token(tmp_path):
    token = load_token(settings(tmp_path, token="secret"), env={})
    assert len({token.value, token.session, token.csrf}) == 3
    assert token.matches("secret") and not token.matches("secret ") and not token.matches("")


def track(tid: int, duration: float | None) -> Track:
    return Track(tid, "/music", f"t{tid}.flac", duration=duration, status="ok")


def player() -> tuple[BrowserPlayers, list[HistoryEvent]]:
    recorded: list[HistoryEvent] = []
    return BrowserPlayers(recorded.append), recorded


def test_browser_player_follows_the_playback_rules():
    players, recorded = player()
    long = track(1, 600.0)  # play after 4 minutes (the cap), not half
    players.report("s", "ann", long, "start", 0)
    players.report("s", "ann", long, "playing", 200)
    assert recorded == []
    players.report("s", "ann", long, "playing", 241)
    assert [(e.kind, e.listened_s, e.source) for e in recorded] == [("play", 241, "web")]
    players.report("s", "ann", long, "left", 300)
    assert len(recorded) == 1  # left after the play: nothing more

    short = track(2, 100.0)  # half = 50 s
    players.report("s", "ann", short, "start", 0)
    players.report("s", "ann", short, "paused", 20)
    players.report("s", "ann", short, "left", 20)
    assert [(e.kind, e.track_id, e.listened_s) for e in recorded[1:]] == [("skip", 2, 20)]

    middle = track(3, 300.0)  # left after 30 s but before 150 s: neither
    players.report("s", "ann", middle, "start", 0)
    players.report("s", "ann", middle, "left", 90)
    assert len(recorded) == 2

    ended = track(4, 20.0)  # a short track played to its end
    players.report("s", "ann", ended, "start", 0)
    players.report("s", "ann", ended, "ended", 20)
    assert [(e.kind, e.track_id) for e in recorded[2:]] == [("play", 4)]


def test_browser_player_a_new_track_leaves_the_last_and_sessions_are_apart():
    players, recorded = player()
    players.report("a", "ann", track(1, 200.0), "start", 0)
    players.report("b", "bob", track(2, 200.0), "start", 0)
    players.report("a", "ann", track(1, 200.0), "playing", 5)
    players.report("a", "ann", track(3, 200.0), "start", 0)  # next track after 5 s: a skip of 1
    assert [(e.user, e.kind, e.track_id, e.listened_s) for e in recorded] == [("ann", "skip", 1, 5)]
    players.report("b", "bob", track(2, 200.0), "playing", 100)
    assert [(e.user, e.kind, e.track_id) for e in recorded[1:]] == [("bob", "play", 2)]


def test_map_axes_separate_clusters_along_the_first_axis():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16)) * 0.1 + np.r_[[3.0], np.zeros(15)]
    b = rng.normal(size=(200, 16)) * 0.1 - np.r_[[3.0], np.zeros(15)]
    rows = prepare(np.vstack([a, b]).astype(np.float32), "euclidean")
    axes = fit_axes(rows, built_at=1.0)
    xy = axes.place(rows)
    assert xy.min() >= 0 and xy.max() <= GRID
    assert abs(xy[:200, 0].mean() - xy[200:, 0].mean()) > GRID / 2
    assert np.array_equal(fit_axes(rows, built_at=1.0).place(rows), xy)  # deterministic
    assert fit_axes(rows[:1], built_at=1.0).place(rows[:1]).shape == (1, 2)  # one track still draws


def test_server_stops_within_two_seconds_and_a_busy_port_is_an_error(tmp_path, styled):
    stop = threading.Event()
    handle = start_server(styled, settings(tmp_path, token="t"), stop)
    with socket.create_connection(("127.0.0.1", handle.port)) as idle:  # a keep-alive client left open
        with pytest.raises(OSError):
            start_server(styled, settings(tmp_path, token="t", port=handle.port), threading.Event())
        started = time.monotonic()
        stop.set()
        handle.thread.join(5)
        assert not handle.running and time.monotonic() - started < 2.5
        assert idle.recv(1) == b""


def test_serve_refuses_an_open_address_without_a_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: ['{tmp_path}']}}\ndata_dir: '{tmp_path / 'data'}'\n")
    assert main(["--config", str(config), "serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "needs a token" in capsys.readouterr().err
    assert main(["--config", str(config), "serve", "--port", "70000"]) == 2


def test_start_server_refuses_before_binding(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    engine = make_engine(tmp_path, [tmp_path])
    try:
        with pytest.raises(TokenRefused):
            start_server(engine, settings(tmp_path, host="0.0.0.0"), threading.Event())
    finally:
        engine.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_daemon_serves_the_api_and_stops_it(tmp_path, styled_library, styled_data):
    import http.client
    import shutil

    from recengine.service import Daemon

    shutil.copytree(styled_data, tmp_path / "data")
    port = free_port()
    engine = make_engine(tmp_path, [styled_library], http__port=port, http__token="daemon-token")
    daemon = Daemon(engine)
    runner = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    runner.start()
    try:
        def status():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/v1/status", headers={"Authorization": "Bearer daemon-token"})
                answer = conn.getresponse()
                return answer.status == 200 and json.loads(answer.read())
            except OSError:
                return None

        from recengine.testing import wait_for

        data = wait_for(lambda: (s := status()) and s["running"] and s, timeout=60, what="the daemon's API")
        assert data["catalog"]["ok"] == 15
    finally:
        daemon.stop()
        runner.join(30)
        engine.close()
    assert not runner.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_map_labels_number_names_that_are_not_utf8_as_the_catalog_stores_them(tmp_path):
    import os
    from pathlib import Path

    from recengine.catalog.browse import Browse

    from .bad_inputs import non_utf8_name

    lib = tmp_path / "lib"
    odd = Path(os.fsdecode(os.fsencode(lib) + b"/d\xe9mo"))
    odd.mkdir(parents=True)
    non_utf8_name(odd, b"\xff one.wav", 400.0)
    non_utf8_name(odd, b"\xfe two.wav", 600.0)
    (lib / "plain").mkdir()
    non_utf8_name(lib / "plain", b"three.wav", 800.0)
    with make_engine(tmp_path, [lib]) as engine:
        engine.scan()
        labels = Browse(engine.catalog).map_labels()
        by_id = {t.track_id: t for t in engine.catalog.tracks()}
    assert sorted(labels.ids) == sorted(by_id) and len(labels.ids) == 3
    folder_of = {tid: labels.folders[f] for tid, f in zip(labels.ids, labels.folder, strict=True)}
    assert folder_of == {tid: t.relpath.rpartition("/")[0] for tid, t in by_id.items()}
    assert sorted(labels.folders) == ["d\udce9mo", "plain"]


def test_no_index_yet_answers_503_with_retry_after_and_what_to_run(tmp_path, styled_library, styled_data):
    """The catalog is analysed, but no index was built for these weights yet (IndexNotReady): the
    server's state, not a missing track (404)."""
    import http.client
    import shutil

    from recengine.web import WebSettings, start_server

    shutil.copytree(styled_data, tmp_path / "data")
    engine = make_engine(tmp_path, [styled_library], http__port=0, http__token="t", index={"weights": {"timbre": 3.0}})
    stop = threading.Event()
    handle = start_server(engine, WebSettings.from_config(engine.config), stop)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
        conn.request("GET", "/api/v1/similar?track=1&n=5", headers={"Authorization": "Bearer t"})
        answer = conn.getresponse()
        body = json.loads(answer.read())
        assert answer.status == 503 and answer.getheader("Retry-After") == "30"
        assert "run `recengine scan`" in body["error"]
    finally:
        handle.stop()
        engine.close()


def test_names_that_are_not_utf8_come_back_from_the_api_as_their_bytes(tmp_path):
    """Tracks, similar, failures and the map answer 200 with valid UTF-8 JSON whose ``\\udcXX``
    escapes give the file name's bytes back (os.fsencode), instead of a 500 from the encoder."""
    import http.client
    import os

    from recengine.web import WebSettings, start_server

    from .bad_inputs import non_utf8_name

    lib = tmp_path / "lib"
    lib.mkdir()
    good = [non_utf8_name(lib, b"\xff good %d.wav" % i, 300.0 + 150 * i) for i in range(3)]
    (lib / os.fsdecode(b"\xfe broken.mp3")).write_bytes(b"\x00" * 64)
    with make_engine(tmp_path, [lib], http__port=0, http__token="t") as engine:
        engine.scan()
        handle = start_server(engine, WebSettings.from_config(engine.config), threading.Event())
        try:
            def get(path):
                conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=20)
                conn.request("GET", path, headers={"Authorization": "Bearer t"})
                answer = conn.getresponse()
                body = answer.read()
                assert answer.status == 200, (path, answer.status, body[:200])
                return json.loads(body.decode("utf-8"))

            tracks = get("/api/v1/tracks?limit=10")["tracks"]
            assert {os.fsencode(t["path"]) for t in tracks if t["status"] == "ok"} == {os.fsencode(p) for p in good}
            seed = next(t for t in tracks if t["status"] == "ok")
            similar = get(f"/api/v1/similar?track={seed['id']}&n=2")["tracks"]
            assert len(similar) == 2 and all(os.fsencode(t["relpath"]).startswith(b"\xff good") for t in similar)
            failures = get("/api/v1/failures")["failures"]
            assert [os.fsencode(f["path"]).rpartition(b"/")[2] for f in failures] == [b"\xfe broken.mp3"]
            assert get("/api/v1/map")["count"] == 3
        finally:
            handle.stop()
