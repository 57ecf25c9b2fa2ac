"""The command line: exit codes, one-line errors, plugins listing, config check and show."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from recengine.cli import main

from .conftest import PLUGIN_FIXTURES


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "recengine", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_help_and_usage_errors():
    assert run("--help").returncode == 0
    assert run("scan", "--help").returncode == 0
    proc = run("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_config_check_names_the_key_and_suggests_the_fix(tmp_path, capsys):
    (tmp_path / "music").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("library:\n  folders: [music]\nanalysis:\n  windws: 2\n")
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: analysis.windws: unknown setting; did you mean 'windows'?" in err
    assert "Traceback" not in err
    config.write_text("library:\n  folders: [music, /srv/musik]\n")
    assert main(["--config", str(config), "config", "check"]) == 2
    assert "library.folders[1]: '/srv/musik' does not exist" in capsys.readouterr().err
    config.write_text("library:\n  folders: [music]\nplugin_dirs: []\n")
    assert main(["--config", str(config), "config", "check"]) == 0


def test_config_show_redacts_secrets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPD_PASSWORD", "hunter2")
    config = tmp_path / "config.yaml"
    config.write_text("plugin_dirs: []\nplugins:\n  mpd: {password: '${MPD_PASSWORD}'}\n")
    assert main(["--config", str(config), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "********" in out and "data_dir:" in out


def test_plugins_lists_builtins_and_a_broken_drop_in(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    shutil.copytree(PLUGIN_FIXTURES, plugins)
    config = tmp_path / "config.yaml"
    config.write_text("plugin_dirs: [plugins]\n")
    assert main(["--config", str(config), "plugins"]) == 1  # a plugin failed to load
    out = capsys.readouterr().out
    assert "timbre  [built-in]" in out and "hooks: register_extractors" in out
    assert "good_extractor  [file] 1.2  ok" in out
    assert out.count("error: failed to import: RuntimeError: this plugin is broken on purpose") == 1
    assert "unknown hook 'register_extractor' (did you mean 'register_extractors'?)" in out


def test_a_broken_plugin_does_not_stop_other_commands(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(PLUGIN_FIXTURES / "broken_import.py", plugins)
    config = tmp_path / "config.yaml"
    config.write_text(f"plugin_dirs: [plugins]\nlibrary: {{folders: ['{tmp_path}']}}\ndata_dir: '{tmp_path / 'd'}'\n")
    proc = run("--config", str(config), "failures")
    assert proc.returncode == 0
    lines = [ln for ln in proc.stderr.splitlines() if "broken_import" in ln]
    assert len(lines) == 1  # one clear message, then the command works
    assert "left out: failed to import: RuntimeError: this plugin is broken on purpose" in proc.stderr


def test_missing_library_says_so_and_offers_the_demo(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: ['{tmp_path / 'nowhere'}']}}\ndata_dir: '{tmp_path / 'd'}'\n"
                      "plugin_dirs: []\n")
    assert main(["--config", str(config), "scan"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "recengine demo" in err


@pytest.mark.parametrize("payload", ["x: !!python/object/apply:os.system ['echo pwned']\n"])
def test_unsafe_yaml_is_a_config_error_exit_2(tmp_path, payload):
    config = tmp_path / "config.yaml"
    config.write_text(payload)
    proc = run("--config", str(config), "config", "check")
    assert proc.returncode == 2 and "pwned" not in proc.stdout
    assert "tags such as !!python/... are not allowed" in proc.stderr


@pytest.mark.parametrize("hook", ["addoption", "configure"])
def test_a_plugin_raising_in_addoption_or_configure_breaks_no_command(tmp_path, hook):
    """Issue 12 item 5: isolated, and the message names the plugin and its file."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    arg = "spec" if hook == "addoption" else "config"
    (plugins / "bad_options.py").write_text(
        f"import recengine\n@recengine.hookimpl\ndef {hook}({arg}):\n    raise RuntimeError('boom')\n")
    (tmp_path / "music").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"library:\n  folders: [music]\ndata_dir: {tmp_path / 'data'}\nplugin_dirs: [plugins]\n")
    for command in (["plugins"], ["config", "check"], ["status"]):
        proc = run("--config", str(config), *command)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "bad_options" in proc.stderr and f"failed in hook {hook}" in proc.stderr
        assert str(plugins / "bad_options.py") in proc.stderr


def _styled_config(tmp_path, styled_library, styled_data):
    shutil.copytree(styled_data, tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(f"library:\n  folders: [{styled_library}]\ndata_dir: {tmp_path / 'data'}\nplugin_dirs: []\n")
    return config


def test_options_between_the_verb_and_the_tracks(tmp_path, styled_library, styled_data, capsys):
    """Issue 12 item 12: ``history like --user U TRACK`` as every CLI user expects."""
    config = _styled_config(tmp_path, styled_library, styled_data)
    track = styled_library / "tones" / "tones0.flac"
    assert main(["--config", str(config), "history", "like", "--user", "zoe", str(track)]) == 0
    assert main(["--config", str(config), "history", "skip", str(track), "--user", "zoe", "--listened", "3"]) == 0
    assert main(["--config", str(config), "similar", str(track), "--json", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "like recorded for zoe" in out and "skip recorded for zoe" in out


@pytest.mark.parametrize("argv, message", [
    (["recommend", "-n", "-3"], "from 1 to 10000"),
    (["similar", "1", "-n", "0"], "from 1 to 10000"),
    (["similar", "1", "--tag", "genre"], "FIELD=TEXT"),
    (["recommend", "--strategy", "taste=abc"], "NAME=WEIGHT"),
    (["recommend", "--strategy", "tast=1"], "unknown strategy 'tast'"),
    (["similar", "/no/such/track.flac"], "not in the catalog"),
    (["path", "1", "2", "-n", "1"], "at least 2"),
])
def test_usage_errors_are_exit_2_with_one_clear_line(tmp_path, styled_library, styled_data, capsys, argv, message):
    """Issue 12 item 13: usage errors are checked where the arguments are parsed."""
    config = _styled_config(tmp_path, styled_library, styled_data)
    with pytest.raises(SystemExit) as exit_:
        code = main(["--config", str(config), *argv])
        raise SystemExit(code)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "ValueError" not in err


def test_a_bug_is_exit_1_with_its_traceback_under_debug(tmp_path, styled_library, styled_data, capsys, caplog,
                                                         monkeypatch):
    """Issue 12 item 13: an internal error is never a usage error, and --debug shows where it came from."""
    from recengine.engine import Engine

    config = _styled_config(tmp_path, styled_library, styled_data)

    def broken(self, *args, **kwargs):
        return [][1]  # an IndexError (a LookupError) from deep inside

    monkeypatch.setattr(Engine, "path", broken)
    assert main(["--config", str(config), "path", "1", "2"]) == 1
    assert "IndexError" in capsys.readouterr().err
    assert main(["--config", str(config), "--debug", "path", "1", "2"]) == 1
    logged = caplog.text  # the log handler (stderr outside pytest) carries the traceback
    assert "Traceback" in logged and "in broken" in logged


def test_path_from_a_track_to_itself(tmp_path, styled_library, styled_data, capsys):
    config = _styled_config(tmp_path, styled_library, styled_data)
    assert main(["--config", str(config), "path", "1", "1", "--json"]) == 2
    err = capsys.readouterr().err
    assert "A and B are the same track" in err and "list index out of range" not in err
