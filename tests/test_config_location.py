"""Where the config file is: each location rule, relative paths, and the plugin-folder default."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from recengine.config import build_config, core_options
from recengine.config.loader import init_target, locate_config, user_config_path
from recengine.playback.mpd_client import mpd_environment
from recengine.plugin.boot import drop_in_refusal, load_settings


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A home, an XDG config folder, a system file and a working folder, all empty; cwd is the last."""
    home, xdg, work = tmp_path / "home", tmp_path / "xdg", tmp_path / "work"
    for folder in (home, xdg, work):
        folder.mkdir()
    monkeypatch.chdir(work)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}
    return env, tmp_path / "etc" / "recengine" / "config.yaml"


def touch(path: Path, text: str = "{}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_explicit_option_wins_over_everything(places):
    env, system = places
    touch(system)
    touch(user_config_path(env))
    env["RECENGINE_CONFIG"] = "/elsewhere.yaml"
    location = locate_config("named.yaml", env, system=system)
    assert (location.path, location.rule) == (Path("named.yaml"), "--config")


def test_environment_variable_comes_next_even_when_the_file_is_missing(places):
    env, system = places
    touch(user_config_path(env))
    env["RECENGINE_CONFIG"] = "/nowhere/config.yaml"
    location = locate_config(None, env, system=system)
    assert (location.path, location.rule) == (Path("/nowhere/config.yaml"), "$RECENGINE_CONFIG")


def test_xdg_config_home_then_home_dot_config(places):
    env, system = places
    touch(system)
    assert user_config_path(env) == Path(env["XDG_CONFIG_HOME"]) / "recengine" / "config.yaml"
    touch(user_config_path(env))
    assert locate_config(None, env, system=system).path == user_config_path(env)
    assert locate_config(None, env, system=system).rule == "$XDG_CONFIG_HOME"
    for unset in ({"HOME": env["HOME"]}, {"HOME": env["HOME"], "XDG_CONFIG_HOME": ""},
                  {"HOME": env["HOME"], "XDG_CONFIG_HOME": "relative/dir"}):  # ignored, as the XDG spec says
        assert user_config_path(unset) == Path(env["HOME"]) / ".config" / "recengine" / "config.yaml"


def test_system_file_when_the_user_has_none(places):
    env, system = places
    touch(system)
    location = locate_config(None, env, system=system)
    assert (location.path, location.rule) == (system, "/etc")


def test_built_in_defaults_and_the_working_folder_is_never_read(places):
    env, system = places
    touch(Path.cwd() / "config.yaml", "library: {folders: [/nowhere]}\n")
    location = locate_config(None, env, system=system)
    assert (location.path, location.rule) == (None, "defaults")


def test_init_writes_where_the_location_rules_look_first(places):
    env, _ = places
    assert init_target(None, env) == user_config_path(env)
    assert init_target("x.yaml", env) == Path("x.yaml")
    assert init_target(None, {**env, "RECENGINE_CONFIG": "/y.yaml"}) == Path("/y.yaml")


def test_relative_paths_are_relative_to_the_file_in_use(places):
    env, system = places
    path = touch(user_config_path(env), "library: {folders: [music]}\nplugin_dirs: [more-plugins]\n")
    config = build_config(locate_config(None, env, system=system).path, core_options())
    assert config["library.folders"] == [str(path.parent / "music")]
    assert config["plugin_dirs"] == [str(path.parent / "more-plugins")]


def test_plugin_folder_default_is_beside_the_config_and_none_without_one(places):
    env, _ = places
    path = touch(user_config_path(env))
    assert build_config(path, core_options())["plugin_dirs"] == [str(path.parent / "plugins")]
    # built-in defaults: no plugin folder at all (not ./plugins of wherever the command runs)
    assert build_config(None, core_options())["plugin_dirs"] == []
    assert build_config(None, core_options(), {"library": {"folders": ["/srv/music"]}})["plugin_dirs"] == []


def write_plugin(folder: Path, name: str = "evil") -> Path:
    """A drop-in that leaves a mark when it is imported."""
    folder.mkdir(parents=True, exist_ok=True)
    plugin = folder / f"{name}.py"
    plugin.write_text(f"from pathlib import Path\nPath({str(folder.parent / (name + '-ran'))!r}).touch()\n")
    return plugin


def test_working_folder_plugins_never_run_with_the_defaults(places):
    plugin = write_plugin(Path.cwd() / "plugins")
    config, plugin_set = load_settings(None, entrypoints=False)
    assert config["plugin_dirs"] == [] and "evil" not in plugin_set.names
    assert not (plugin.parent.parent / "evil-ran").exists()


def test_plugins_beside_the_config_file_load(places):
    env, _ = places
    path = touch(user_config_path(env))
    write_plugin(path.parent / "plugins", "mine")
    _, plugin_set = load_settings(path, entrypoints=False)
    assert "mine" in plugin_set.names and (path.parent / "mine-ran").exists()


@pytest.mark.parametrize("target", ["file", "folder", "parent", "package file"])
def test_drop_ins_writable_by_others_are_refused_with_the_fix(tmp_path, target):
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text("{}\n")
    plugin = write_plugin(config_dir / "plugins")
    package = config_dir / "plugins" / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    changed = {"file": plugin, "folder": plugin.parent, "parent": config_dir,
               "package file": package / "__init__.py"}[target]
    changed.chmod(changed.stat().st_mode | stat.S_IWOTH)
    _, plugin_set = load_settings(config_dir / "config.yaml", entrypoints=False)
    assert "evil" not in plugin_set.names and not (config_dir / "evil-ran").exists()
    [failure] = plugin_set.failures
    assert failure.location == str(config_dir / "plugins")
    assert f"{changed} is writable by other users (chmod go-w {changed})" in failure.error
    changed.chmod(changed.stat().st_mode & ~(stat.S_IWOTH | stat.S_IWGRP))
    _, plugin_set = load_settings(config_dir / "config.yaml", entrypoints=False)
    assert "evil" in plugin_set.names and not plugin_set.failures


def test_group_writable_and_foreign_owned_files_are_refused_but_a_sticky_parent_is_not(tmp_path):
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)  # as /tmp: others may add files here but not replace ours
    plugin = write_plugin(sticky / "plugins")
    assert drop_in_refusal(plugin.parent) is None
    plugin.chmod(0o664)
    assert "is writable by other users" in drop_in_refusal(plugin.parent)
    plugin.chmod(0o644)
    if os.getuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(plugin, 65534, -1)
    assert f"{plugin} is owned by " in drop_in_refusal(plugin.parent)


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {}),
    ({"MPD_HOST": "music.lan", "MPD_PORT": "6601"}, {"host": "music.lan", "port": 6601}),
    ({"MPD_HOST": "s3cret@music.lan"}, {"host": "music.lan", "password": "s3cret"}),
    ({"MPD_HOST": "/run/mpd/socket"}, {"host": "/run/mpd/socket"}),
    ({"MPD_HOST": "@mpd"}, {"host": "@mpd"}),  # an abstract socket, no password
    ({"MPD_HOST": "pw@@mpd"}, {"host": "@mpd", "password": "pw"}),
    ({"MPD_PORT": "http"}, {}),  # not a port: ignored with a warning
])
def test_mpd_host_and_port_are_read_as_mpd_clients_do(env, expected):
    assert mpd_environment(env) == expected


def test_mpd_environment_gives_the_defaults_and_the_file_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MPD_HOST", "pw@music.lan")
    monkeypatch.setenv("MPD_PORT", "6601")
    path = touch(tmp_path / "config.yaml", "plugin_dirs: []\n")
    config, _ = load_settings(path, entrypoints=False)
    assert (config["plugins.mpd.host"], config["plugins.mpd.port"], config["plugins.mpd.password"]) == (
        "music.lan", 6601, "pw")
    path.write_text("plugin_dirs: []\nplugins:\n  mpd: {host: other, port: 7000}\n")
    config, _ = load_settings(path, entrypoints=False)
    assert (config["plugins.mpd.host"], config["plugins.mpd.port"]) == ("other", 7000)
