"""Subsonic sources against a real supysonic server on loopback: likes pulled once, recipes pushed
as playlists, only our own playlists replaced; config errors name the key."""

from __future__ import annotations

import pytest

from recengine.config import ConfigError
from recengine.sources import SongMatcher, SubsonicClient, SubsonicError, parse_sources
from recengine.sources.subsonic import Song
from recengine.testing import encode, tone

from .conftest import make_engine
from .supysonic import free_port, supysonic_server


@pytest.fixture
def library(tmp_path):
    music = tmp_path / "music"
    for i, (artist, freq) in enumerate([("Ann", 220), ("Ann", 330), ("Bob", 440), ("Bob", 550)]):
        encode(tone(freq, 2.0), music / artist / f"{i + 1:02d} Song {i + 1}.ogg",
               tags={"artist": artist, "title": f"Song {i + 1}", "album": f"{artist} album"})
    return music


def _engine(tmp_path, music, url, **extra):
    source = {"kind": "subsonic", "url": url, "user": "alice", "password": "${SUPY_PASSWORD}",
              "recengine_user": "zoe", "push": ["Mix"]}
    return make_engine(tmp_path, [music], sources=[source],
                       playlists=[{"name": "Mix", "kind": "user", "user": "zoe", "size": 3}], **extra)


def test_starred_songs_become_likes_once_and_recipes_become_playlists(tmp_path, library, monkeypatch):
    monkeypatch.setenv("SUPY_PASSWORD", "secret")
    with supysonic_server(tmp_path / "supy", library) as url:
        client = SubsonicClient(url, "alice", password="secret")
        client.ping()  # supysonic speaks API 1.12: the client falls back to password authentication
        assert client.legacy_auth
        songs = {s.path: s for s in client.songs()}
        assert len(songs) == 4
        starred = [songs["Ann/01 Song 1.ogg"].id, songs["Bob/03 Song 3.ogg"].id]
        for sid in starred:
            client.call("star", [("id", sid)])
        with _engine(tmp_path, library, url) as engine:
            engine.scan()
            sync = engine.source_syncs()[0]
            report = sync.run()
            assert (report.songs, report.matched, report.likes) == (4, 4, 2)
            likes = [e for e in engine.catalog.events("zoe") if e.kind == "like"]
            assert sorted(engine.catalog.track(e.track_id).relpath for e in likes) == [
                "Ann/01 Song 1.ogg", "Bob/03 Song 3.ogg"]
            playlists = client.playlists()
            assert list(playlists.values()) == ["Mix"]
            pushed = client.playlist_songs(next(iter(playlists)))
            expected = [r.track.relpath for r in engine.playlists.tracks_for(engine.playlists.get("Mix"))]
            assert [next(p for p, s in songs.items() if s.id == sid) for sid in pushed] == expected
            assert expected and report.pushed == {"Mix": len(expected)}

            again = sync.run()  # nothing new: no double counting, the playlist is left as it is
            assert (again.likes, again.unlikes, again.plays) == (0, 0, 0)
            assert len([e for e in engine.catalog.events("zoe") if e.kind == "like"]) == 2
            assert client.playlists() == playlists and client.playlist_songs(next(iter(playlists))) == pushed

            client.call("unstar", [("id", starred[0])])
            third = sync.run()
            assert (third.likes, third.unlikes) == (0, 1)


def test_a_users_own_playlist_of_the_same_name_is_never_replaced(tmp_path, library, monkeypatch):
    monkeypatch.setenv("SUPY_PASSWORD", "secret")
    with supysonic_server(tmp_path / "supy", library) as url:
        client = SubsonicClient(url, "alice", password="secret")
        client.ping()
        first = client.songs()[0].id
        theirs = client.save_playlist("Mix", [first])
        with _engine(tmp_path, library, url) as engine:
            engine.scan()
            report = engine.source_syncs()[0].run()
            expected = len(engine.playlists.tracks_for(engine.playlists.get("Mix")))
        names = client.playlists()
        assert names[theirs] == "Mix" and client.playlist_songs(theirs) == [first]
        assert sorted(names.values()) == ["Mix", "Mix (recengine)"]
        ours = next(pid for pid, name in names.items() if name == "Mix (recengine)")
        assert expected and report.pushed == {"Mix": expected} and len(client.playlist_songs(ours)) == expected


def test_wrong_password_and_unreachable_server_are_one_clear_line(tmp_path, library):
    with supysonic_server(tmp_path / "supy", library) as url:
        with pytest.raises(SubsonicError, match="error 40: wrong user name or password"):
            SubsonicClient(url, "alice", password="nope").ping()
    with pytest.raises(SubsonicError, match="cannot reach the server"):
        SubsonicClient(f"http://127.0.0.1:{free_port()}", "alice", password="x", timeout_s=2).ping()


def test_source_config_errors_name_the_key(tmp_path):
    from recengine.config import build_config, core_options

    def parse(sources, env=None):
        path = tmp_path / "c.yaml"
        import yaml

        path.write_text(yaml.safe_dump({"sources": sources}))
        return parse_sources(build_config(path, core_options()), env=env or {})

    with pytest.raises(ConfigError, match=r"sources\[0\].url: required"):
        parse([{"kind": "subsonic", "user": "a", "password": "p"}])
    with pytest.raises(ConfigError, match=r"sources\[0\].kind"):
        parse([{"kind": "plex", "url": "http://x", "user": "a", "password": "p"}])
    with pytest.raises(ConfigError, match=r"sources\[0\].passwrd: unknown setting; did you mean 'password'"):
        parse([{"kind": "subsonic", "url": "http://x", "user": "a", "passwrd": "p"}])
    with pytest.raises(ConfigError, match="environment variable NAVI is not set"):
        parse([{"kind": "subsonic", "url": "http://x", "user": "a", "password": "${NAVI}"}])
    ok = parse([{"kind": "subsonic", "url": "http://x", "user": "a", "password": "${NAVI}"}], env={"NAVI": "s"})
    assert ok[0].password == "s" and ok[0].name == "subsonic1"


def test_song_matching_by_path_above_or_below_our_folder_and_by_tags():
    from recengine.models import Track

    tracks = [Track(1, "/m", "Ann/01 Song 1.ogg", artist="Ann", title="Song 1", duration=120.0),
              Track(2, "/m", "Bob/03 Song 3.ogg", artist="Bob", title="Song 3", duration=100.0),
              Track(3, "/m", "x/Bob/03 Song 3 (live).ogg", artist="Bob", title="Song 3", duration=200.0)]
    m = SongMatcher(tracks)
    assert m.match(Song("a", "Ann/01 Song 1.ogg")) == 1
    assert m.match(Song("b", "Music/Ann/01 Song 1.ogg")) == 1  # the server's folder above ours
    assert m.match(Song("c", "01 Song 1.ogg")) == 1  # ... or below ours
    assert m.match(Song("d", "other.ogg", title="song 3", artist="BOB", duration=199)) == 3
    assert m.match(Song("e", "other.ogg", title="Song 3", artist="Bob")) is None  # ambiguous: no guess
