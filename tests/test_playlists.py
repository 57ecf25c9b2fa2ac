"""Playlist recipes: validation, writing, no needless rewrites, ownership, refresh policy."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from recengine.config import ConfigError
from recengine.engine import Engine

from .conftest import make_engine


def engine_with(tmp_path, styled_library, playlists, outputs=None):
    raw = {"library": {"folders": [str(styled_library)]}, "data_dir": str(tmp_path / "data"), "plugin_dirs": [],
           "outputs": outputs or {"nav": {"dir": str(tmp_path / "out"), "paths": "relative"}},
           "playlists": playlists}
    return Engine.open(None, raw=raw, entrypoints=False)


@pytest.mark.parametrize(
    ("recipe", "key", "message"),
    [
        ({"name": "A", "kind": "radioo"}, "playlists[0].kind", "expected one of"),
        ({"name": "A", "sise": 3}, "playlists[0].sise", "did you mean 'size'"),
        ({"name": "A", "size": 0}, "playlists[0].size", "1 to 10000"),
        ({"name": "A", "kind": "similar"}, "playlists[0].seeds", "needs seed tracks"),
        ({"name": "A", "kind": "path", "from": "x"}, "playlists[0].from", "needs 'from' and 'to'"),
        ({"name": "A", "writers": ["m3u9"]}, "playlists[0].writers", "unknown writer 'm3u9'"),
        ({"name": "A", "strategies": {"tsate": 1}}, "playlists[0].strategies.tsate", "did you mean 'taste'"),
        ({"name": "A", "output": "plex"}, "playlists[0].output", "no output named 'plex'"),
        ({"name": "../etc/passwd"}, "playlists[0].name", "cannot be a file name"),
        ({"name": "A", "refresh": {"on": ["weather"]}}, "playlists[0].refresh.on", "library and/or history"),
        ({"name": "A", "filters": {"exclude_artist": ["x"]}}, "playlists[0].filters.exclude_artist", "did you mean"),
    ],
)
def test_recipe_mistakes_name_the_dotted_key(tmp_path, styled_library, recipe, key, message):
    with pytest.raises(ConfigError) as err:
        engine_with(tmp_path, styled_library, [recipe])
    assert err.value.key == key
    assert message in err.value.message


def test_playlists_are_written_once_and_not_rewritten_unchanged(tmp_path, styled, styled_library):
    import shutil

    shutil.copytree(styled.config.data_dir, tmp_path / "d2" / "data")
    seed = str(styled_library / "drums" / "drums0.flac")
    engine = engine_with(tmp_path / "d2", styled_library, [
        {"name": "Drums", "kind": "similar", "seeds": [seed], "size": 3, "writers": ["m3u8", "xspf"],
         "strategies": {"similar": 1.0},
         "output": "nav"}])
    with engine:
        done = engine.playlists.refresh().written
        m3u, xspf = sorted(done["Drums"])
        text = m3u.read_text()
        assert text.startswith("#EXTM3U\n#RECENGINE:")
        entries = [ln for ln in text.splitlines() if not ln.startswith("#")]
        assert len(entries) == 3 and all("drums/" in e for e in entries)
        assert all((m3u.parent / e).resolve().exists() for e in entries)
        ET.parse(xspf)
        stat = m3u.stat()
        assert engine.playlists.refresh().written == {"Drums": []}  # T41
        assert m3u.stat().st_ino == stat.st_ino and m3u.stat().st_mtime_ns == stat.st_mtime_ns


def test_a_users_own_playlist_is_never_overwritten(tmp_path, styled_library, styled_data, caplog):
    """T42: a user-written Mix.m3u8 stays byte-identical; ours goes next to it."""
    import shutil

    shutil.copytree(styled_data, tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "Mix.m3u8"
    mine.write_text("#EXTM3U\n/music/my favourite.flac\n")
    with engine_with(tmp_path, styled_library, [{"name": "Mix", "size": 4, "output": "nav"}]) as engine:
        engine.playlists.refresh()
    assert mine.read_text() == "#EXTM3U\n/music/my favourite.flac\n"
    assert (out / "Mix (recengine).m3u8").read_text().startswith("#EXTM3U\n#RECENGINE:")
    assert "not written by recengine" in caplog.text


def test_refresh_policy_and_seasonal_filter(tmp_path, styled_library, styled_data):
    import datetime as dt
    import shutil

    shutil.copytree(styled_data, tmp_path / "data")
    recipes = [
        {"name": "Lib", "size": 15, "output": "nav", "refresh": {"on": ["library"], "min_interval_s": 3600},
         "filters": {"only_in_months": {"christmas": [12]}}, "strategies": {"discovery": 1}},
        {"name": "Hist", "size": 2, "output": "nav", "refresh": {"on": ["history"]}},
    ]
    with engine_with(tmp_path, styled_library, recipes) as engine:
        july = dt.datetime(2026, 7, 1).timestamp()
        done = engine.playlists.refresh(reason="library", now=july).written
        assert set(done) == {"Lib"}
        text = (tmp_path / "out" / "Lib.m3u8").read_text()
        assert "tones4" not in text and text.count("#EXTINF") == 14  # the Christmas track waits for December
        assert engine.playlists.refresh(reason="library", force=False, now=july + 60).written == {}
        december = dt.datetime(2026, 12, 1).timestamp()
        engine.playlists.refresh(["Lib"], now=december)
        assert "tones4" in (tmp_path / "out" / "Lib.m3u8").read_text()
        assert set(engine.playlists.refresh(reason="history").written) == {"Hist"}


def test_playlist_written_hook_and_cli(tmp_path, styled_library, styled_data, capsys):
    import shutil

    from recengine.cli import main

    shutil.copytree(styled_data, tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"library: {{folders: ['{styled_library}']}}\ndata_dir: '{tmp_path / 'data'}'\nplugin_dirs: []\n"
        f"outputs: {{nav: {{dir: '{tmp_path / 'out'}', paths: absolute}}}}\n"
        "playlists:\n  - {name: Mine, size: 3, output: nav}\n")
    assert main(["--config", str(config), "playlists", "list"]) == 0
    assert "Mine  [user] size 3" in capsys.readouterr().out
    assert main(["--config", str(config), "playlists", "refresh"]) == 0
    assert "Mine.m3u8" in capsys.readouterr().out
    assert main(["--config", str(config), "playlists", "refresh", "Nope"]) == 2
    engine = make_engine(tmp_path, [styled_library])
    engine.close()


def test_relative_seeds_are_found_under_the_library_folders(tmp_path, styled_library, styled_data, monkeypatch):
    """Issue 12 item 9: README-style seeds (``drums/drums0.flac``) work from any working folder."""
    import shutil

    shutil.copytree(styled_data, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    recipes = [{"name": "Drums", "kind": "similar", "seeds": ["drums/drums0.flac"], "size": 3, "output": "nav",
                "strategies": {"similar": 1.0}},
               {"name": "Walk", "kind": "path", "from": "drums/drums0.flac", "to": "tones/tones1.ogg", "size": 4,
                "output": "nav"}]
    with engine_with(tmp_path, styled_library, recipes) as engine:
        assert engine.playlists.seed_problems() == []
        report = engine.playlists.refresh()
    assert report.failed == {} and set(report.written) == {"Drums", "Walk"}
    assert (tmp_path / "out" / "Drums.m3u8").read_text().count("#EXTINF") == 3


def test_a_recipe_naming_an_unknown_track_fails_the_refresh(tmp_path, styled_library, styled_data, capsys):
    """Issue 12 item 9: ``playlists refresh`` exits 1 and says which recipe and seed."""
    import shutil

    from recengine.cli import main

    shutil.copytree(styled_data, tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"library: {{folders: ['{styled_library}']}}\ndata_dir: '{tmp_path / 'data'}'\nplugin_dirs: []\n"
        "playlists:\n  - {name: Gone, kind: similar, seeds: ['OST/01 Night Drive.flac'], size: 3}\n"
        "  - {name: Fine, size: 2}\n")
    assert main(["--config", str(config), "playlists", "refresh"]) == 1
    captured = capsys.readouterr()
    assert "Fine" in captured.out
    assert "Gone: not written" in captured.err and "OST/01 Night Drive.flac" in captured.err
    with Engine.open(config) as engine:
        (problem,) = engine.playlists.seed_problems()
    assert "playlists[0].seeds[0]" in problem and "'Gone'" in problem and str(styled_library) in problem


def test_recipes_that_would_write_the_same_file_are_refused(tmp_path, styled_library):
    """Issue 12 item 9: ``Mix`` and ``Mix `` used to overwrite each other's file."""
    with pytest.raises(ConfigError) as err:
        engine_with(tmp_path, styled_library, [{"name": "Mix"}, {"name": "Mix "}])
    assert err.value.key == "playlists[1].name" and "same files" in err.value.message


def test_a_short_list_says_which_rule_cut_it(tmp_path, styled_library, styled_data, caplog, capsys):
    """Issue 12 item 9: three tagged artists (and albums), two tracks each at most, leave 9 of 10
    tracks (three WAV files carry no tags); the report, the log and the CLI say which rule cut it."""
    import shutil

    from recengine.cli import main

    shutil.copytree(styled_data, tmp_path / "data")
    with engine_with(tmp_path, styled_library, [{"name": "Mix", "size": 10, "output": "nav"},
                                                 {"name": "Few", "size": 10, "output": "nav",
                                                  "strategies": {"taste": 1.0}, "filters": {"exclude_artists": ["Drums", "Noise"]}}]) as engine:
        report = engine.playlists.refresh()
    short = report.short["Mix"]
    assert (short.wanted, short.got) == (10, 9)
    assert (tmp_path / "out" / "Mix.m3u8").read_text().count("#EXTINF") == 9
    assert "playlist Mix: 9 of 10 tracks: cut by the diversity rules max_per_artist and max_per_album" in caplog.text
    assert report.short["Few"].got == 7 and "only 7 tracks are left after the filters" in report.short["Few"].reason
    assert report.as_dict()["short"]["Mix"]["got"] == 9
    config = tmp_path / "config.yaml"
    config.write_text(
        f"library: {{folders: ['{styled_library}']}}\ndata_dir: '{tmp_path / 'data'}'\nplugin_dirs: []\n"
        "playlists:\n  - {name: Mix, size: 10}\n")
    assert main(["--config", str(config), "playlists", "refresh"]) == 0
    assert "(9 of 10 tracks: cut by the diversity rules max_per_artist and max_per_album)" in capsys.readouterr().out
