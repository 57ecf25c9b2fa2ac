"""Built-in playlist writers: M3U8 and XSPF (RELIABILITY rule 8; T40, T41, T42 ownership marker).

Golden files live in ``tests/golden/<profile>.<suffix>``. After a deliberate format change,
regenerate them with ``RECENGINE_UPDATE_GOLDEN=1 pytest tests/test_writers.py`` and review the diff.
"""

from __future__ import annotations

import os
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlparse

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recengine.default_plugins import m3u8, xspf
from recengine.default_plugins.m3u8 import M3U8Writer
from recengine.default_plugins.xspf import XSPFWriter
from recengine.fileio import atomic_write
from recengine.models import PathProfile, Playlist, PlaylistEntry
from recengine.playlists.paths import apply_prefix_map, map_path
from recengine.plugin import spec as hookspecs
from recengine.plugin.registry import collect

GOLDEN = Path(__file__).parent / "golden"
NS = {"x": "http://xspf.org/ns/0/"}
MARKER = "3f2b8c1e-7d4a-4e9b-9c1d-5a6f7e8d9c0b"

#: profile name -> (PathProfile, folder the playlist file is written to)
PROFILES = {
    "navidrome": (PathProfile("relative"), "/srv/music/Playlists"),
    "jellyfin": (PathProfile("absolute", (("/srv/music", "/data/music"),)), "/var/lib/jellyfin/playlists"),
    # MPD wants paths relative to its music_directory: map the root onto "".
    "mpd": (PathProfile("absolute", (("/srv/music", ""),)), "/var/lib/mpd/playlists"),
    "plex": (PathProfile("absolute"), "/srv/recengine/playlists"),
}
WRITERS = {"m3u8": M3U8Writer(), "xspf": XSPFWriter()}

ENTRIES = [
    PlaylistEntry(
        Path("/srv/music/Artist & Co/Album <One>/01 Track.flac"),
        duration=241.6,
        artist="Artist & Co",
        title="Track <1>",
        album="Album <One>",
        why="similar to Night Drive & liked <Blue>",
    ),
    PlaylistEntry(Path("/srv/music/名前/アルバム/02 名前.flac"), artist="名前", title="歌", album="アルバム"),
    PlaylistEntry(
        Path("/srv/music/Bad/03 bad.mp3"),
        duration=180,
        artist="Bad\r\nArtist",
        title="Tab\there\x07bell\x00",
        album="Ctl\x1b[31mred\ufffe",
        why="line one\nline two\r\n",
    ),
    PlaylistEntry(
        Path("/srv/music/Various Artists/Mix #1/04 - 100% Pure?.mp3"), duration=-5.0, why="discovery"
    ),
    PlaylistEntry(Path("/srv/music/odd/new\nline.mp3"), duration=60, artist="Odd", title="Newline"),
    PlaylistEntry(Path("/srv/music2/a:b.ogg"), duration=30.4, artist="Colon", title="A:B"),
    PlaylistEntry(Path("/srv/music/Playlists/#1 hit.flac"), duration=float("nan"), title="Number one"),
]
PLAYLIST = Playlist("For You & <Me>", ENTRIES, MARKER, description="Daily mix\nfor default")


def render(writer_name: str, profile_name: str) -> bytes:
    profile, folder = PROFILES[profile_name]
    writer = WRITERS[writer_name]
    return writer.render(PLAYLIST, profile, Path(folder) / f"For You{writer.suffix}")


@pytest.mark.parametrize("writer_name", sorted(WRITERS))
@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_golden(writer_name, profile_name):
    """T40: byte-equal to the reviewed golden file."""
    data = render(writer_name, profile_name)
    golden = GOLDEN / f"{profile_name}{WRITERS[writer_name].suffix}"
    if os.environ.get("RECENGINE_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(data)
    assert data == golden.read_bytes()


def m3u8_paths(data: bytes) -> list[str]:
    return [line for line in data.decode("utf-8").split("\n") if line and not line.startswith("#")]


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_m3u8_rules(profile_name):
    data = render("m3u8", profile_name)
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in data and data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    assert lines[:3] == ["#EXTM3U", f"#RECENGINE:{MARKER}", "#PLAYLIST:For You & <Me>"]
    for line in lines:
        assert not any(unicodedata.category(ch) == "Cc" for ch in line), line
    # the newline file name cannot be one M3U8 line: left out; the six others are there
    paths = m3u8_paths(data)
    assert len(paths) == len(ENTRIES) - 1
    assert sum(line.startswith("#EXTINF:") for line in lines) == len(ENTRIES) - 1
    assert "#EXTINF:242,Artist & Co - Track <1>" in lines
    assert "#EXTINF:-1,04 - 100% Pure?" in lines  # no tags: the file name; bad duration: -1
    assert "#EXTINF:180,Bad Artist - Tab herebell" in lines
    assert "# why: line one line two" in lines


def test_m3u8_path_forms():
    nav = m3u8_paths(render("m3u8", "navidrome"))
    assert nav[0] == "../Artist & Co/Album <One>/01 Track.flac"
    assert nav[-2] == "../../music2/a:b.ogg"
    assert nav[-1] == "./#1 hit.flac"  # would read as a comment without ./
    jf = m3u8_paths(render("m3u8", "jellyfin"))
    assert jf[1] == "/data/music/名前/アルバム/02 名前.flac"
    assert jf[-2] == "/srv/music2/a:b.ogg"  # /srv/music does not match /srv/music2
    assert m3u8_paths(render("m3u8", "mpd"))[0] == "Artist & Co/Album <One>/01 Track.flac"
    assert m3u8_paths(render("m3u8", "plex"))[2] == "/srv/music/Bad/03 bad.mp3"


def xspf_tracks(data: bytes):
    root = ET.fromstring(data)
    assert root.tag == "{http://xspf.org/ns/0/}playlist" and root.get("version") == "1"
    return root, root.findall("x:trackList/x:track", NS)


def uri_to_path(uri: str) -> str:
    return unquote(urlparse(uri).path) if uri.startswith("file://") else unquote(uri)


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_xspf_parses_and_round_trips(profile_name):
    data = render("xspf", profile_name)
    root, tracks = xspf_tracks(data)
    assert root.findtext("x:title", namespaces=NS) == "For You & <Me>"
    assert root.findtext("x:annotation", namespaces=NS) == "Daily mix for default"
    assert len(tracks) == len(ENTRIES)  # percent-encoding can carry the newline file name
    profile, folder = PROFILES[profile_name]
    for track, entry in zip(tracks, ENTRIES, strict=True):
        location = track.findtext("x:location", namespaces=NS)
        assert location.isascii() and " " not in location
        expected = map_path(entry.path, profile, Path(folder) / "For You.xspf")
        assert uri_to_path(location) == expected
        assert location.startswith("file:///") == expected.startswith("/")
    first = tracks[0]
    assert first.findtext("x:title", namespaces=NS) == "Track <1>"
    assert first.findtext("x:creator", namespaces=NS) == "Artist & Co"
    assert first.findtext("x:album", namespaces=NS) == "Album <One>"
    assert first.findtext("x:annotation", namespaces=NS) == "similar to Night Drive & liked <Blue>"
    assert first.findtext("x:duration", namespaces=NS) == "241600"
    bad = tracks[2]
    assert bad.findtext("x:creator", namespaces=NS) == "Bad Artist"
    assert bad.findtext("x:album", namespaces=NS) == "Ctl[31mred"
    assert tracks[3].find("x:duration", NS) is None  # negative duration left out
    assert tracks[6].find("x:duration", NS) is None  # NaN left out


def test_entries_resolve_to_real_files(tmp_path):
    """Relative playlists point at the real files, whatever their names (invariant 5)."""
    music = tmp_path / "music"
    names = ["Artist & Co/Album <One>/01 Track.flac", "名前/02 名前.flac", "a:b/#1 hit.mp3", " lead.mp3"]
    for name in names:
        (music / name).parent.mkdir(parents=True, exist_ok=True)
        (music / name).write_bytes(b"audio")
    (music / "Playlists").mkdir()
    (music / "Playlists" / "#top.flac").write_bytes(b"audio")
    entries = [PlaylistEntry(music / n, title=n) for n in [*names, "Playlists/#top.flac"]]
    playlist = Playlist("Mix", entries, MARKER)
    for writer in WRITERS.values():
        out = music / "Playlists" / f"Mix{writer.suffix}"
        atomic_write(out, writer.render(playlist, PathProfile("relative"), out))
        if writer.name == "m3u8":
            refs = m3u8_paths(out.read_bytes())
        else:
            refs = [
                uri_to_path(t.findtext("x:location", namespaces=NS)) for t in xspf_tracks(out.read_bytes())[1]
            ]
        assert len(refs) == len(entries)
        for ref, entry in zip(refs, entries, strict=True):
            assert not ref.startswith("/")
            assert (out.parent / ref).resolve() == entry.path.resolve()


def test_unchanged_playlist_is_not_rewritten(tmp_path):
    """T41 through the writers: rendering is deterministic, so a refresh leaves the file alone."""
    for writer in WRITERS.values():
        out = tmp_path / f"For You{writer.suffix}"
        assert atomic_write(out, writer.render(PLAYLIST, PathProfile("relative"), out)) is True
        before = out.stat()
        assert atomic_write(out, writer.render(PLAYLIST, PathProfile("relative"), out)) is False
        after = out.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_marker_read_back(tmp_path):
    for writer, module in ((WRITERS["m3u8"], m3u8), (WRITERS["xspf"], xspf)):
        out = tmp_path / f"ours{writer.suffix}"
        out.write_bytes(writer.render(PLAYLIST, PathProfile("absolute"), out))
        assert module.marker_of(out) == MARKER
        assert writer.marker_of(out) == MARKER
        assert module.marker_of(tmp_path / f"missing{writer.suffix}") is None
        assert module.marker_of(tmp_path) is None


def test_m3u8_marker_of_user_files(tmp_path):
    """T42: files a user wrote carry no marker, so the playlist writer leaves them alone."""
    cases = {
        "plain.m3u8": b"#EXTM3U\n#EXTINF:1,a\n/x.flac\n",
        "bare.m3u": b"/x.flac\n",
        "empty.m3u8": b"",
        "late.m3u8": b"#EXTM3U\n/x.flac\n#RECENGINE:" + MARKER.encode() + b"\n",  # not in the header
        "binary.m3u8": bytes(range(256)),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert m3u8.marker_of(tmp_path / name) is None, name
    # edited in a Windows editor: BOM and CRLF, still ours
    (tmp_path / "edited.m3u8").write_bytes(
        b"\xef\xbb\xbf#EXTM3U\r\n#RECENGINE:" + MARKER.encode() + b"\r\n/x\r\n"
    )
    assert m3u8.marker_of(tmp_path / "edited.m3u8") == MARKER


def test_xspf_marker_of_user_files(tmp_path):
    head = '<?xml version="1.0"?><playlist version="1" xmlns="http://xspf.org/ns/0/">'
    cases = {
        "plain.xspf": head + "<trackList/></playlist>",
        "other_rel.xspf": head + '<meta rel="https://example.org/x">abc</meta><trackList/></playlist>',
        # our rel inside a track is not the playlist's marker
        "in_track.xspf": head
        + f'<trackList><track><meta rel="{xspf.MARKER_REL}">{MARKER}</meta></track></trackList></playlist>',
        "not_xml.xspf": "#EXTM3U\n/x.flac\n",
        "other_root.xspf": f'<html><meta rel="{xspf.MARKER_REL}">{MARKER}</meta></html>',
        "entities.xspf": '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><playlist>&b;</playlist>',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert xspf.marker_of(tmp_path / name) is None, name


def test_prefix_map():
    pm = (("/srv", "/A"), ("/srv/music/", "/B/"), ("/", "/root/"))
    assert apply_prefix_map("/srv/music/x.flac", pm) == "/B/x.flac"  # longest prefix wins
    assert apply_prefix_map("/srv/musicx/y.flac", pm) == "/A/musicx/y.flac"  # whole components only
    assert apply_prefix_map("/srv/music", pm) == "/B"
    assert apply_prefix_map("/home/u/z.flac", pm) == "/root/home/u/z.flac"
    assert apply_prefix_map("/home/u/z.flac", ()) == "/home/u/z.flac"
    assert apply_prefix_map("/srv/music/a/b.flac", (("/srv/music", ""),)) == "a/b.flac"
    assert apply_prefix_map("/srv/music/a.flac", (("/srv/music", "D:\\Music"),)) == "D:\\Music/a.flac"
    assert xspf.location_uri("D:\\Music/a b.flac") == "file:///D:/Music/a%20b.flac"


def test_profile_errors():
    with pytest.raises(ValueError, match="playlist's own path"):
        M3U8Writer().render(PLAYLIST, PathProfile("relative"), None)
    with pytest.raises(ValueError, match="unknown path profile mode"):
        XSPFWriter().render(PLAYLIST, PathProfile("weird"), Path("/x/y.xspf"))


def test_registered_through_the_hook():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(m3u8, name="m3u8")
    pm.register(xspf, name="xspf")
    registry = collect(pm, "playlist_writers")
    assert registry.errors == []
    assert sorted(registry.names()) == ["m3u8", "xspf"]
    assert registry["m3u8"].suffix == ".m3u8" and registry["xspf"].suffix == ".xspf"


@settings(max_examples=200, deadline=None)
@given(
    artist=st.text(max_size=30),
    title=st.text(max_size=30),
    why=st.text(max_size=30),
    name=st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and "\x00" not in s and s != "."),
)
def test_any_text_gives_valid_files(artist, title, why, name):
    entry = PlaylistEntry(Path("/srv/music") / name, duration=10, artist=artist, title=title, why=why)
    playlist = Playlist(artist or "x", [entry], MARKER)
    data = M3U8Writer().render(playlist, PathProfile("absolute"), None)
    text = data.decode("utf-8")  # always valid UTF-8
    lines = text.split("\n")
    extinf = [line for line in lines if line.startswith("#EXTINF:")]
    paths = m3u8_paths(data)
    assert len(extinf) == len(paths) <= 1  # metadata never adds or splits lines
    if paths:
        assert paths[0] == f"/srv/music/{name}"
    _, tracks = xspf_tracks(XSPFWriter().render(playlist, PathProfile("absolute"), None))
    assert uri_to_path(tracks[0].findtext("x:location", namespaces=NS)) == f"/srv/music/{name}"


def test_a_file_name_that_is_not_utf8(caplog):
    """Issue 12 item 1: a name like ``b'\\xff'`` (old Samba shares, FAT copies) reaches the writers as
    Python holds it (surrogateescape). M3U8 is UTF-8 by definition: the entry is left out with a
    warning naming the file readably; XSPF carries the exact bytes percent-encoded in its URI."""
    raw = b"/srv/music/Old/\xff\xfe caf\xe9.mp3"
    odd = Path(os.fsdecode(raw))
    playlist = Playlist("Mix", [PlaylistEntry(odd, 10, "A", "B"), PlaylistEntry(Path("/srv/music/ok.mp3"), 5)],
                        MARKER)
    for profile in (PathProfile("absolute"), PathProfile("relative")):
        caplog.clear()
        text = M3U8Writer().render(playlist, profile, Path("/srv/music/Playlists/Mix.m3u8")).decode("utf-8")
        entries = [ln for ln in text.splitlines() if not ln.startswith("#")]
        assert entries == (["/srv/music/ok.mp3"] if profile.mode == "absolute" else ["../ok.mp3"])
        assert text.count("#EXTINF") == 1
        assert "left out /srv/music/Old/\\xff\\xfe caf\\xe9.mp3: its name is not valid UTF-8" in caplog.text
        assert "\\udc" not in caplog.text
        xml = XSPFWriter().render(playlist, profile, Path("/srv/music/Playlists/Mix.xspf"))
        locations = [e.text for e in ET.fromstring(xml).iter("{http://xspf.org/ns/0/}location")]
        assert len(locations) == 2
        target = raw if profile.mode == "absolute" else b"../Old/\xff\xfe caf\xe9.mp3"
        assert unquote_to_bytes(urlparse(locations[0]).path) == target
