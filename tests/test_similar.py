"""Similarity through the engine and the CLI: index + fresh delta, duplicates, filters, paths."""

from __future__ import annotations

import json
import shutil

import pytest

from recengine.cli import main
from recengine.recommend.filters import Filters
from recengine.testing import encode, pulses

from .conftest import make_engine


def style_of(track) -> str:
    return track.relpath.split("/")[0]


def test_neighbours_come_from_the_same_style(styled):
    hits = total = 0
    for track in styled.catalog.tracks():
        recs = styled.similar([track.track_id], 4)
        assert track.track_id not in {r.track.track_id for r in recs}
        assert [r.distance for r in recs] == sorted(r.distance for r in recs)
        hits += sum(style_of(r.track) == style_of(track) for r in recs)
        total += len(recs)
    assert hits / total >= 0.8


def test_exact_duplicates_are_excluded(tmp_path, styled_library):
    lib = tmp_path / "lib"
    shutil.copytree(styled_library / "drums", lib / "drums")
    shutil.copy(lib / "drums" / "drums0.flac", lib / "drums" / "copy of drums0.flac")
    engine = make_engine(tmp_path, [lib])
    with engine:
        engine.scan()
        seed = engine.resolve(lib / "drums" / "drums0.flac")
        recs = engine.similar([seed.track_id], 10)
        paths = {r.track.relpath for r in recs}
        assert "drums/copy of drums0.flac" not in paths
        assert len(recs) == 4


def test_fresh_tracks_are_searchable_before_a_rebuild_and_removed_ones_vanish(tmp_path, styled_library):
    """T38 through the engine: the index is not rebuilt, the new track is found through the delta."""
    lib = tmp_path / "lib"
    shutil.copytree(styled_library, lib)
    engine = make_engine(tmp_path, [lib], index={"rebuild_after_changes": 1000})
    with engine:
        engine.scan()
        generation = engine.index.store.generation
        new = encode(pulses(115, 3.0, seed=99), lib / "drums" / "fresh.ogg")
        report = engine.scan()
        assert report.added == 1
        assert engine.index.store.generation == generation  # no rebuild
        seed = engine.resolve(lib / "drums" / "drums1.ogg")
        assert "drums/fresh.ogg" in {r.track.relpath for r in engine.similar([seed.track_id], 4)}
        new.unlink()
        (lib / "drums" / "drums2.mp3").unlink()
        engine.scan()
        found = {r.track.relpath for r in engine.similar([seed.track_id], 14)}
        assert "drums/fresh.ogg" not in found and "drums/drums2.mp3" not in found
        assert engine.index.store.generation == generation


def test_index_survives_reopening_and_a_corrupt_generation(tmp_path, styled_library):
    engine = make_engine(tmp_path, [styled_library])
    with engine:
        engine.scan()
        gen = engine.index.store.generation
        expected = [r.track.track_id for r in engine.similar([1], 5)]
    ann = next((tmp_path / "data" / "index").glob("gen-*.ann"))
    data = bytearray(ann.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ann.write_bytes(bytes(data))
    with make_engine(tmp_path, [styled_library]) as engine:
        engine.scan()  # the damaged generation is refused: the scan builds a new one (queries never build)
        assert [r.track.track_id for r in engine.similar([1], 5)] == expected  # rebuilt, same answer
        assert engine.index.store.generation != gen


def test_several_seeds_and_filters(styled):
    tones = [t.track_id for t in styled.catalog.tracks() if style_of(t) == "tones"][:2]
    recs = styled.similar(tones, 3)
    assert all(style_of(r.track) == "tones" for r in recs)
    assert all(r.why.startswith("close to") for r in recs)
    recs = styled.similar(tones, 10, Filters(exclude_artists={"Tones"}))
    assert recs and all(r.track.artist != "Tones" for r in recs)
    recs = styled.similar(tones, 10, Filters(exclude_genres={"christmas"}))
    assert all(r.track.genre != "Christmas" for r in recs)
    recs = styled.similar(tones, 10, Filters(tags={"album": "noise"}))
    assert recs and all(r.track.album == "noise album" for r in recs)
    assert styled.similar(tones, 10, Filters(min_duration=60)) == []


def test_path_walks_between_styles_without_repeats(styled):
    tracks = styled.catalog.tracks()
    a = next(t for t in tracks if style_of(t) == "tones")
    b = next(t for t in tracks if style_of(t) == "drums")
    recs = styled.path(a.track_id, b.track_id, 6)
    ids = [r.track.track_id for r in recs]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert ids[0] == a.track_id and ids[-1] == b.track_id


def test_cli_similar_and_path_json(tmp_path, styled_library, styled_data, capsys):
    shutil.copytree(styled_data, tmp_path / "data")
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: ['{styled_library}']}}\ndata_dir: '{tmp_path / 'data'}'\nplugin_dirs: []\n")
    seed = styled_library / "noise" / "noise0.flac"
    assert main(["--config", str(config), "similar", str(seed), "-n", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 3 and {"path", "artist", "title", "distance", "score"} <= set(out[0])
    assert all("/noise/" in o["path"] for o in out)
    end = styled_library / "drums" / "drums0.flac"
    assert main(["--config", str(config), "path", str(seed), str(end), "-n", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["path"] == str(seed) and out[-1]["path"] == str(end)
    assert main(["--config", str(config), "similar", str(tmp_path / "nope.mp3")]) == 2
    assert "not in the catalog" in capsys.readouterr().err


@pytest.mark.parametrize("n", [1, 3])
def test_python_api_matches_cli(styled, n):
    t = styled.catalog.tracks()[0]
    by_id = [r.track.track_id for r in styled.similar([t.track_id], n)]
    by_path = [r.track.track_id for r in styled.similar([t.path], n)]
    assert by_id == by_path and len(by_id) == n
