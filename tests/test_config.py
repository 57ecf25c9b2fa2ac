"""Config: safe YAML, dotted-key errors with suggestions, env secrets, plugin-declared keys."""

from __future__ import annotations

import time

import pytest

from recengine.config import REDACTED, ConfigError, OptionSpec, build_config, core_options, read_yaml
from recengine.plugin.boot import load_settings


def write(tmp_path, text: str, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def check(tmp_path, text: str, **kw):
    path = write(tmp_path, text)
    return build_config(path, core_options(), **kw)


def test_defaults_validate_and_relative_paths_resolve_to_the_config_folder(tmp_path):
    (tmp_path / "music").mkdir()
    config = check(tmp_path, "library:\n  folders: [music]\nplugin_dirs: [plugins]\n")
    assert config.library_folders == [tmp_path / "music"]
    assert config["plugin_dirs"] == [str(tmp_path / "plugins")]
    assert config["analysis.sample_rate"] == 22050
    assert config["scan.workers"] == 0


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError) as err:
        check(tmp_path, "library:\n  folder: [/srv/music]\n")
    assert err.value.key == "library.folder"
    assert "did you mean 'folders'" in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / 'config.yaml'}: library.folder:")


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match=r"analysys: unknown setting; did you mean 'analysis'"):
        check(tmp_path, "analysys:\n  windows: 2\n")


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("analysis:\n  windows: three\n", "analysis.windows", "expected a whole number"),
        ("analysis:\n  windows: 0\n", "analysis.windows", "must be greater than 0"),
        ("analysis:\n  window_s: true\n", "analysis.window_s", "expected a number"),
        ("library:\n  folders: {a: 1}\n", "library.folders", "expected a list of strings"),
        ("library:\n  folders: [/a, [nested]]\n", "library.folders[1]", "expected a string"),
        ("library: 5\n", "library", "expected a mapping"),
        ("log_level: loud\n", "log_level", "expected one of debug, info, warning, error"),
        ("library:\n  extensions: [mp3]\n", "library.extensions", "start with a dot"),
    ],
)
def test_each_class_of_mistake_names_the_dotted_key(tmp_path, text, key, expected):
    with pytest.raises(ConfigError) as err:
        check(tmp_path, text)
    assert err.value.key == key
    assert expected in err.value.message


def test_env_secret_is_expanded_and_redacted_when_shown(tmp_path):
    spec = core_options()
    spec.add("plugins.mpd.password", "str", "", "MPD password", secret=True)
    path = write(tmp_path, "plugins:\n  mpd:\n    password: ${MPD_PASS}\n")
    config = build_config(path, spec, env={"MPD_PASS": "hunter2"}, loaded_plugins={"mpd"})
    assert config["plugins.mpd.password"] == "hunter2"
    assert config.nested()["plugins"]["mpd"]["password"] == REDACTED
    assert "hunter2" not in repr(config.nested())
    unset = build_config(path, spec, env={}, loaded_plugins={"mpd"})  # an unset variable is no error yet
    with pytest.raises(ConfigError, match="plugins.mpd.password: environment variable MPD_PASS is not set"):
        unset["plugins.mpd.password"]  # ... only where its value is used


def test_unset_variable_for_an_unused_backend_breaks_nothing(tmp_path):
    """Issue 12 item 15: ``${MPD_PASSWORD}`` unset with ``backend: null`` must not stop every command."""
    spec = core_options()
    spec.add("plugins.mpd.password", "str", "", "MPD password", secret=True)
    path = write(tmp_path, "backend: 'null'\nplugins:\n  mpd:\n    password: ${MPD_PASSWORD}\n")
    config = build_config(path, spec, env={}, loaded_plugins={"mpd"})
    assert config["backend"] == "null"
    shown = config.nested(redact=False)["plugins"]["mpd"]["password"]
    assert "MPD_PASSWORD" in shown and "not set" in shown
    with pytest.raises(ConfigError, match="MPD_PASSWORD is not set"):
        config.get("plugins.mpd.password")


def test_yaml_syntax_error_keeps_line_and_column(tmp_path):
    """Issue 12 item 14."""
    path = write(tmp_path, "library:\n  folders: [/music]\nbackend: mpd: oops\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(path)
    assert "line 3, column" in str(err.value)
    assert "mapping values are not allowed here" in str(err.value)


@pytest.mark.parametrize(
    "payload",
    [
        "x: !!python/object/apply:os.system ['touch {marker}']\n",
        "!!python/object/new:os.system ['touch {marker}']\n",
        "x: !!python/name:os.system\n",
    ],
)
def test_yaml_code_execution_payloads_are_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = write(tmp_path, payload.format(marker=marker))
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_yaml(path)
    assert not marker.exists()


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="aliases"):
        read_yaml(path)
    assert time.monotonic() - started < 1.0


def test_oversized_config_is_refused(tmp_path):
    path = write(tmp_path, "# " + "x" * (300 * 1024) + "\n")
    with pytest.raises(ConfigError, match="larger than 256 KiB"):
        read_yaml(path)


def test_duplicate_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="duplicate key 'library'"):
        read_yaml(write(tmp_path, "library: {}\nlibrary: {}\n"))


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(write(tmp_path, "- a\n- b\n"))


def test_plugin_declared_keys_are_validated_like_core_keys(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "knobs.py").write_text(
        "import recengine\n"
        "@recengine.hookimpl\n"
        "def addoption(spec):\n"
        "    spec.add('plugins.knobs.level', 'int', 3, 'how loud')\n"
    )
    path = write(tmp_path, "plugin_dirs: [plugins]\nplugins:\n  knobs:\n    level: 7\n")
    config, _ = load_settings(path, entrypoints=False)
    assert config["plugins.knobs.level"] == 7

    write(tmp_path, "plugin_dirs: [plugins]\nplugins:\n  knobs:\n    levle: 7\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, entrypoints=False)
    assert err.value.key == "plugins.knobs.levle"
    assert "did you mean 'level'" in err.value.message

    write(tmp_path, "plugin_dirs: [plugins]\nplugins:\n  knobs:\n    level: high\n")
    with pytest.raises(ConfigError, match="plugins.knobs.level: expected a whole number"):
        load_settings(path, entrypoints=False)


def test_section_of_a_plugin_that_is_not_loaded_is_a_warning(tmp_path):
    path = write(tmp_path, "plugin_dirs: []\nplugins:\n  absent:\n    x: 1\n")
    config, _ = load_settings(path, entrypoints=False)
    assert any("no loaded plugin named 'absent'" in w for w in config.warnings)


def test_option_spec_rejects_duplicates_and_unknown_types():
    spec = OptionSpec()
    spec.add("plugins.a.x", "int", 1)
    with pytest.raises(ValueError, match="declared twice"):
        spec.add("plugins.a.x", "int", 1)
    with pytest.raises(ValueError, match="unknown option type"):
        spec.add("plugins.a.y", "complex", 1)
