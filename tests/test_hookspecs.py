"""Every hook is documented, listed in the README, and exercised here through real behaviour.

The meta-test at the bottom fails when a hook is added without a docstring, a README row or a
``test_hook_<name>`` test (as datasette does for its hooks).
"""

from __future__ import annotations

import inspect
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import recengine
from recengine.engine import Engine
from recengine.plugin import spec as hookspecs
from recengine.plugin.manager import hook_names
from recengine.testing import temp_plugin, tone

from .conftest import make_engine

README = Path(__file__).parent.parent / "README.md"


def drop_in(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text("import numpy as np\nimport recengine\n" + textwrap.dedent(body))
    return path


def engine_with_plugins(tmp_path, folders, plugin_dir, **raw_extra):
    raw = {"library": {"folders": [str(f) for f in folders]}, "data_dir": str(tmp_path / "data"),
           "plugin_dirs": [str(plugin_dir)], "scan": {"workers": 1}, "models_dir": str(tmp_path / "no-models"),
           **raw_extra}
    return Engine.open(None, raw=raw, entrypoints=False)


def test_hook_addoption_and_configure(tmp_path):
    drop_in(tmp_path / "p", "knob", """
        seen = []
        @recengine.hookimpl
        def addoption(spec):
            spec.add("plugins.knob.level", "int", 3, "how loud")
        @recengine.hookimpl
        def configure(config):
            seen.append(config.get("plugins.knob.level"))
    """)
    engine = engine_with_plugins(tmp_path, [], tmp_path / "p", plugins={"knob": {"level": 9}})
    module = engine.pm.get_plugin("knob")
    assert engine.config["plugins.knob.level"] == 9
    assert module.seen == [9]


def test_hook_register_extractors_and_load_audio(tmp_path):
    """A plugin decoder (firstresult, before the built-in) and a plugin extractor, in scan workers."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.wav").write_bytes(b"not really audio, but the plugin decoder handles it")
    drop_in(tmp_path / "p", "fake_decoder", """
        from recengine.models import DecodedAudio
        @recengine.hookimpl
        def load_audio(path, config):
            if path.read_bytes().startswith(b"not really"):
                t = np.arange(22050 * 2) / 22050
                return DecodedAudio(np.sin(2 * np.pi * 440 * t).astype(np.float32), 22050, 2.0, decoder="fake")
        class Peak:
            name = "peak"
            version = 1
            dim = 1
            def extract(self, samples, sr):
                return np.array([np.abs(samples).max()], dtype=np.float32)
        @recengine.hookimpl
        def register_extractors(register):
            register(Peak())
    """)
    with engine_with_plugins(tmp_path, [lib], tmp_path / "p") as engine:
        report = engine.scan()
        assert report.featurised == 1, report.summary()
        ids, blocks = engine.catalog.feature_matrix(engine.extractor_versions())
        assert blocks["peak"][0, 0] == pytest.approx(1.0, abs=1e-3)
        assert engine.extractors.owners["peak"] == "fake_decoder"


def test_hook_register_scorers(styled):
    class Shortest:
        name = "shortest"

        def score(self, candidates, profile, context):
            return [(1.0 if t.relpath.endswith(".wav") else 0.0, "a wav") for t in candidates]

    class Plugin:
        @recengine.hookimpl
        def register_scorers(self, register):
            register(Shortest())

    styled.pm.register(Plugin())
    styled.__dict__.pop("scorers", None)
    recs = styled.recommend("x", 3, strategies={"shortest": 1.0})
    assert [r.track.relpath.endswith(".wav") for r in recs] == [True, True, True]
    assert recs[0].why == "a wav"


def test_hook_register_backends_and_choose_backend(styled):
    played = []

    class Recorder:
        name = "recorder"

        def play(self, tracks, mode="replace", record=None):
            played.extend(tracks)
            return len(tracks)

    class Plugin:
        @recengine.hookimpl
        def register_backends(self, register):
            register(Recorder())

        @recengine.hookimpl
        def choose_backend(self, config, backends):
            return backends.get("recorder")

    with temp_plugin(styled.pm, Plugin()):
        styled.__dict__.pop("backends", None)
        backends = styled.backends
        assert {"null", "recorder"} <= set(backends.names())
        chosen = styled.pm.hook.choose_backend(config=styled.config, backends=backends.items)
        assert chosen.name == "recorder"
        chosen.play(styled.catalog.tracks()[:2])
        assert len(played) == 2
    default = styled.pm.hook.choose_backend(config=styled.config, backends=styled.backends.items)
    assert default.name == "null"  # the built-in reads `backend:`


def test_hook_register_playlist_writers_and_playlist_written(tmp_path, styled_library, styled_data):
    import shutil

    shutil.copytree(styled_data, tmp_path / "data")
    drop_in(tmp_path / "p", "plain", """
        written = []
        class Plain:
            name = "plain"
            suffix = ".txt"
            def render(self, playlist, profile, playlist_path=None):
                return ("# " + playlist.marker + "\\n" + "\\n".join(str(e.path) for e in playlist.entries) + "\\n").encode()
            def marker_of(self, path):
                first = path.read_text().splitlines()[0]
                return first[2:] if first.startswith("# ") else None
        @recengine.hookimpl
        def register_playlist_writers(register):
            register(Plain())
        @recengine.hookimpl
        def playlist_written(name, path):
            written.append((name, path))
    """)
    with engine_with_plugins(tmp_path, [styled_library], tmp_path / "p",
                             playlists=[{"name": "P", "size": 3, "writers": ["plain"]}]) as engine:
        engine.playlists.refresh()
        path = engine.config.data_dir / "playlists" / "P.txt"
        assert len(path.read_text().splitlines()) == 4
        assert engine.pm.get_plugin("plain").written == [("P", path)]


def test_hook_register_routes(tmp_path, styled_library, styled_data):
    import http.client
    import json
    import shutil
    import threading

    from recengine.web import start_server
    from recengine.web.settings import WebSettings

    shutil.copytree(styled_data, tmp_path / "data")
    drop_in(tmp_path / "p", "hello_route", """
        from starlette.responses import JSONResponse

        @recengine.hookimpl
        def register_routes(register, config):
            def hello(request):
                return JSONResponse({"tracks": request.app.state.web.engine.catalog.counts()["ok"]})
            register("/api/v1/hello", hello, summary="Count the analysed tracks")
    """)
    with engine_with_plugins(tmp_path, [styled_library], tmp_path / "p", http={"port": 0,
                                                                                  "token": "hook-test-token-0123"}) as engine:
        handle = start_server(engine, WebSettings.from_config(engine.config), threading.Event())
        try:
            for token, status in ((None, 401), ("hook-test-token-0123", 200)):
                conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
                conn.request("GET", "/api/v1/hello", headers={"Authorization": f"Bearer {token}"} if token else {})
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == status
            assert json.loads(body) == {"tracks": 15}
            conn.request("GET", "/api/v1/openapi.json", headers={"Authorization": "Bearer hook-test-token-0123"})
            assert "/api/v1/hello" in json.loads(conn.getresponse().read())["paths"]
        finally:
            handle.stop()


def test_hook_track_added_track_changed_track_removed(tmp_path):
    from recengine.testing import encode

    lib = tmp_path / "lib"
    a = encode(tone(300, 1.5), lib / "a.wav")
    b = encode(tone(500, 1.5), lib / "b.wav")
    events = []

    class Listener:
        @recengine.hookimpl
        def track_added(self, track):
            events.append(("added", track.relpath))

        @recengine.hookimpl
        def track_changed(self, track):
            events.append(("changed", track.relpath))

        @recengine.hookimpl
        def track_removed(self, track):
            events.append(("removed", track.relpath))

    with make_engine(tmp_path, [lib]) as engine:
        engine.pm.register(Listener())
        engine.scan()
        encode(tone(900, 1.8), a)
        b.rename(lib / "c.wav")
        engine.scan()
        (lib / "c.wav").unlink()
        engine.scan()
    assert sorted(events[:2]) == [("added", "a.wav"), ("added", "b.wav")]
    assert sorted(events[2:4]) == [("changed", "a.wav"), ("changed", "c.wav")]
    assert events[4:] == [("removed", "c.wav")]


def test_hook_index_rebuilt(styled):
    seen = []

    class Listener:
        @recengine.hookimpl
        def index_rebuilt(self, generation, size):
            seen.append((generation, size))

    styled.pm.register(Listener())
    gen = styled.index.build()
    assert seen == [(gen, 15)]


def test_hook_history_recorded(styled):
    seen = []

    class Listener:
        @recengine.hookimpl
        def history_recorded(self, event):
            seen.append(event.kind)

    styled.pm.register(Listener())
    styled.record("u", styled.catalog.tracks()[0].track_id, "skip", listened_s=3)
    assert seen == ["skip"]


def test_hook_startup_and_shutdown(tmp_path, styled_library, styled_data):
    import shutil

    from recengine.service.daemon import Daemon

    shutil.copytree(styled_data, tmp_path / "data")
    calls = []

    class Lifecycle:
        @recengine.hookimpl
        def startup(self, engine):
            calls.append("startup")

        @recengine.hookimpl
        def shutdown(self, engine):
            calls.append("shutdown")

    with make_engine(tmp_path, [styled_library], daemon={"settle_s": 0.2}) as engine:
        engine.pm.register(Lifecycle())
        daemon = Daemon(engine)
        thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
        thread.start()
        deadline = time.monotonic() + 30
        while daemon.state != "watching" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls == ["startup"]
        daemon.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert calls == ["startup", "shutdown"]


# --- the meta-test ---------------------------------------------------------------------------------


def test_every_hook_is_documented_listed_and_tested():
    readme = README.read_text()
    here = Path(__file__).read_text()
    for name in hook_names():
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        assert len(doc) > 60, f"hook {name} needs a docstring saying when it is called"
        assert "Called" in doc or "called" in doc, f"hook {name}: say when/where it is called"
        assert f"`{name}(" in readme, f"hook {name} is missing from the README hook table"
        tests = [ln for ln in here.splitlines() if ln.startswith("def test_hook_")]
        assert any(name in ln for ln in tests), f"no test_hook_... exercises {name}"


def test_hookimpl_marker_is_public():
    assert recengine.hookimpl is hookspecs.hookimpl
    assert isinstance(np.__version__, str)
