"""The HTTP API against a real server on a free loopback port: answers, auth, bad input, plugins."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.responses import JSONResponse

import recengine
from recengine.testing import temp_plugin
from recengine.web import start_server
from recengine.web.settings import WebSettings

from .conftest import make_engine

TOKEN = "test-token-0123456789"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, port: int, token: str | None = TOKEN):
        self.port = port
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        answer = Answer(response.status, response.headers, response.read())
        conn.close()
        return answer

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.call("POST", path, {} if body is None and "raw" not in kw else body, **kw)


class HelloRoutes:
    @recengine.hookimpl
    def register_routes(self, register, config):
        def hello(request):
            return JSONResponse({"hello": request.app.state.web.engine.catalog.counts()["ok"]})

        def boom(request):
            raise RuntimeError("plugin bug")

        register("/api/v1/plugin/hello", hello, summary="Say hello")
        register("/api/v1/plugin/boom", boom)


@dataclass
class Served:
    engine: Any
    client: Client
    port: int
    library: Any


@pytest.fixture(scope="module")
def served(styled_library, styled_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("web")
    shutil.copytree(styled_data, base / "data")
    seed = str(styled_library / "tones" / "tones0.flac")
    engine = make_engine(base, [styled_library], http__port=0, http__token=TOKEN,
                         playlists=[{"name": "Like tones", "kind": "similar", "seeds": [seed], "size": 4}],
                         outputs={"default": {"dir": str(base / "playlists")}})
    stop = threading.Event()
    with temp_plugin(engine.pm, HelloRoutes(), name="hello-routes"):
        handle = start_server(engine, WebSettings.from_config(engine.config), stop)
    yield Served(engine, Client(handle.port), handle.port, styled_library)
    handle.stop()
    engine.close()


def ids_of(answer: Answer) -> list[int]:
    return [t["id"] for t in answer.json["tracks"]]


def tones(served: Served) -> list[dict]:
    return served.client.get("/api/v1/tracks?q=tones&limit=10").json["tracks"]


# --- answers ---------------------------------------------------------------------------------------


def test_health_is_open_and_every_response_has_the_security_headers(served):
    answer = Client(served.port, token=None).get("/api/v1/health", headers={"Origin": "http://evil.example"})
    assert answer.status == 200 and answer.json["ok"] is True
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in answer.headers
    page = Client(served.port, token=None).get("/")
    assert page.status == 200 and b"<canvas id=\"map\">" in page.body and b"<script>" not in page.body
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_search_tracks_and_one_track(served):
    client = served.client
    found = tones(served)
    assert len(found) == 5 and {t["relpath"].split("/")[0] for t in found} == {"tones"}
    assert "Tones" in {t["artist"] for t in found}  # the .wav files carry no tags
    assert client.get("/api/v1/tracks?q=TONES%20flac").json["total"] == 1  # every word, any case
    page = client.get("/api/v1/tracks?limit=4&offset=12").json
    assert page["total"] == 15 and len(page["tracks"]) == 3
    assert client.get("/api/v1/tracks?q=drums3").json["tracks"][0]["relpath"].startswith("drums/drums3")
    assert client.get("/api/v1/tracks?q=100%25").json["total"] == 0  # LIKE wildcards are literal
    one = client.get(f"/api/v1/tracks/{found[0]['id']}").json
    assert one == found[0]
    assert client.get("/api/v1/tracks/999999").status == 404
    assert client.get("/api/v1/tracks/abc").status == 404


def test_similar_by_id_and_by_path_with_why(served):
    client = served.client
    seed = tones(served)[0]
    by_id = client.get(f"/api/v1/similar?track={seed['id']}&n=4")
    assert by_id.status == 200 and len(by_id.json["tracks"]) == 4
    assert all(t["why"] for t in by_id.json["tracks"])
    assert {t["relpath"].split("/")[0] for t in by_id.json["tracks"][:3]} == {"tones"}
    by_path = client.get(f"/api/v1/similar?track={seed['path']}&n=4").json
    by_relpath = client.get(f"/api/v1/similar?track={seed['relpath']}&n=4").json
    assert ids_of(by_id) == [t["id"] for t in by_path["tracks"]] == [t["id"] for t in by_relpath["tracks"]]


def test_similar_post_several_seeds_with_filters(served):
    client = served.client
    seeds = [t["id"] for t in tones(served)[:2]]
    answer = client.post("/api/v1/similar", {"tracks": seeds, "n": 6, "filters": {"exclude_artists": ["noise"]}})
    assert answer.status == 200, answer.body
    tracks = answer.json["tracks"]
    assert len(tracks) == 6 and not set(seeds) & {t["id"] for t in tracks}
    assert "Noise" not in {t["artist"] for t in tracks} and all(t["why"] for t in tracks)


def test_path_and_recommend(served):
    client = served.client
    a = tones(served)[0]["id"]
    b = client.get("/api/v1/tracks?q=drums").json["tracks"][0]["id"]
    walk = client.get(f"/api/v1/path?from={a}&to={b}&n=5").json["tracks"]
    assert [walk[0]["id"], walk[-1]["id"]] == [a, b] and len(walk) == 5 and all(t["why"] for t in walk)
    recs = client.get("/api/v1/recommend?user=bob&n=5").json
    assert recs["user"] == "bob" and len(recs["tracks"]) == 5 and all(t["why"] for t in recs["tracks"])


def test_history_post_reaches_the_catalog_and_lists_newest_first(served):
    client = served.client
    first, second = (t["id"] for t in tones(served)[:2])
    assert client.post("/api/v1/history", {"user": "carol", "track": first, "event": "play",
                                           "listened_s": 120}).status == 201
    liked = client.post("/api/v1/history", {"user": "carol", "track": second, "event": "like"})
    assert liked.status == 201 and liked.json["event"] == "like"
    events = served.engine.catalog.events("carol")
    assert [(e.track_id, e.kind, e.source) for e in events] == [(first, "play", "web"), (second, "like", "web")]
    listed = client.get("/api/v1/history?user=carol&limit=1").json["events"]
    assert [(e["track"], e["event"]) for e in listed] == [(second, "like")] and listed[0]["display"]


def test_player_reports_become_plays_and_skips(served):
    client = served.client
    first, second = (t["id"] for t in tones(served)[:2])  # 3 s tracks: a play after 1.5 s
    report = {"session": "page-1", "user": "erin"}
    assert client.post("/api/v1/player", {**report, "track": first, "state": "start"}).json["recorded"] == []
    left = client.post("/api/v1/player", {**report, "track": first, "state": "left", "listened_s": 1.0}).json
    assert [(e["event"], e["listened_s"]) for e in left["recorded"]] == [("skip", 1.0)]
    client.post("/api/v1/player", {**report, "track": second, "state": "start"})
    played = client.post("/api/v1/player", {**report, "track": second, "state": "playing", "listened_s": 2.0})
    assert [e["event"] for e in played.json["recorded"]] == ["play"]
    events = served.engine.catalog.events("erin")
    assert [(e.track_id, e.kind, e.source) for e in events] == [(first, "skip", "web"), (second, "play", "web")]
    bad = client.post("/api/v1/player", {**report, "track": first, "state": "rewound"})
    assert bad.status == 400


def test_playlists_their_tracks_and_refresh(served):
    client = served.client
    names = [p["name"] for p in client.get("/api/v1/playlists").json["playlists"]]
    assert names == ["Like tones"]
    detail = client.get("/api/v1/playlists/Like%20tones").json
    assert len(detail["tracks"]) == 4 and all(t["why"] for t in detail["tracks"])
    done = client.post("/api/v1/playlists/Like%20tones/refresh").json
    assert done["written"] and all(p.endswith(".m3u8") for p in done["written"]) and done["short"] is None
    assert client.get("/api/v1/playlists/nope").status == 404
    assert client.post("/api/v1/playlists/nope/refresh").status == 404


def test_status_failures_openapi_and_docs(served):
    client = served.client
    status = client.get("/api/v1/status").json
    assert status["running"] is False and status["catalog"]["ok"] == 15
    assert status["passes"] == {"fast": 15, "deep": {}}  # no deep extractor installed here
    assert client.get("/api/v1/failures").json == {"count": 0, "failures": []}
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.") and "/api/v1/similar" in doc["paths"]
    assert set(doc["paths"]["/api/v1/similar"]) == {"get", "post"}
    assert doc["paths"]["/api/v1/plugin/hello"]["get"]["summary"] == "Say hello"
    docs = Client(served.port, token=None).get("/docs")
    assert docs.status == 200 and b"/static/docs.js" in docs.body and b"http" not in docs.body.split(b"<body>")[0]


def test_map_has_every_analysed_track_and_is_cached(served):
    client = served.client
    first = client.get("/api/v1/map")
    data = first.json
    assert data["count"] == 15 and sorted(data["ids"]) == sorted(t.track_id for t in served.engine.catalog.tracks())
    assert all(0 <= v <= data["grid"] for v in data["x"] + data["y"])
    assert set(data["artists"]) == {"", "Drums", "Noise", "Tones"} and sorted(data["folders"]) == ["drums", "noise", "tones"]
    assert len({(x, y) for x, y in zip(data["x"], data["y"], strict=True)}) > 10  # spread out, not one dot
    t = time.perf_counter()
    again = client.get("/api/v1/map")
    assert again.body == first.body and time.perf_counter() - t < 0.5


def test_audio_only_for_catalog_tracks_with_range(served):
    client = served.client
    track = next(t for t in tones(served) if t["relpath"].endswith(".flac"))
    whole = client.get(f"/api/v1/tracks/{track['id']}/audio")
    assert whole.status == 200 and whole.headers["Content-Type"] == "audio/flac"
    assert whole.body == (served.library / track["relpath"]).read_bytes()
    part = client.get(f"/api/v1/tracks/{track['id']}/audio", headers={"Range": "bytes=10-109"})
    assert part.status == 206 and part.body == whole.body[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(whole.body)}"
    assert client.get("/api/v1/tracks/999999/audio").status == 404


def test_plugin_routes_and_errors_as_json(served):
    client = served.client
    assert client.get("/api/v1/plugin/hello").json == {"hello": 15}
    assert Client(served.port, token=None).get("/api/v1/plugin/hello").status == 401  # under /api/: guarded
    boom = client.get("/api/v1/plugin/boom")
    assert boom.status == 500 and "error" in boom.json and b"Traceback" not in boom.body


# --- auth ------------------------------------------------------------------------------------------


def test_no_token_and_wrong_token_are_refused(served):
    for token in (None, "wrong", ""):
        answer = Client(served.port, token=token).get("/api/v1/status")
        assert answer.status == 401 and answer.json["error"], token
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    odd = Client(served.port, token=None).get("/api/v1/status", headers={"Authorization": f"Basic {TOKEN}"})
    assert odd.status == 401


def test_cookie_login_needs_the_csrf_header_for_changes(served):
    anonymous = Client(served.port, token=None)
    assert anonymous.post("/api/v1/login", {"token": "nope"}).status == 401
    assert anonymous.get("/api/v1/session").json == {"csrf": None}
    login = anonymous.post("/api/v1/login", {"token": TOKEN})
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    csrf = login.json["csrf"]
    assert anonymous.get("/api/v1/session", headers=jar).json == {"csrf": csrf}
    assert anonymous.get("/api/v1/status", headers=jar).status == 200
    track = tones(served)[3]["id"]
    event = {"user": "dave", "track": track, "event": "like"}
    refused = anonymous.post("/api/v1/history", event, headers=jar)
    assert refused.status == 403 and "csrf" in refused.json["error"].lower()
    wrong = anonymous.post("/api/v1/history", event, headers={**jar, "X-CSRF-Token": "forged"})
    assert wrong.status == 403
    assert served.engine.catalog.events("dave") == []
    assert anonymous.post("/api/v1/history", event, headers={**jar, "X-CSRF-Token": csrf}).status == 201
    assert anonymous.get("/api/v1/status", headers={"Cookie": "recengine_session=forged"}).status == 401


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("query, status", [
    ("track=999999", 404),
    ("track=../../../../etc/passwd", 404),
    ("track=/etc/passwd", 404),
    ("track=", 400),
    ("", 400),
    ("track=1&n=-1", 400),
    ("track=1&n=0", 400),
    ("track=1&n=100000000", 400),
    ("track=1&n=99999999999999999999999", 400),
    ("track=1&n=ten", 400),
])
def test_similar_bad_input(served, query, status):
    answer = served.client.get(f"/api/v1/similar?{query}")
    assert answer.status == status and answer.json["error"], answer.body
    assert b"Traceback" not in answer.body


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (b'"text"', 400),
    (b"\xff\xfe", 400),
    (b'{"tracks": []}', 400),
    (b'{"tracks": "1"}', 400),
    (b'{"tracks": [999999]}', 404),
    (b'{"tracks": [1], "n": "many"}', 400),
    (b'{"tracks": [1], "n": true}', 400),
    (b'{"tracks": [1], "filters": {"exclude_everything": true}}', 400),
    (b'{"tracks": [1], "filters": {"tags": {"path": "x"}}}', 400),
    (b'{"tracks": [1], "filters": {"min_duration": -5}}', 400),
])
def test_similar_post_bad_input(served, body, status):
    answer = served.client.post("/api/v1/similar", raw=body)
    assert answer.status == status and answer.json["error"], answer.body


@pytest.mark.parametrize("body", [
    {"track": 1, "event": "love"},
    {"track": 1},
    {"track": 1, "event": "play", "listened_s": -3},
    {"track": 1, "event": "play", "listened_s": "long"},
    {"track": 1, "event": "like", "user": ""},
    {"track": 1, "event": "like", "user": "x" * 500},
    {"event": "like"},
])
def test_history_bad_input(served, body):
    answer = served.client.post("/api/v1/history", body)
    assert answer.status == 400 and answer.json["error"], answer.body


def test_oversized_body_and_unknown_paths(served):
    client = served.client
    assert client.post("/api/v1/similar", raw=b"{" + b" " * (2 << 20) + b"}").status == 413
    for path in ("/api/v1/nothing", "/static/../recengine/web/app.py", "/static/nothing.js"):
        answer = client.get(path)
        assert answer.status == 404 and b"def create_app" not in answer.body
    assert client.call("DELETE", "/api/v1/tracks").status == 405
