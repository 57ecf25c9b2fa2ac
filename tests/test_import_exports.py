"""History files as the services export them, through ``recengine history import`` on a real scanned
library: MBIDs matched as the scrobble endpoint matches them, ListenBrainz ZIP exports and their
feedback.jsonl, Last.fm loved tracks; importing a file twice adds nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from recengine.catalog import Catalog
from recengine.cli import main
from recengine.importers import Listen, Matcher, load_history
from recengine.models import Track
from recengine.testing import encode, tone

from .conftest import make_engine

T0 = 1_700_000_000
M1 = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
M2 = "0c4a1c5e-58d4-4b4a-9b59-3bb2e5b1f001"
UNKNOWN = "00000000-0000-0000-0000-00000000abcd"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Four tagged files (two carry a MusicBrainz recording id), scanned once."""
    base = tmp_path_factory.mktemp("exports")
    music = base / "music"
    for name, artist, title, mbid, freq in [("one", "Ann", "One", M1, 220), ("two", "Ann", "Two", M2, 330),
                                            ("three", "Bob", "Three", None, 440), ("four", "Bob", "Four", None, 550)]:
        tags = {"artist": artist, "title": title, "album": f"{artist} album"}
        if mbid:
            tags["MUSICBRAINZ_TRACKID"] = mbid
        encode(tone(freq, 2.0), music / artist / f"{name}.ogg", tags=tags)
    with make_engine(base, [music]) as engine:
        assert engine.scan().featurised == 4
    return music, base / "data"


@pytest.fixture
def cli(tmp_path, scanned):
    music, data = scanned
    shutil.copytree(data, tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: ['{music}']}}\ndata_dir: '{tmp_path / 'data'}'\nplugin_dirs: []\n")

    def run(*files, user="ann", fmt=None):
        return main(["--config", str(config), "history", "import", *map(str, files), "--user", user,
                     *(["--format", fmt] if fmt else [])])

    return run


def events(tmp_path, user="ann"):
    with Catalog(tmp_path / "data" / "catalog.db") as cat:
        return sorted((cat.track(e.track_id).relpath, e.kind, e.at) for e in cat.events(user))


def lb(artist, title, at, **extra):
    meta = {"artist_name": artist, "track_name": title, **extra}
    return {"listened_at": at, "track_metadata": meta}


# --- MBIDs ---------------------------------------------------------------------------------------


def test_the_matcher_takes_the_mbid_before_artist_and_title():
    tracks = [Track(1, "/m", "a.ogg", artist="Ann", title="One"), Track(2, "/m", "b.ogg", artist="Bob", title="Two")]
    m = Matcher(tracks, {M1.upper(): 2})
    assert m.match(Listen("Ann", "One", None, T0, mbid=M1)) == 2  # the file's MBID wins over the names
    assert m.match(Listen("Ann", "One", None, T0, mbid=UNKNOWN)) == 1  # an MBID no file has: the names
    assert m.match(Listen("Nobody", "Nothing", None, T0, mbid=UNKNOWN)) is None


def test_mbids_in_file_imports_match_tracks_whatever_the_names(tmp_path, cli, capsys):
    listens = tmp_path / "listens.jsonl"
    listens.write_text("\n".join(json.dumps(x) for x in [
        lb("Ann (other credit)", "Uno", T0, additional_info={"recording_mbid": M1.upper()}),
        lb("A. N. N.", "Deux", T0 + 1, mbid_mapping={"recording_mbid": M2, "recording_name": "Two"}),
        lb("Bob", "Three", T0 + 2, additional_info={"recording_mbid": UNKNOWN}),  # unknown MBID: by names
        lb("Nobody", "Nothing", T0 + 3, additional_info={"recording_mbid": UNKNOWN}),
    ]) + "\n")
    lastfm = tmp_path / "Recent Tracks ann.csv"  # the lastfm.ghan.nl export
    lastfm.write_text("uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n"
                      f'"{T0 + 10}","14 Nov 2023, 22:13","Somebody","","","","Something","{M2}"\n'
                      f'"{T0 + 11}","14 Nov 2023, 22:13","Bob","","Bob album","","Four",""\n')
    log = tmp_path / ".scrobbler.log"
    log.write_text(f"#AUDIOSCROBBLER/1.1\n#TZ/UTC\n#CLIENT/Rockbox\nX\tY\tZ\t1\t2\tL\t{T0 + 20}\t{M1}\n")
    assert cli(listens, lastfm, log) == 0
    out = capsys.readouterr().out
    assert "listenbrainz: 4 listens, 3 matched" in out and "lastfm: 2 listens, 2 matched" in out
    assert "scrobbler: 1 listens, 1 matched" in out
    assert events(tmp_path) == [("Ann/one.ogg", "play", T0), ("Ann/one.ogg", "play", T0 + 20),
                                ("Ann/two.ogg", "play", T0 + 1), ("Ann/two.ogg", "play", T0 + 10),
                                ("Bob/four.ogg", "play", T0 + 11), ("Bob/three.ogg", "play", T0 + 2)]
    assert [x.mbid for x in load_history(listens).listens] == [M1, M2, UNKNOWN, UNKNOWN]  # lower case


# --- ListenBrainz ZIP exports and feedback ------------------------------------------------------


def lb_export(artist, title, at, msid, mbid=None):
    """A listen as the user-data export writes it: MSID in track_metadata, the MBID mapping beside it."""
    meta = {"artist_name": artist, "track_name": title, "release_name": f"{artist} album",
            "additional_info": {"media_player": "Navidrome", "submission_client": "navidrome"},
            "recording_msid": msid,
            "mbid_mapping": {"recording_mbid": mbid, "recording_name": title, "artist_mbids": []} if mbid else None}
    return {"listened_at": float(at), "inserted_at": float(at + 5), "track_metadata": meta}


FEEDBACK = [
    {"recording_msid": "msid-one", "recording_mbid": M1, "score": 1, "created": T0 + 100},
    {"recording_msid": "msid-three", "recording_mbid": None, "score": -1, "created": T0 + 101},  # via its listens
    {"recording_msid": "msid-x", "recording_mbid": UNKNOWN, "score": 1, "created": T0 + 102},
    {"recording_msid": "msid-unheard", "recording_mbid": None, "score": 1, "created": T0 + 103},
]


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def write_export(path):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("user.json", json.dumps({"user_id": 1, "username": "ann"}) + "\n")
        z.writestr("listens/2023/11.jsonl", jsonl([
            lb_export("Ann", "Uno", T0, "msid-one", M1),  # names differ: the mapping's MBID matches
            lb_export("Bob", "Three", T0 + 1, "msid-three"),
            lb_export("Nobody", "Nothing", T0 + 2, "msid-nothing")]))
        z.writestr("listens/2023/2.jsonl", jsonl([lb_export("Bob", "Four", T0 - 86400 * 250, "msid-four")]))
        z.writestr("feedback.jsonl", jsonl(FEEDBACK))
        z.writestr("pinned_recording.jsonl", json.dumps({"recording_msid": "msid-one", "blurb_content": "x",
                                                         "pinned_until": T0, "created": T0}) + "\n")
    return path


def test_a_listenbrainz_zip_export_and_its_feedback_import_once(tmp_path, cli, capsys):
    export = write_export(tmp_path / "listenbrainz_ann_1700000000.zip")
    assert cli(export) == 0
    out = capsys.readouterr().out
    assert "listenbrainz: 4 listens, 3 matched (75%), 1 not in the library" in out
    assert "; 4 loves/hates, 2 matched" in out
    first = events(tmp_path)
    assert first == [("Ann/one.ogg", "like", T0 + 100), ("Ann/one.ogg", "play", T0),
                     ("Bob/four.ogg", "play", T0 - 86400 * 250),
                     ("Bob/three.ogg", "dislike", T0 + 101), ("Bob/three.ogg", "play", T0 + 1)]
    assert cli(export) == 0  # the uniqueness rule: a second import adds nothing
    assert events(tmp_path) == first


def test_feedback_jsonl_alone_and_a_zip_that_is_no_export(tmp_path, cli, capsys):
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(jsonl([*FEEDBACK, {"recording_mbid": M2, "score": 0, "created": T0 + 104},
                               {"recording_mbid": M2, "score": 7, "created": T0 + 105}]))
    assert cli(feedback) == 0
    out = capsys.readouterr().out
    assert "feedback.jsonl: listenbrainz: 5 loves/hates, 2 matched; 1 unreadable records skipped" in out
    assert events(tmp_path) == [("Ann/one.ogg", "like", T0 + 100), ("Ann/two.ogg", "unlike", T0 + 104)]
    assert cli(feedback) == 0
    assert len(events(tmp_path)) == 2

    import zipfile

    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    assert cli(other) == 1
    assert "not a ListenBrainz export" in capsys.readouterr().err


# --- Last.fm loved tracks -----------------------------------------------------------------------


LOVED = ("uts,utc_time,artist,artist_mbid,track,track_mbid\n"  # lastfm.ghan.nl's Loved Tracks export
         f'"{T0 + 200}","14 Nov 2023, 22:16","Ann","","One",""\n'
         f'"{T0 + 201}","14 Nov 2023, 22:16","Someone Else","","Another Name","{M2}"\n'
         f'"{T0 + 202}","14 Nov 2023, 22:16","Nobody","","Nothing",""\n'
         '"","","Bob","","Three",""\n')


def test_lastfm_loved_tracks_become_likes_once(tmp_path, cli, capsys):
    loved = tmp_path / "Loved Tracks ann.csv"
    loved.write_text(LOVED)
    assert cli(loved) == 0
    out = capsys.readouterr().out
    assert "lastfm-loved: 3 loves/hates, 2 matched; 1 unreadable records skipped" in out
    likes = [("Ann/one.ogg", "like", T0 + 200), ("Ann/two.ogg", "like", T0 + 201)]
    assert events(tmp_path) == likes
    assert cli(loved) == 0
    assert events(tmp_path) == likes

    plain = tmp_path / "export.csv"  # any name, with --format
    plain.write_text(LOVED.replace(f"{T0 + 200}", f"{T0 + 300}"))
    assert cli(plain, fmt="lastfm-loved") == 0
    assert ("Ann/one.ogg", "like", T0 + 300) in events(tmp_path)
    headerless = tmp_path / "loved.csv"
    headerless.write_text(f"Ann,One,{T0}\n")
    assert cli(headerless) == 1
    assert "a loved-tracks CSV needs a header row" in capsys.readouterr().err
