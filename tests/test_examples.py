"""The example plugins in plugins/examples/ work, and the README shows them as they are."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np

from recengine.engine import Engine
from recengine.testing import encode, tone

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "plugins" / "examples"


def engine_with_examples(tmp_path, folders, **extra):
    raw = {"library": {"folders": [str(f) for f in folders]}, "data_dir": str(tmp_path / "data"),
           "plugin_dirs": [str(EXAMPLES)], "scan": {"workers": 1}, **extra}
    return Engine.open(None, raw=raw, entrypoints=False)


def test_readme_code_blocks_are_the_example_files():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n# (plugins/examples/[\w.]+)\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 6
    for name, body in blocks:
        assert (ROOT / name).read_text() == body, f"README block for {name} differs from the file"


def test_examples_load_and_work_together(tmp_path, caplog):
    lib = tmp_path / "lib"
    encode(tone(440, 2.0), lib / "a.wav")
    encode(tone(660, 2.0), lib / "b.flac")
    encode(tone(880, 2.0), lib / "c.ogg")
    caplog.set_level(logging.INFO)
    with engine_with_examples(tmp_path, [lib], plugins={"example_log_backend": {"file": str(tmp_path / "log.txt")}},
                              playlists=[{"name": "Plain", "size": 2, "writers": ["plain_m3u"],
                                          "strategies": {"recency": 1.0}}]) as engine:
        infos = {i.name: i for i in engine.plugins.infos}
        for name in ("example_crest", "example_recency", "example_notify", "example_plain_m3u",
                     "example_log_backend", "example_wav_decoder"):
            assert infos[name].error is None, infos[name].error
        report = engine.scan()
        assert report.featurised == 3
        ids, blocks = engine.catalog.feature_matrix(engine.extractor_versions())
        assert blocks["crest"].shape == (3, 1) and np.all(blocks["crest"] > 0)
        # a pure tone has crest sqrt(2): log1p(1.414) ~ 0.88
        assert np.allclose(blocks["crest"][:, 0], np.log1p(np.sqrt(2)), atol=0.08)  # lossy Vorbis overshoots a little
        assert "new track analysed" in caplog.text
        # the scorer, the writer and the events
        engine.record("default", ids[0], "play")
        assert "default play track" in caplog.text
        engine.playlists.refresh()
        plain = engine.config.data_dir / "playlists" / "Plain.m3u"
        lines = plain.read_text().splitlines()
        assert lines[0].startswith("# recengine ") and len(lines) == 3
        assert ids[0] not in [engine.resolve(p).track_id for p in lines[1:]]  # played just now: least recent-worthy
        assert "playlist Plain written" in caplog.text
        # the backend
        backend = engine.backends["log"]
        events = []
        assert backend.play(engine.catalog.tracks()[:2], "replace", events.append) == 2
        assert len((tmp_path / "log.txt").read_text().splitlines()) == 2 and len(events) == 2


def test_wav_decoder_example_decodes_wav_and_passes_on_the_rest(tmp_path):
    lib = tmp_path / "lib"
    encode(tone(440, 2.0), lib / "a.wav")
    encode(tone(440, 2.0), lib / "b.flac")
    with engine_with_examples(tmp_path, [lib]) as engine:
        from pathlib import Path as P

        wav = engine.pm.hook.load_audio(path=P(lib / "a.wav"), config=engine.config)
        flac = engine.pm.hook.load_audio(path=P(lib / "b.flac"), config=engine.config)
    assert wav.decoder == "wave" and flac.decoder == "ffmpeg"
    assert abs(wav.samples.size - flac.samples.size) <= 2


def test_examples_folder_is_not_loaded_by_default(tmp_path):
    plugins = tmp_path / "plugins"
    shutil.copytree(EXAMPLES, plugins / "examples")
    raw = {"plugin_dirs": [str(plugins)], "data_dir": str(tmp_path / "d")}
    engine = Engine.open(None, raw=raw, entrypoints=False)
    assert not any(i.name.startswith("example_") for i in engine.plugins.infos)
