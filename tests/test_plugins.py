"""Plugin discovery, blocking, entry points and failure isolation."""

from __future__ import annotations

import sys
import textwrap
import threading
import time

import pytest

import recengine
from recengine.plugin.manager import DEFAULT_PLUGINS, call_each, get_plugin_manager, hook_names
from recengine.plugin.registry import collect

from .conftest import PLUGIN_FIXTURES


def by_name(plugin_set):
    return {i.name: i for i in plugin_set.infos}


def test_builtins_are_registered_like_any_plugin():
    ps = get_plugin_manager(entrypoints=False)
    infos = by_name(ps)
    for dotted in DEFAULT_PLUGINS:
        short = dotted.rsplit(".", 1)[-1]
        assert infos[short].source == "built-in"
        assert infos[short].error is None, infos[short].error
        assert infos[short].hooks, short
    assert "load_audio" in infos["pydub_decoder"].hooks


def test_drop_ins_good_broken_raising_and_misspelt():
    ps = get_plugin_manager(plugin_dirs=[PLUGIN_FIXTURES], entrypoints=False)
    infos = by_name(ps)
    assert infos["good_extractor"].error is None
    assert infos["good_extractor"].source == "file"
    assert infos["good_extractor"].version == "1.2"
    assert infos["good_extractor"].hooks == ["register_extractors"]

    broken = infos["broken_import"]
    assert "failed to import: RuntimeError: this plugin is broken on purpose" in broken.error
    assert "broken_import.py" in broken.error

    misspelt = infos["unknown_hook"]
    assert "unknown hook 'register_extractor' (did you mean 'register_extractors'?)" in misspelt.error
    assert not ps.pm.has_plugin("unknown_hook")
    ps.pm.check_pending()  # nothing unknown is left registered

    # the rest works: the good extractor and the built-ins register; the raising plugin is skipped
    extractors = collect(ps.pm, "extractors")
    assert "level" in extractors
    assert extractors.owners["level"] == "good_extractor"
    assert any("raises_at_call: register_extractors failed: ValueError" in e for e in extractors.errors)


def test_call_each_isolates_a_raising_event_hook(caplog):
    ps = get_plugin_manager(plugin_dirs=[PLUGIN_FIXTURES], entrypoints=False)
    seen = []

    class Listener:
        @recengine.hookimpl
        def track_added(self, track):
            seen.append(track)

    ps.pm.register(Listener(), name="listener")
    track = recengine.Track(1, "/music", "a.flac")
    call_each(ps.pm, "track_added", track=track)
    assert seen == [track]
    assert "raises_at_call failed in hook track_added" in caplog.text


def test_blocking_by_config_and_env():
    ps = get_plugin_manager(plugin_dirs=[PLUGIN_FIXTURES], disabled=["good_extractor", "xspf"],
                            entrypoints=False, env={"RECENGINE_DISABLE_PLUGINS": "m3u8, broken_import"})
    infos = by_name(ps)
    for name in ("good_extractor", "xspf", "m3u8", "broken_import"):
        assert infos[name].blocked, name
        assert not ps.pm.has_plugin(name)
    assert "good_extractor" not in ps.names


def test_essential_plugins_cannot_be_blocked():
    ps = get_plugin_manager(disabled=["pydub_decoder"], entrypoints=False)
    assert ps.pm.has_plugin("pydub_decoder")


def test_duplicate_registered_names_are_rejected(tmp_path):
    (tmp_path / "twin.py").write_text(
        (PLUGIN_FIXTURES / "good_extractor.py").read_text())
    ps = get_plugin_manager(plugin_dirs=[PLUGIN_FIXTURES, tmp_path], entrypoints=False)
    extractors = collect(ps.pm, "extractors")
    assert any("'level' from plugin" in e and "already registered" in e for e in extractors.errors)


def test_protocol_is_checked(tmp_path):
    (tmp_path / "bad_shape.py").write_text(textwrap.dedent("""
        import recengine
        class NoDim:
            name = "nodim"
            version = 1
            def extract(self, samples, sr):
                return samples[:1]
        @recengine.hookimpl
        def register_extractors(register):
            register(NoDim())
    """))
    ps = get_plugin_manager(plugin_dirs=[tmp_path], entrypoints=False)
    extractors = collect(ps.pm, "extractors")
    assert "nodim" not in extractors
    assert any("dim must be int" in e for e in extractors.errors)


@pytest.fixture
def fake_distributions(tmp_path, monkeypatch):
    """Two installed distributions exposing plugins in the `recengine` entry-point group."""
    for dist, module, body in (
        ("recengine_one", "recengine_one_mod", "X = 1"),
        ("recengine_two", "recengine_two_mod", "raise ImportError('two is broken')"),
    ):
        (tmp_path / f"{module}.py").write_text(
            "import recengine\n" + body + "\n@recengine.hookimpl\ndef startup(engine):\n    pass\n")
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[recengine]\n{dist.split('_')[1]} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for mod in ("recengine_one_mod", "recengine_two_mod"):
        sys.modules.pop(mod, None)


def test_entry_points_are_loaded_and_failures_isolated(fake_distributions):
    ps = get_plugin_manager(env={})
    infos = by_name(ps)
    assert infos["one"].source == "entry point"
    assert infos["one"].version == "1.0"
    assert infos["one"].hooks == ["startup"]
    assert "ImportError: two is broken" in infos["two"].error
    assert ps.pm.has_plugin("pydub_decoder")


def test_load_plugins_limits_entry_points(fake_distributions):
    ps = get_plugin_manager(load_plugins=["two"], env={})
    assert "one" not in by_name(ps)
    ps = get_plugin_manager(load_plugins=["one"], env={})
    assert "two" not in by_name(ps) and ps.pm.has_plugin("one")


def test_env_load_plugins_empty_loads_only_builtins(fake_distributions):
    ps = get_plugin_manager(env={"RECENGINE_LOAD_PLUGINS": ""})
    names = by_name(ps)
    assert "one" not in names and "two" not in names
    assert ps.pm.has_plugin("pydub_decoder")


def test_drop_in_package_is_loaded(tmp_path):
    pkg = tmp_path / "pkgplugin"
    pkg.mkdir()
    (pkg / "helper.py").write_text("VALUE = 42\n")
    (pkg / "__init__.py").write_text(
        "import recengine\nfrom .helper import VALUE\n@recengine.hookimpl\ndef startup(engine):\n    return VALUE\n")
    ps = get_plugin_manager(plugin_dirs=[tmp_path], entrypoints=False)
    assert by_name(ps)["pkgplugin"].error is None
    assert ("pkgplugin", 42) in call_each(ps.pm, "startup", engine=None)


def test_hook_names_lists_every_declared_hook():
    names = hook_names()
    assert {"addoption", "configure", "load_audio", "register_extractors", "startup", "shutdown"} <= set(names)


def _listener(hang: threading.Event | None, seen: list):
    class Listener:
        @recengine.hookimpl
        def track_added(self, track):
            if hang is not None and track.relpath == "hang.flac":
                hang.wait(30)
            seen.append(track.relpath)

    return Listener()


def test_event_hook_that_hangs_costs_its_deadline_once_and_later_events_go_on():
    """Issue 12 item 4: a hanging event hook must never hang the caller."""
    from recengine.plugin.events import EventDispatcher

    ps = get_plugin_manager(builtins=(), entrypoints=False)
    release, seen = threading.Event(), []
    ps.pm.register(_listener(release, seen), name="listener")
    events = EventDispatcher(ps.pm, deadline_s=0.5)
    try:
        assert events.emit("track_added", track=recengine.Track(1, "/m", "a.flac"))
        started = time.monotonic()
        assert not events.emit("track_added", track=recengine.Track(2, "/m", "hang.flac"))
        assert time.monotonic() - started < 2.0
        for i in range(3, 6):
            assert events.emit("track_added", track=recengine.Track(i, "/m", f"{i}.flac"))
        assert seen == ["a.flac", "3.flac", "4.flac", "5.flac"]
        assert events.overdue == ["track_added"]
    finally:
        release.set()


def test_engine_operations_return_despite_a_hanging_history_hook(styled):
    release, seen = threading.Event(), []

    class Hangs:
        @recengine.hookimpl
        def history_recorded(self, event):
            release.wait(30)
            seen.append(event.kind)

    styled.pm.register(Hangs())
    styled.events.deadline_s = 0.5
    track_id = styled.catalog.tracks()[0].track_id
    started = time.monotonic()
    try:
        styled.record("u", track_id, "like")
        assert time.monotonic() - started < 2.5
        assert [e.kind for e in styled.catalog.events("u")] == ["like"]  # durable all the same
        assert seen == []
    finally:
        release.set()
