"""`recengine play`: a recipe through a backend, plays flowing back into history."""

from __future__ import annotations

import shutil

from recengine.cli import main


def write_config(tmp_path, styled_library, styled_data, extra: str = "") -> str:
    shutil.copytree(styled_data, tmp_path / "data")
    player = tmp_path / "player.sh"
    player.write_text(f"#!/bin/sh\necho \"$1\" >> {tmp_path / 'played.txt'}\n")
    player.chmod(0o755)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"library: {{folders: ['{styled_library}']}}\ndata_dir: '{tmp_path / 'data'}'\nplugin_dirs: []\n"
        "playlists:\n  - {name: Mix, size: 4, strategies: {discovery: 1}}\n"
        f"plugins:\n  command: {{argv: ['{player}', '{{path}}'], user: zoe}}\n" + extra)
    return str(config)


def test_play_through_the_command_backend_records_plays(tmp_path, styled_library, styled_data, capsys):
    config = write_config(tmp_path, styled_library, styled_data)
    assert main(["--config", config, "play", "Mix", "--backend", "command"]) == 0
    played = (tmp_path / "played.txt").read_text().splitlines()
    assert len(played) == 4 and all(p.startswith(str(styled_library)) for p in played)
    assert "playing 4 tracks of Mix through command" in capsys.readouterr().err
    from recengine.catalog import Catalog

    with Catalog(tmp_path / "data" / "catalog.db") as cat:
        events = cat.events("zoe")
    assert [e.kind for e in events] == ["play"] * 4 and {e.source for e in events} == {"command"}


def test_play_errors_are_one_clear_line(tmp_path, styled_library, styled_data, capsys, monkeypatch):
    config = write_config(tmp_path, styled_library, styled_data)
    assert main(["--config", config, "play", "Mix", "--backend", "nope"]) == 2
    assert "no playback backend named 'nope'" in capsys.readouterr().err
    assert main(["--config", config, "play", "Nope"]) == 2
    assert "no playlist named 'Nope'" in capsys.readouterr().err
    monkeypatch.delenv("SDL_AUDIODRIVER", raising=False)
    monkeypatch.setenv("PULSE_SERVER", "")
    code = main(["--config", config, "play", "Mix", "--backend", "mpd"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach MPD" in err and "Traceback" not in err
