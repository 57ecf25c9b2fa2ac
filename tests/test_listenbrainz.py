"""The ListenBrainz-compatible endpoint on a real server: a real client library (liblistenbrainz)
pointed at it, and raw HTTP for the malformed cases; listens matched, kept when unmatched,
nothing lost from a good batch."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time

import liblistenbrainz
import pytest

from recengine.web import start_server
from recengine.web.settings import WebSettings

from .conftest import make_engine


@pytest.fixture
def served(styled_library, styled_data, tmp_path):
    shutil.copytree(styled_data, tmp_path / "data")
    engine = make_engine(tmp_path, [styled_library], http__port=0, http__token="api-token-0123456789")
    handle = start_server(engine, WebSettings.from_config(engine.config), threading.Event())
    yield engine, handle.port
    handle.stop()
    engine.close()


def _raw(port: int, path: str, body: bytes, token: str | None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    answer = resp.status, json.loads(resp.read() or b"{}")
    conn.close()
    return answer


def _listen(title: str, artist: str, at: int, album: str | None = None) -> dict:
    meta = {"artist_name": artist, "track_name": title}
    if album:
        meta["release_name"] = album
    return {"listened_at": at, "track_metadata": meta}


def test_a_real_listenbrainz_client_submits_to_recengine(served):
    engine, port = served
    token = engine.listenbrainz.issue_token("nav")
    client = liblistenbrainz.ListenBrainz(api_base_url=f"http://127.0.0.1:{port}")
    client.set_auth_token(token)  # validate-token answers "valid" for our token
    now = int(time.time())
    client.submit_single_listen(liblistenbrainz.Listen(track_name="Tones 1", artist_name="The Tones",
                                                       listened_at=now - 60))
    client.submit_playing_now(liblistenbrainz.Listen(track_name="Tones 2", artist_name="Tones"))
    client.submit_multiple_listens([
        liblistenbrainz.Listen(track_name="noise 0 (Remastered 2011)", artist_name="NOISE", listened_at=now - 50),
        liblistenbrainz.Listen(track_name="Not In The Library", artist_name="Nobody", listened_at=now - 40)])
    plays = [(engine.catalog.track(e.track_id).relpath, e.kind, e.source) for e in engine.catalog.events("nav")]
    assert sorted(plays) == [("noise/noise0.flac", "play", "listenbrainz"), ("tones/tones1.ogg", "play", "listenbrainz")]
    assert engine.catalog.pending_listen_count() == 1  # kept: it matches once the file arrives
    with pytest.raises(liblistenbrainz.errors.ListenBrainzAPIException):
        bad = liblistenbrainz.ListenBrainz(api_base_url=f"http://127.0.0.1:{port}")
        bad.set_auth_token("not-a-token", check_validity=False)
        bad.submit_single_listen(liblistenbrainz.Listen(track_name="x", artist_name="y", listened_at=now))


def test_malformed_submissions_are_refused_and_a_good_batch_loses_nothing(served):
    engine, port = served
    token = engine.listenbrainz.issue_token("raw")
    now = int(time.time())
    tagged = [t for t in engine.catalog.tracks() if t.artist and t.title]
    ok = json.dumps({"listen_type": "import", "payload": [
        _listen(tagged[i % len(tagged)].title, tagged[i % len(tagged)].artist, now - 100 + i) for i in range(40)]}).encode()
    assert _raw(port, "/1/submit-listens", ok, "wrong-token")[0] == 401
    assert _raw(port, "/1/submit-listens", ok, None)[0] == 401
    assert _raw(port, "/1/submit-listens", b"{not json", token) == (400, {"code": 400, "error": "cannot parse JSON document"})
    status, body = _raw(port, "/1/submit-listens", json.dumps({"listen_type": "bogus", "payload": []}).encode(), token)
    assert status == 400 and "listen_type" in body["error"]
    status, body = _raw(port, "/1/submit-listens", b"[" + b"1," * 9_000_000 + b"1]", token)
    assert status == 413
    bad_time = json.dumps({"listen_type": "single", "payload": [_listen("tones 0", "Tones", 1e308)]}).encode()
    assert _raw(port, "/1/submit-listens", bad_time, token)[0] == 400
    assert engine.catalog.events("raw") == []  # nothing from the refused ones
    assert _raw(port, "/1/submit-listens", ok, token) == (200, {"status": "ok"})
    assert engine.catalog.pending_listen_count() == 0
    assert len(engine.catalog.events("raw")) == 40
    assert _raw(port, "/1/submit-listens", ok, token) == (200, {"status": "ok"})  # a client's retry
    assert len(engine.catalog.events("raw")) == 40  # ... adds nothing


def test_feedback_by_recording_mbid_and_pending_listens_matched_when_the_file_arrives(tmp_path):
    from recengine.testing import encode, tone

    lib = tmp_path / "lib"
    mbid = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
    encode(tone(330, 2.0), lib / "A" / "one.ogg", tags={"artist": "Ann", "title": "One", "MUSICBRAINZ_TRACKID": mbid})
    engine = make_engine(tmp_path, [lib], http__port=0, http__token="api-token-0123456789")
    handle = start_server(engine, WebSettings.from_config(engine.config), threading.Event())
    try:
        engine.scan()
        token = engine.listenbrainz.issue_token("fb")
        feedback = {"recording_mbid": mbid, "score": 1}
        assert _raw(handle.port, "/1/feedback/recording-feedback", json.dumps(feedback).encode(), token)[0] == 200
        assert [e.kind for e in engine.catalog.events("fb")] == ["like"]
        unknown = {"recording_mbid": "00000000-0000-0000-0000-000000000000", "score": -1}
        assert _raw(handle.port, "/1/feedback/recording-feedback", json.dumps(unknown).encode(), token)[0] == 404
        assert _raw(handle.port, "/1/feedback/recording-feedback", json.dumps({"recording_mbid": mbid, "score": 5})
                    .encode(), token)[0] == 400
        now = int(time.time())
        later = {"listen_type": "single", "payload": [_listen("Two", "Ann", now - 5)]}
        assert _raw(handle.port, "/1/submit-listens", json.dumps(later).encode(), token)[0] == 200
        assert engine.catalog.pending_listen_count() == 1  # kept until the file arrives
        encode(tone(440, 2.0), lib / "A" / "two.ogg", tags={"artist": "Ann", "title": "Two"})
        engine.scan()  # the scan matches kept listens again
        assert engine.catalog.pending_listen_count() == 0
        assert sorted(e.kind for e in engine.catalog.events("fb")) == ["like", "play"]
    finally:
        handle.stop()
        engine.close()


def test_a_client_reads_its_own_listens_back_as_multi_scrobbler_does(served):
    """``GET /1/user/<name>/listens``: multi-scrobbler reads it before scrobbling, to skip what it
    sent already; matched plays and kept listens, newest first, only for the token's own user."""
    engine, port = served
    token = engine.listenbrainz.issue_token("ms")
    client = liblistenbrainz.ListenBrainz(api_base_url=f"http://127.0.0.1:{port}")
    client.set_auth_token(token)
    now = int(time.time())
    client.submit_multiple_listens([
        liblistenbrainz.Listen(track_name="drums 1", artist_name="Drums", listened_at=now - 300),
        liblistenbrainz.Listen(track_name="Not Here", artist_name="Nobody", listened_at=now - 200),
        liblistenbrainz.Listen(track_name="tones 2", artist_name="Tones", listened_at=now - 100)])
    back = client.get_listens(username="ms", count=10)
    assert [(x.artist_name, x.track_name, x.listened_at) for x in back] == [
        ("Tones", "tones 2", now - 100), ("Nobody", "Not Here", now - 200), ("Drums", "drums 1", now - 300)]
    assert back[0].release_name == "tones album"  # the library track's tags
    assert [x.track_name for x in client.get_listens(username="ms", min_ts=now - 300)] == ["tones 2", "Not Here"]
    assert [x.track_name for x in client.get_listens(username="ms", max_ts=now - 100, count=1)] == ["Not Here"]
    with pytest.raises(liblistenbrainz.errors.ListenBrainzAPIException) as refused:
        client.get_listens(username="someone-else")
    assert refused.value.status_code == 403

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/1/user/ms/listens")
    assert conn.getresponse().status == 401
    conn.close()
