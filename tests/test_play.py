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


def test_history_cli_records_and_imports(tmp_path, styled_library, styled_data, capsys):
    import json

    config = write_config(tmp_path, styled_library, styled_data)
    track = styled_library / "drums" / "drums0.flac"
    assert main(["--config", config, "history", "like", str(track), "--user", "ann"]) == 0
    assert main(["--config", config, "history", "skip", str(track), "--user", "ann", "--listened", "4"]) == 0
    assert main(["--config", config, "history", "like", str(tmp_path / "missing.mp3")]) == 2
    listens = [
        {"listened_at": 1_700_000_000 + i, "track_metadata": {"artist_name": "Drums", "track_name": f"drums {i}"}}
        for i in range(3)
    ] + [{"listened_at": 1_700_000_100, "track_metadata": {"artist_name": "Nobody", "track_name": "Unknown"}}]
    export = tmp_path / "listens.json"
    export.write_text(json.dumps(listens))
    log = tmp_path / ".scrobbler.log"
    log.write_text("#AUDIOSCROBBLER/1.1\n#TZ/UTC\n#CLIENT/Rockbox\n"
                   "Noise\tnoise album\tnoise 1\t2\t3\tS\t1700000200\t\n")
    capsys.readouterr()
    assert main(["--config", config, "history", "import", str(export), str(log), "--user", "ann"]) == 0
    out = capsys.readouterr().out
    assert "listenbrainz: 4 listens, 3 matched (75%), 1 not in the library" in out
    assert "scrobbler: 1 listens, 1 matched (100%)" in out
    from recengine.catalog import Catalog

    with Catalog(tmp_path / "data" / "catalog.db") as cat:
        kinds = [e.kind for e in cat.events("ann")]
    assert kinds.count("play") == 3 and kinds.count("skip") == 2 and kinds.count("like") == 1
