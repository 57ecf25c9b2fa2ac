"""Playback backends: the play/skip rules, the command backend with a real script as its player,
the local backend's clear error on a headless box (and a real ffplay run with SDL's dummy audio
driver), and the backend plugins' registration and config keys."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from recengine import config as configmod
from recengine.analysis.decode import pid_alive
from recengine.default_plugins import command_backend, local_backend, mpd_backend
from recengine.default_plugins.command_backend import CommandBackend, expand_argv
from recengine.default_plugins.local_backend import LocalBackend, audio_device_problem
from recengine.models import HistoryEvent, Track
from recengine.playback.errors import BackendUnavailable
from recengine.playback.tracker import PLAY_CAP_S, PlayTracker, play_threshold
from recengine.plugin.manager import get_plugin_manager
from recengine.plugin.registry import collect
from recengine.testing import encode, tone, wait_for

pytestmark = pytest.mark.timeout(60)


# --- the rules ---------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_tracker(events: list, clock: FakeClock) -> PlayTracker:
    return PlayTracker(
        events.append, user="bob", source="test", clock=clock, wall=lambda: 1_700_000_000.0 + clock.now
    )


def track(track_id: int = 1, duration: float | None = 200.0) -> Track:
    return Track(track_id=track_id, root="/music", relpath=f"t{track_id}.flac", duration=duration)


def test_threshold_is_half_or_four_minutes():
    assert play_threshold(200) == 100
    assert play_threshold(600) == PLAY_CAP_S == 240
    assert play_threshold(None) == play_threshold(0) == 240


def test_play_recorded_once_when_half_is_heard():
    events, clock = [], FakeClock()
    t = make_tracker(events, clock)
    t.start(track(duration=200))
    start_wall = 1_700_000_000.0 + clock.now
    clock.advance(99)
    assert t.tick() == [] and t.seconds_to_play() == pytest.approx(1)
    clock.advance(1)
    [play] = t.tick()
    assert play == HistoryEvent(
        user="bob", track_id=1, kind="play", at=start_wall, listened_s=100.0, source="test"
    )
    clock.advance(90)
    assert t.tick() == [] and t.seconds_to_play() is None
    assert t.finish() == [] and t.leave() == []  # once per start, and nothing after the end
    assert [e.kind for e in events] == ["play"]


def test_long_track_counts_after_four_minutes_and_unknown_length_too():
    for duration in (3600.0, None):
        events, clock = [], FakeClock()
        t = make_tracker(events, clock)
        t.start(track(duration=duration))
        clock.advance(239)
        assert t.tick() == []
        clock.advance(1)
        assert [e.kind for e in t.tick()] == ["play"]


def test_skip_before_30_seconds_and_nothing_in_between():
    events, clock = [], FakeClock()
    t = make_tracker(events, clock)
    t.start(track(duration=200))
    clock.advance(12)
    [skip] = t.leave()
    assert (skip.kind, skip.listened_s) == ("skip", 12.0)

    t.start(track(2, duration=200))  # 45 s of a 200 s track: neither
    clock.advance(45)
    assert t.leave() == []
    assert not t.active
    assert [e.kind for e in events] == ["skip"]


def test_pauses_do_not_count():
    events, clock = [], FakeClock()
    t = make_tracker(events, clock)
    t.start(track(duration=20))  # threshold 10 s
    clock.advance(4)
    t.tick(playing=False)
    clock.advance(600)  # paused for ten minutes
    assert t.tick(playing=False) == [] and t.seconds_to_play() is None
    t.tick(playing=True)
    clock.advance(2)
    [skip] = t.leave()
    assert skip.listened_s == 6.0


def test_start_leaves_the_previous_track_and_ended_decides_by_position():
    events, clock = [], FakeClock()
    t = make_tracker(events, clock)
    t.start(track(1, duration=200))
    clock.advance(5)
    [skip] = t.start(track(2, duration=None))  # a new song after 5 s: skip of the first
    assert (skip.track_id, skip.kind) == (1, "skip")
    clock.advance(20)
    [play] = t.finish()  # unknown length, the player says it played to the end: a play
    assert (play.track_id, play.kind, play.listened_s) == (2, "play", 20.0)

    t.start(track(3, duration=40), position=10)  # attached 10 s in: those 10 s count
    clock.advance(10)
    [play] = t.ended()  # 20 s of 40 heard
    assert (play.track_id, play.kind, play.listened_s) == (3, "play", 20.0)

    t.start(track(4, duration=200))
    clock.advance(199)
    assert [e.kind for e in t.ended()] == ["play"]  # reached the end


def test_attaching_after_the_threshold_does_not_record_again():
    events, clock = [], FakeClock()
    t = make_tracker(events, clock)
    t.start(track(duration=200), position=150)
    clock.advance(10)
    assert t.tick() == [] and t.leave() == [] and events == []


def test_unknown_tracks_and_failing_record_callbacks_record_nothing(caplog):
    events, clock = [], FakeClock()
    t = make_tracker(events, clock)
    t.start(None, duration=10)
    clock.advance(2)
    assert t.leave() == [] and events == []

    def broken(event):
        raise RuntimeError("database locked")

    t = PlayTracker(broken, clock=clock)
    t.start(track(duration=200))
    clock.advance(3)
    with caplog.at_level(logging.ERROR):
        assert [e.kind for e in t.leave()] == ["skip"]  # returned, and the error only logged
    assert "database locked" in caplog.text


# --- command backend -------------------------------------------------------------------------------

PLAYER = """#!/bin/sh
# a fake player: logs its pid and arguments, sleeps $PLAYER_SLEEP seconds, exits $PLAYER_EXIT
echo "$$ $*" >> "$PLAYER_LOG"
sleep "${PLAYER_SLEEP:-0.2}"
exit "${PLAYER_EXIT:-0}"
"""


@pytest.fixture
def player(tmp_path, monkeypatch):
    script = tmp_path / "bin" / "fake-player"
    script.parent.mkdir()
    script.write_text(PLAYER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "player.log"
    monkeypatch.setenv("PLAYER_LOG", str(log))
    return script, log


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def tracks_in(tmp_path: Path, n: int, duration: float | None = 0.2) -> list[Track]:
    names = ["one.flac", "two $(touch pwned) ;.ogg", "three 'q' \"dq\".mp3"]
    return [
        Track(track_id=i + 1, root=str(tmp_path / "music"), relpath=names[i % 3], duration=duration)
        for i in range(n)
    ]


def test_expand_argv():
    assert expand_argv(["mpv", "--no-video", "{path}"], ["/a b.flac"]) == ["mpv", "--no-video", "/a b.flac"]
    assert expand_argv(["p", "--file={path}"], ["/x"]) == ["p", "--file=/x"]
    assert expand_argv(["p", "{paths}", "--end"], ["/x", "/y"]) == ["p", "/x", "/y", "--end"]
    assert expand_argv(["p", "{x}"], ["/x"]) == ["p", "{x}", "/x"]  # no placeholder: appended
    with pytest.raises(ValueError):
        CommandBackend(["p", "{path}", "{paths}"])
    assert command_backend._check_argv(["p", "{path}", "{paths}"])


def test_command_backend_plays_each_track_without_a_shell(player, tmp_path):
    script, log = player
    backend = CommandBackend([str(script), "--track={path}"], user="carol")
    events: list = []
    tracks = tracks_in(tmp_path, 3)
    assert backend.play(tracks, "replace", record=events.append) == 3
    assert backend.wait(timeout=10)
    argvs = [line.split(" ", 1)[1] for line in log_lines(log)]
    assert argvs == [f"--track={t.path}" for t in tracks]
    assert not (Path.cwd() / "pwned").exists()
    assert [(e.kind, e.track_id, e.user, e.source) for e in events] == [
        ("play", t.track_id, "carol", "command") for t in tracks
    ]
    backend.close()


def test_command_backend_skip_kills_the_player_and_records_a_skip(player, tmp_path, monkeypatch):
    script, log = player
    monkeypatch.setenv("PLAYER_SLEEP", "30")
    backend = CommandBackend([str(script), "{path}"])
    events: list = []
    first, second = tracks_in(tmp_path, 2, duration=100.0)
    backend.play([first, second], record=events.append)
    wait_for(lambda: len(log_lines(log)) == 1, what="player started")
    assert backend.now_playing() == first
    pid = int(log_lines(log)[0].split()[0])
    backend.skip()
    wait_for(lambda: [e for e in events if e.kind == "skip"], what="skip")
    assert (events[0].track_id, events[0].kind) == (first.track_id, "skip") and events[0].listened_s < 5
    wait_for(lambda: len(log_lines(log)) == 2, what="second track started")
    assert not pid_alive(pid)
    backend.close()  # stops the second one: also a skip
    assert [(e.track_id, e.kind) for e in events] == [(1, "skip"), (2, "skip")]
    assert backend.now_playing() is None


def test_command_backend_replace_interrupts_and_append_queues(player, tmp_path, monkeypatch):
    script, log = player
    monkeypatch.setenv("PLAYER_SLEEP", "30")
    backend = CommandBackend([str(script)])
    a, b, c = tracks_in(tmp_path, 3, duration=100.0)
    backend.play([a])
    wait_for(lambda: len(log_lines(log)) == 1, what="a started")
    backend.play([b], "replace")
    wait_for(lambda: len(log_lines(log)) == 2, what="b started")
    backend.play([c], "append")
    assert backend.now_playing() == b
    backend.skip()
    wait_for(lambda: len(log_lines(log)) == 3, what="c started")
    assert [line.split(" ", 1)[1] for line in log_lines(log)] == [str(t.path) for t in (a, b, c)]
    backend.close()


def test_command_backend_failure_records_nothing(player, tmp_path, monkeypatch, caplog):
    script, log = player
    monkeypatch.setenv("PLAYER_EXIT", "3")
    monkeypatch.setenv("PLAYER_SLEEP", "0")
    backend = CommandBackend([str(script), "{path}"])
    events: list = []
    with caplog.at_level(logging.WARNING):
        backend.play(tracks_in(tmp_path, 1, duration=None), record=events.append)
        assert backend.wait(timeout=10)
    assert events == [] and "exited with status 3" in caplog.text
    backend.close()


def test_command_backend_paths_runs_once(player, tmp_path):
    script, log = player
    backend = CommandBackend([str(script), "--playlist", "{paths}"])
    events: list = []
    tracks = tracks_in(tmp_path, 3)
    backend.play(tracks, record=events.append)
    assert backend.wait(timeout=10)
    assert len(log_lines(log)) == 1
    assert log_lines(log)[0].split(" ", 1)[1] == "--playlist " + " ".join(str(t.path) for t in tracks)
    assert [(e.kind, e.track_id) for e in events] == [("play", t.track_id) for t in tracks]
    backend.close()


def test_command_backend_unavailable_until_configured(tmp_path):
    with pytest.raises(BackendUnavailable, match="set plugins.command.argv"):
        CommandBackend([]).play(tracks_in(tmp_path, 1))
    with pytest.raises(BackendUnavailable, match="'no-such-player-xyz' not found"):
        CommandBackend(["no-such-player-xyz", "{path}"]).play(tracks_in(tmp_path, 1))


# --- local backend -----------------------------------------------------------------------------------


def test_audio_device_detection(tmp_path):
    cards = tmp_path / "cards"
    assert "is missing" in audio_device_problem({}, cards)
    cards.write_text("--- no soundcards ---\n")
    assert "no soundcards" in audio_device_problem({}, cards)
    assert audio_device_problem({"SDL_AUDIODRIVER": "dummy"}, cards) is None
    assert audio_device_problem({"PULSE_SERVER": "tcp:host"}, cards) is None
    (tmp_path / "run" / "pulse").mkdir(parents=True)
    (tmp_path / "run" / "pulse" / "native").touch()
    assert audio_device_problem({"XDG_RUNTIME_DIR": str(tmp_path / "run")}, cards) is None
    cards.write_text(" 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n")
    assert audio_device_problem({}, cards) is None


def test_local_backend_clear_error_without_a_sound_card(tmp_path):
    cards = tmp_path / "cards"
    cards.write_text("--- no soundcards ---\n")
    backend = LocalBackend(env={"PATH": os.environ.get("PATH", "")}, cards=cards)
    with pytest.raises(BackendUnavailable) as err:
        backend.play(tracks_in(tmp_path, 1))
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        ("local backend: no sound card", "local backend: no player")
    )
    assert "mpd or command backend" in message


def test_local_backend_clear_error_without_a_player(tmp_path):
    backend = LocalBackend(env={"PATH": str(tmp_path)}, player="ffplay")
    with pytest.raises(BackendUnavailable, match="local backend: no player: ffplay not found"):
        backend.check()


def test_local_backend_on_this_box():
    env = {
        k: v for k, v in os.environ.items() if k not in ("SDL_AUDIODRIVER", "PULSE_SERVER", "XDG_RUNTIME_DIR")
    }
    if audio_device_problem(env) is None:
        pytest.skip("this machine has a sound card")
    with pytest.raises(BackendUnavailable, match="^local backend: .*(no sound card|no player)"):
        LocalBackend(env=env).check()


needs_ffplay = pytest.mark.skipif(shutil.which("ffplay") is None, reason="ffplay not installed")


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Track]:
    root = tmp_path_factory.mktemp("local")
    out = {}
    for i, (name, seconds) in enumerate((("short.ogg", 1.2), ("long.flac", 20.0))):
        encode(tone(330.0 + 110 * i, seconds), root / name)
        out[name] = Track(track_id=i + 1, root=str(root), relpath=name, duration=seconds)
    return out


@needs_ffplay
def test_local_backend_real_play_with_dummy_audio(tones):
    events: list = []
    backend = LocalBackend(env={**os.environ, "SDL_AUDIODRIVER": "dummy"}, user="dave")
    short, long = tones["short.ogg"], tones["long.flac"]
    start = time.monotonic()
    backend.play([short], record=events.append)
    assert backend.wait(timeout=15)
    assert time.monotonic() - start >= 1.0  # it really played in real time
    assert [(e.kind, e.track_id, e.user, e.source) for e in events] == [
        ("play", short.track_id, "dave", "local")
    ]

    backend.play([long], record=events.append)
    wait_for(lambda: backend.now_playing() == long, what="long track playing")
    time.sleep(0.5)
    backend.stop()
    skip = wait_for(lambda: [e for e in events if e.kind == "skip"], what="skip")[0]
    assert skip.track_id == long.track_id and skip.listened_s < 5
    backend.close()


@needs_ffplay
def test_local_backend_ffplay_failing_to_open_audio_records_nothing(tones, tmp_path, caplog):
    env = {
        k: v for k, v in os.environ.items() if k not in ("SDL_AUDIODRIVER", "PULSE_SERVER", "XDG_RUNTIME_DIR")
    }
    if audio_device_problem(env) is None:
        pytest.skip("this machine has a sound card: ffplay would really play")
    cards = tmp_path / "cards"
    cards.write_text(" 0 [Fake           ]: pretend there is a card\n")  # get past check()
    events: list = []
    backend = LocalBackend(env=env, cards=cards)
    with caplog.at_level(logging.WARNING):
        backend.play([tones["short.ogg"]], record=events.append)
        assert backend.wait(timeout=15)
    assert events == []  # ffplay exits 0 without an audio device: not counted as a play
    assert "not counted" in caplog.text
    backend.close()


# --- plugin registration and config ------------------------------------------------------------------

BUILTINS = (
    "recengine.default_plugins.null_backend",
    "recengine.default_plugins.mpd_backend",
    "recengine.default_plugins.local_backend",
    "recengine.default_plugins.command_backend",
)


def _configured(raw: dict, tmp_path: Path):
    plugin_set = get_plugin_manager(builtins=BUILTINS, entrypoints=False, env={})
    spec = configmod.core_options()
    plugin_set.pm.hook.addoption.call_historic(kwargs={"spec": spec})
    config = configmod.build_config(
        None, spec, raw, env={"MPD_PASSWORD": "s3cret"}, loaded_plugins=plugin_set.names
    )
    plugin_set.pm.hook.configure.call_historic(kwargs={"config": config})
    return config, collect(plugin_set.pm, "backends", config)


def test_backends_register_with_their_config(tmp_path):
    raw = {
        "library": {"folders": [str(tmp_path)]},
        "plugins": {
            "mpd": {
                "host": "media.lan",
                "port": 6601,
                "password": "${MPD_PASSWORD}",
                "user": "erin",
                "topup_below": 3,
            },
            "command": {"argv": ["mpv", "--no-video", "{path}"], "user": "erin"},
            "local": {"user": "erin"},
        },
    }
    config, backends = _configured(raw, tmp_path)
    assert not backends.errors
    assert set(backends.names()) == {"null", "mpd", "local", "command"}
    mpd = backends["mpd"]
    assert (mpd.host, mpd.port, mpd.password, mpd.user, mpd.topup_below) == (
        "media.lan",
        6601,
        "s3cret",
        "erin",
        3,
    )
    assert mpd.music_dir == tmp_path  # defaults to the only library folder
    assert backends["command"].template == ["mpv", "--no-video", "{path}"]
    assert backends["local"].user == "erin"
    assert config.nested()["plugins"]["mpd"]["password"] == configmod.REDACTED
    for backend in backends:
        for extra in ("now_playing", "close"):
            assert callable(getattr(backend, extra, None)) or backend.name == "null"


@pytest.mark.parametrize("raw, key", [
    ({"plugins": {"mpd": {"port": "six"}}}, "plugins.mpd.port"),
    ({"plugins": {"mpd": {"topup_below": -1}}}, "plugins.mpd.topup_below"),
    ({"plugins": {"mpd": {"hots": "x"}}}, "plugins.mpd.hots"),
    ({"plugins": {"command": {"argv": ["p", "{path}", "{paths}"]}}}, "plugins.command.argv"),
    ({"plugins": {"local": {"player": "vlc"}}}, "plugins.local.player"),
])  # fmt: skip
def test_backend_config_errors_name_the_key(raw, key, tmp_path):
    with pytest.raises(configmod.ConfigError) as err:
        _configured(raw, tmp_path)
    assert err.value.key == key


def test_register_without_config_uses_defaults():
    got = []
    for module in (mpd_backend, local_backend, command_backend):
        module.register_backends(register=got.append, config=None)
    assert [b.name for b in got] == ["mpd", "local", "command"]
    assert (got[0].host, got[0].port, got[0].music_dir) == ("localhost", 6600, None)


def test_pydub_player_child_usage():
    assert local_backend._main([]) == 2
