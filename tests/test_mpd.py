"""The mpd backend against a real MPD on a loopback port (null audio output, temp music folder).

Skipped when ``mpd`` is not installed. One MPD serves the module; it is killed and restarted by
the reconnect test and stopped in teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from recengine.default_plugins.m3u8 import M3U8Writer
from recengine.default_plugins.mpd_backend import MPDBackend
from recengine.models import PathProfile, Playlist, PlaylistEntry, Track
from recengine.playback.errors import BackendUnavailable
from recengine.playback.mpd_client import MPDClient, MPDCommandError, MPDConnectionError, quote, songs
from recengine.testing import encode, tone, wait_for

MPD = shutil.which("mpd")
pytestmark = pytest.mark.timeout(120)

if MPD is None:
    pytest.skip("mpd not installed: apt-get install mpd", allow_module_level=True)

# (relative path, seconds): 10 tones in three formats, some in sub-folders. Most are 3-6 s; t03
# is 20 s, for the skip tests: MPD's null output can stall a "next" for up to the buffered audio
# (MPD issue #966), and a long track keeps such a stall below the play threshold.
LAYOUT = [
    ("a/t00.flac", 4.0), ("a/t01.ogg", 3.0), ("a/t02.mp3", 5.0), ("b/t03.flac", 20.0), ("b/t04.ogg", 3.0),
    ("b/t05.mp3", 4.0), ("c/Ünïcode & space.flac", 3.0), ("c/t07.ogg", 5.0), ("t08.mp3", 6.0), ("t09.flac", 3.0),
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MPDServer:
    """A real ``mpd --no-daemon`` on 127.0.0.1 and a unix socket, with its files in ``root``."""

    def __init__(self, root: Path, music: Path):
        self.root, self.music = root, music
        self.playlists = root / "playlists"
        self.playlists.mkdir(exist_ok=True)
        self.port = free_port()
        self.socket = root / "mpd.sock"
        self.conf = root / "mpd.conf"
        self.log = root / "mpd.log"
        self.conf.write_text(
            f'music_directory "{music}"\n'
            f'playlist_directory "{self.playlists}"\n'
            f'db_file "{root / "db"}"\n'
            f'state_file "{root / "state"}"\n'
            f'pid_file "{root / "pid"}"\n'
            f'bind_to_address "127.0.0.1"\n'
            f'bind_to_address "{self.socket}"\n'
            f'port "{self.port}"\n'
            'zeroconf_enabled "no"\n'
            'auto_update "no"\n'
            'audio_output {\n  type "null"\n  name "null"\n}\n'
            # a small buffer keeps the null output's stalls on next/stop short (see LAYOUT)
            'audio_buffer_size "64"\n'
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [MPD, "--no-daemon", "--stderr", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        end = time.monotonic() + timeout
        while True:
            try:
                MPDClient("127.0.0.1", self.port, timeout=2).connect().close()
                return
            except MPDConnectionError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    self.stop()
                    raise RuntimeError(f"mpd did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill() if kill else proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def client(self) -> MPDClient:
        return MPDClient("127.0.0.1", self.port, timeout=5).connect()

    def update_db(self, timeout: float = 20.0) -> None:
        with self.client() as c:
            c.command("update")
            wait_for(lambda: "updating_db" not in c.status(), timeout, what="MPD database update")


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, list[Track]]:
    music = tmp_path_factory.mktemp("music")
    tracks = []
    for i, (rel, seconds) in enumerate(LAYOUT):
        encode(
            tone(220.0 * (1 + i / 7), seconds), music / rel, tags={"artist": "Tester", "title": f"tone {i}"}
        )
        tracks.append(
            Track(
                track_id=i + 1,
                root=str(music),
                relpath=rel,
                duration=seconds,
                artist="Tester",
                title=f"tone {i}",
                status="ok",
            )
        )
    return music, tracks


@pytest.fixture(scope="module")
def server(tmp_path_factory, library):
    music, tracks = library
    srv = MPDServer(tmp_path_factory.mktemp("mpd"), music)
    srv.start()
    try:
        srv.update_db()
        with srv.client() as c:
            assert int(dict(c.command("stats"))["songs"]) == len(tracks)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def mpd(server, library):
    """A backend on the module's MPD, with an empty, stopped queue; closed afterwards."""
    music, tracks = library
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    with server.client() as c:
        c.command("clear")
        c.command("repeat", 0)
        c.command("single", 0)
    by_path = {os.path.abspath(t.path): t for t in tracks}
    backend = MPDBackend(
        "127.0.0.1",
        server.port,
        music_dir=music,
        user="alice",
        resolve=lambda p: by_path.get(os.path.abspath(p)),
        timeout=5,
        backoff_cap=1.0,
    )
    yield backend
    backend.close()


@contextlib.contextmanager
def watching(backend: MPDBackend, **kw):
    events: list = []
    stop = threading.Event()
    thread = threading.Thread(target=backend.watch, args=(events.append, stop), kwargs=kw, daemon=True)
    thread.start()
    try:
        yield events, thread
    finally:
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "watch() did not return within 5 s of stop_event"


def queue_files(server: MPDServer) -> list[str]:
    with server.client() as c:
        return [s["file"] for s in c.playlistinfo()]


def current(server: MPDServer) -> tuple[str, str | None]:
    with server.client() as c:
        st = c.status()
        return st.get("state", ""), c.currentsong().get("file")


def by_kind(events, kind: str, track_id: int) -> list:
    return [e for e in events if e.kind == kind and e.track_id == track_id]


# --- protocol client -------------------------------------------------------------------------------


def test_quote_escapes_and_refuses_newlines():
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    with pytest.raises(ValueError):
        quote("a\nstatus")


def test_client_tcp_unix_ack_and_command_list(server):
    with MPDClient(str(server.socket)) as c:  # unix socket
        assert c.version and "state" in c.status()
    with server.client() as c:
        with pytest.raises(MPDCommandError) as err:
            c.command("add", "does/not/exist.flac")
        assert err.value.code == MPDCommandError.NO_EXIST and err.value.command == "add"
        c.ping()  # the connection survives an ACK
        c.command("clear")
        with pytest.raises(MPDCommandError) as err:
            c.command_list([("add", ("a/t00.flac",)), ("add", ("nope.flac",)), ("add", ("a/t01.ogg",))])
        assert err.value.index == 1
        assert [s["file"] for s in songs(c.command("playlistinfo"))] == ["a/t00.flac"]
        c.command("clear")


def test_unreachable_mpd_is_a_clear_error():
    backend = MPDBackend("127.0.0.1", free_port(), music_dir="/nonexistent")
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match="cannot reach MPD at 127.0.0.1:"):
        backend.play([], "replace")
    assert time.monotonic() - start < 8
    backend.close()


# --- queue ---------------------------------------------------------------------------------------------


def test_queue_replace_and_append(mpd, server, library):
    music, tracks = library
    outside = Track(track_id=99, root="/elsewhere", relpath="x.flac")
    assert mpd.play(tracks[:3], "replace") == 3
    assert queue_files(server) == [t.relpath for t in tracks[:3]]
    wait_for(lambda: current(server) == ("play", tracks[0].relpath), 5, what="first track playing")

    assert mpd.play([tracks[3], outside, tracks[6]], "append") == 2
    assert queue_files(server) == [t.relpath for t in tracks[:4]] + [tracks[6].relpath]
    assert current(server)[1] == tracks[0].relpath  # append does not interrupt
    assert mpd.now_playing() == tracks[0]

    assert mpd.play(tracks[7:9], "replace") == 2
    assert queue_files(server) == [t.relpath for t in tracks[7:9]]
    wait_for(lambda: current(server) == ("play", tracks[7].relpath), 5, what="replaced queue playing")

    with server.client() as c:
        c.command("stop")
        c.command("clear")
    assert mpd.play(tracks[1:2], "append") == 1  # append to a stopped player starts it
    wait_for(lambda: current(server) == ("play", tracks[1].relpath), 5, what="appended track playing")
    with server.client() as c:
        c.command("stop")


def test_uri_mapping(library):
    music, tracks = library
    backend = MPDBackend(music_dir=music)
    assert backend.uri_for(tracks[6].path) == "c/Ünïcode & space.flac"
    assert backend.path_for("c/Ünïcode & space.flac") == str(tracks[6].path)
    assert backend.uri_for("/elsewhere/x.flac") is None
    assert backend.path_for("http://radio.example/stream") is None
    assert MPDBackend("/run/mpd/socket").uri_for("/srv/x.flac") == "file:///srv/x.flac"


# --- plays and skips -----------------------------------------------------------------------------------


def test_skip_then_play_are_recorded(mpd, server, library):
    music, tracks = library
    first, second = tracks[3], tracks[1]  # 20 s, then 3 s
    with watching(mpd) as (events, _):
        mpd.play([first, second], "replace")
        wait_for(lambda: current(server) == ("play", first.relpath), 5, what="first track playing")
        time.sleep(1.0)  # listen for a second, then skip
        with server.client() as c:
            c.command("next")
        skip = wait_for(lambda: by_kind(events, "skip", first.track_id), 5, what="skip event")[0]
        assert 0.5 <= skip.listened_s < 8.0
        assert (skip.user, skip.source) == ("alice", "mpd")
        # the 3 s track counts as played once 1.5 s have been heard, before it ends
        play = wait_for(lambda: by_kind(events, "play", second.track_id), 6, what="play event")[0]
        assert 1.4 <= play.listened_s < 3.0
        assert current(server) == ("play", second.relpath)
        assert not by_kind(events, "play", first.track_id) and not by_kind(events, "skip", second.track_id)
        wait_for(lambda: current(server)[0] == "stop", 6, what="end of queue")
    assert [(e.kind, e.track_id) for e in events] == [("skip", first.track_id), ("play", second.track_id)]


def test_pause_does_not_count_as_listening(mpd, server, library):
    music, tracks = library
    track = tracks[3]  # 20 s: played after 10 s of listening
    with watching(mpd) as (events, _):
        mpd.play([track], "replace")
        wait_for(lambda: current(server) == ("play", track.relpath), 5, what="playing")
        with server.client() as c:
            c.command("pause", 1)
        wait_for(lambda: current(server)[0] == "pause", 8, what="paused")
        time.sleep(2.0)
        with server.client() as c:
            c.command("stop")
        skip = wait_for(lambda: by_kind(events, "skip", track.track_id), 8, what="skip on stop")[0]
        assert skip.listened_s < 8.0


def test_queue_top_up(mpd, server, library):
    music, tracks = library
    asked: list[int] = []

    def topup(n: int) -> list[Track]:
        asked.append(n)
        return tracks[5 : 5 + n]

    with watching(mpd, topup=topup, topup_below=2) as (events, _):
        mpd.play(tracks[3:5], "replace")  # 2 tracks: 1 left after the current one
        wait_for(lambda: len(queue_files(server)) == 4, 5, what="top-up")
        assert queue_files(server) == [t.relpath for t in tracks[3:7]]
        assert asked == [2]
        with server.client() as c:
            c.command("stop")


# --- playlists written by recengine load in MPD ---------------------------------------------------


def _playlist(tracks: list[Track]) -> Playlist:
    entries = [
        PlaylistEntry(path=t.path, duration=t.duration, artist=t.artist, title=t.title, why="similar")
        for t in tracks
    ]
    return Playlist(name="For alice", entries=entries, marker=str(uuid.uuid4()))


def test_m3u8_from_writer_loads_in_mpd(mpd, server, library):
    music, tracks = library
    writer = M3U8Writer()
    # 1. stored playlist in MPD's playlist_directory, paths relative to music_directory
    stored = server.playlists / "recengine-alice.m3u"
    profile = PathProfile(mode="absolute", prefix_map=((str(music), ""),))
    stored.write_bytes(writer.render(_playlist(tracks), profile, stored))
    # 2. playlist file inside the music folder, paths relative to the playlist file
    in_music = music / "playlists" / "recengine-alice.m3u8"
    in_music.parent.mkdir(exist_ok=True)
    in_music.write_bytes(writer.render(_playlist(tracks), PathProfile(mode="relative"), in_music))
    try:
        for name in ("recengine-alice", "playlists/recengine-alice.m3u8"):
            with server.client() as c:
                c.command("clear")
                c.command("load", name)
                loaded = c.playlistinfo()
            assert len(loaded) == len(tracks), name
            assert [s["file"] for s in loaded] == [t.relpath for t in tracks], name
            assert all(s.get("duration") or s.get("Time") for s in loaded), f"{name}: entry not in MPD's db"
    finally:
        in_music.unlink()
        in_music.parent.rmdir()
        with server.client() as c:
            c.command("clear")


# --- a player that goes away -----------------------------------------------------------------------


def test_watch_survives_mpd_restart(mpd, server, library):
    music, tracks = library
    with watching(mpd) as (events, thread):
        mpd.play([tracks[2], tracks[4]], "replace")
        wait_for(lambda: current(server)[0] == "play" and mpd.watcher_connected, 5, what="playing")
        server.stop(kill=True)
        time.sleep(1.0)  # the watcher is now retrying
        assert thread.is_alive()
        with pytest.raises(BackendUnavailable):
            mpd.play(tracks[:1], "replace")  # commands fail clearly while MPD is down
        assert not mpd.watcher_connected
        server.start()
        # the command connection and the watcher both reconnect
        wait_for(lambda: mpd.watcher_connected, 10, what="watcher reconnected")
        mpd.play([tracks[3], tracks[1]], "replace")
        wait_for(lambda: current(server) == ("play", tracks[3].relpath), 5, what="playing after restart")
        time.sleep(1.0)
        with server.client() as c:
            c.command("next")
        wait_for(lambda: by_kind(events, "skip", tracks[3].track_id), 15, what="skip recorded after restart")
        assert thread.is_alive()
        with server.client() as c:
            c.command("stop")
    assert not [e for e in events if e.track_id == tracks[2].track_id and e.kind == "skip"]


def test_play_with_record_starts_a_watcher(mpd, server, library):
    music, tracks = library
    events: list = []
    mpd.play([tracks[9]], "replace", record=events.append)  # 3 s
    play = wait_for(lambda: by_kind(events, "play", tracks[9].track_id), 6, what="play via internal watcher")
    assert play[0].source == "mpd"
    mpd.close()
    with server.client() as c:
        c.command("stop")


def test_daemon_follows_the_mpd_player_and_records_history(server, library, tmp_path):
    """daemon.watch_backend: a track played through MPD becomes a play in the catalog, through
    the daemon (no backend object in the test), and the daemon stops cleanly."""
    from recengine.engine import Engine
    from recengine.service.daemon import Daemon

    music, _ = library
    with server.client() as c:
        c.command("clear")
    raw = {"library": {"folders": [str(music)]}, "data_dir": str(tmp_path / "data"), "plugin_dirs": [],
           "scan": {"workers": 2}, "backend": "mpd",
           "plugins": {"mpd": {"host": "127.0.0.1", "port": server.port, "music_dir": str(music), "user": "bea"}},
           "daemon": {"watch_backend": True, "settle_s": 0.2}}
    engine = Engine.open(None, raw=raw, entrypoints=False)
    daemon = Daemon(engine)
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: daemon.state == "watching", 60, what="daemon ready")
        track = engine.catalog.track_by_path(music / "b" / "t04.ogg")  # 3 s
        assert track is not None
        with server.client() as c:
            c.command("add", "b/t04.ogg")
            c.command("play", 0)
        events = wait_for(lambda: [e for e in engine.catalog.events("bea") if e.kind == "play"], 15,
                          what="play recorded by the daemon")
        assert events[0].track_id == track.track_id and events[0].source == "mpd"
    finally:
        daemon.stop()
        thread.join(timeout=10)
        engine.close()
    assert not thread.is_alive()
