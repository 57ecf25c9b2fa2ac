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
