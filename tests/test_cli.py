"""The command line: exit codes, one-line errors, plugins listing, config check and show."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recengine.cli import main
from recengine.testing import encode, tone

from .bad_inputs import non_utf8_name
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


def _library_config(tmp_path, lib, **extra) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"library": {"folders": [str(lib)]}, "data_dir": str(tmp_path / "data"),
                                      "plugin_dirs": [], "scan": {"workers": 1}, **extra}))
    return config


def strict_run(*args):
    """The command on the strictest terminal: stdout refuses what is not UTF-8 (en_US.UTF-8 does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECENGINE_")}
    return subprocess.run([sys.executable, "-m", "recengine", *args], capture_output=True, timeout=120,
                          env={**env, "PYTHONIOENCODING": "utf-8:strict"})


def test_names_that_are_not_utf8_print_as_their_bytes_and_skipped_entries_are_listed(tmp_path):
    """Issue 12 item 1 (CLI) and item 17: `failures` lists the ledger and the skipped entries with
    their reason; a name that is not UTF-8 is printed as its bytes, in JSON as \\udcXX escapes."""
    lib = tmp_path / "lib"
    good = [encode(tone(300.0 + 200 * i, 1.5), lib / f"t{i}.wav") for i in range(2)]
    odd = non_utf8_name(lib, b"\xff odd.wav")
    open(os.fsencode(lib) + b"/\xfe empty.mp3", "wb").close()
    os.mkfifo(lib / "pipe.wav")
    config = _library_config(tmp_path, lib)
    assert strict_run("--config", str(config), "scan").returncode == 0
    text = strict_run("--config", str(config), "failures")
    assert text.returncode == 0, text.stderr
    assert os.fsencode(lib) + b"/\xfe empty.mp3: the file is empty" in text.stdout
    assert b"fifo" in text.stdout and b"pipe.wav: skipped: a named pipe, not a file" in text.stdout
    assert b"1 files failed, 1 skipped" in text.stderr
    rows = json.loads(strict_run("--config", str(config), "failures", "--json").stdout)
    assert [(r["kind"], r["reason"], os.fsencode(r["path"])) for r in rows] == [
        ("failed", "empty", os.fsencode(lib) + b"/\xfe empty.mp3"), ("skipped", "fifo", os.fsencode(lib / "pipe.wav"))]
    similar = strict_run("--config", str(config), "similar", str(good[0]), "--json")
    assert similar.returncode == 0, similar.stderr
    paths = [os.fsencode(r["path"]) for r in json.loads(similar.stdout.decode("utf-8"))]  # valid UTF-8
    assert os.fsencode(odd) in paths
    plain = strict_run("--config", str(config), "similar", str(good[0]))
    assert plain.returncode == 0 and os.fsencode(odd) in plain.stdout
    status = strict_run("--config", str(config), "status")
    assert b"1 failed, 0 missing, 1 skipped (`recengine failures` lists them)" in status.stdout


def test_no_index_yet_is_one_clear_line(tmp_path, styled_library, styled_data, capsys):
    """IndexNotReady (the catalog is analysed, but no index was built for these weights yet) ends
    the command with its own line: what to run, no exception name, nothing about --debug."""
    config = _styled_config(tmp_path, styled_library, styled_data)
    config.write_text(config.read_text() + "index:\n  weights: {timbre: 3.0}\n")
    for argv in (["recommend", "--seed", str(styled_library / "tones" / "tones0.flac")], ["path", "1", "2"]):
        assert main(["--config", str(config), *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith("recengine: error: no index for the current extractors and weights yet: run "
                              "`recengine scan`"), err
        assert err.count("\n") == 1 and "IndexNotReady" not in err and "--debug" not in err


def test_an_index_folder_that_cannot_be_made_is_one_clear_line(tmp_path, styled_library, styled_data, capsys,
                                                               monkeypatch):
    """IndexDirectoryError: a file where data/index belongs that cannot be moved aside."""
    import types

    from recengine.index import generations

    config = _styled_config(tmp_path, styled_library, styled_data)
    index = tmp_path / "data" / "index"
    shutil.rmtree(index)
    index.write_text("not a folder")

    def refuse(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(generations, "os", types.SimpleNamespace(**{**vars(os), "rename": refuse}))
    assert main(["--config", str(config), "similar", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (f"recengine: error: {index} is not a folder and cannot be moved aside (Operation not "
                   "permitted): move or remove it (the index is rebuilt from the catalog)\n")


def test_a_public_address_without_a_token_is_a_config_error_exit_2(tmp_path):
    """TokenRefused, from `serve` and from `daemon` alike: exit 2, one line naming the setting."""
    lib = tmp_path / "lib"
    lib.mkdir()
    config = _library_config(tmp_path, lib, http={"host": "0.0.0.0"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECENGINE_")}
    for command in ("serve", "daemon"):
        proc = run("--config", str(config), command, env=env)
        assert proc.returncode == 2, (command, proc.stderr)
        line = (f"recengine: error: {config}: http.token: refusing to listen on 0.0.0.0: a non-loopback address "
                "needs a token (set RECENGINE_API_TOKEN or http.token)")
        assert line in proc.stderr.splitlines() and "Traceback" not in proc.stderr, proc.stderr


GONE = "  - {name: Gone, kind: similar, seeds: ['OST/01 Night Drive.flac'], size: 3}\n"


def test_config_check_reports_recipe_seeds_that_are_not_in_the_catalog(tmp_path, styled_library, styled_data,
                                                                       capsys):
    """Issue 12 item 9: `config check` said ok while `playlists refresh` failed on the seed."""
    config = _styled_config(tmp_path, styled_library, styled_data)
    base = config.read_text() + "playlists:\n  - {name: Near, kind: similar, seeds: ['tones/tones0.flac'], size: 3}\n"
    config.write_text(base + GONE)
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: playlists[1].seeds[0]: 'OST/01 Night Drive.flac' of playlist 'Gone' is not in the catalog" in err
    assert "playlists[0]" not in err
    config.write_text(base)
    assert main(["--config", str(config), "config", "check"]) == 0
    assert f"{config}: ok" in capsys.readouterr().out
    config.write_text(base.replace(str(tmp_path / "data"), str(tmp_path / "fresh")))  # before the first scan
    assert main(["--config", str(config), "config", "check"]) == 0
    assert "playlist seeds are not checked: no catalog yet" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()


def test_playlists_list_says_when_a_list_comes_out_short_and_why(tmp_path, styled_library, styled_data, capsys):
    """Issue 12 item 9: three tagged artists, two tracks each at most, leave 9 of 10 tracks."""
    config = _styled_config(tmp_path, styled_library, styled_data)
    config.write_text(config.read_text() + "playlists:\n  - {name: Mix, size: 10}\n  - {name: Two, size: 2}\n" + GONE)
    assert main(["--config", str(config), "playlists", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    mix, two, gone = (out.index(line) for line in out if not line.startswith(" "))
    assert out[mix + 1] == "    short: 9 of 10 tracks: cut by the diversity rules max_per_artist and max_per_album"
    assert out[two + 1:gone] == []
    assert out[gone + 1].startswith("    cannot be made now: OST/01 Night Drive.flac: not in the catalog")
