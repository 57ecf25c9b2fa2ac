"""Re-reading the config while running: a reload adopts recipes, outputs and weights; a file that
does not validate keeps the running config."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from recengine.engine import Engine
from recengine.service.reload import ConfigReloader, read_config

RECIPE_A = {"name": "First", "kind": "user", "size": 5, "output": "out", "writers": ["m3u8"]}
RECIPE_B = {"name": "Second", "kind": "radio", "size": 5, "output": "out", "writers": ["m3u8"]}


def write_config(path: Path, library: Path, recipes: list[dict], **extra) -> None:
    config = {"library": {"folders": [str(library)]}, "data_dir": str(path.parent / "data"),
              "plugin_dirs": [], "scan": {"workers": 2}, "http": {"enabled": False},
              "outputs": {"out": {"dir": str(path.parent / "out")}}, "playlists": recipes, **extra}
    path.write_text(yaml.safe_dump(config))


def test_a_reload_adopts_recipes_outputs_and_weights_and_keeps_the_catalog(tmp_path, styled_library):
    path = tmp_path / "config.yaml"
    write_config(path, styled_library, [RECIPE_A])
    with Engine.open(path) as engine:
        engine.scan()
        catalog, index = engine.catalog, engine.index
        assert index.store.generation is not None
        reloader = ConfigReloader()
        assert not reloader.poll(engine)  # nothing asked for
        write_config(path, styled_library, [RECIPE_A, RECIPE_B], index={"weights": {"timbre": 3.0}})
        reloader.request()
        assert reloader.poll(engine) and not reloader.pending
        assert [r.name for r in engine.recipes] == ["First", "Second"]
        assert engine.config["index.weights"] == {"timbre": 3.0}
        assert engine.catalog is catalog and engine.index is not index
        assert engine.index.weights["timbre"] == 3.0
        assert engine.index.store.generation is None  # made with other weights: rebuilt, not reused
        assert engine.index.build() is not None
        engine.playlists.refresh(["Second"], force=True)
        assert (tmp_path / "out" / "Second.m3u8").exists()


def test_a_config_that_fails_on_reload_is_logged_and_the_running_one_kept(tmp_path, styled_library, caplog):
    path = tmp_path / "config.yaml"
    write_config(path, styled_library, [RECIPE_A])
    with Engine.open(path) as engine:
        config = engine.config
        reloader = ConfigReloader()
        for broken in ("library: {folder: [/srv]}\n",                     # unknown key
                       "playlists: [{name: X, kind: radioo}]\n",          # a recipe mistake
                       "playlists: [\n"):                                 # not YAML
            path.write_text(broken)
            reloader.request()
            with caplog.at_level(logging.ERROR, logger="recengine.service.reload"):
                assert not reloader.poll(engine)
            assert engine.config is config and [r.name for r in engine.recipes] == ["First"]
            assert f"config reload failed, the running config is kept: {path}" in caplog.text
            caplog.clear()
        path.unlink()
        reloader.request()
        assert not reloader.poll(engine) and engine.config is config


def test_the_defaults_have_no_file_to_re_read(tmp_path):
    with Engine.open(None, raw={"data_dir": str(tmp_path / "d"), "plugin_dirs": []}) as engine:
        with pytest.raises(Exception, match="no file to re-read"):
            read_config(engine)
