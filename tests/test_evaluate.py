"""`recengine evaluate` on a generated library with known albums and a generated history.

Six albums of five tracks, one artist each; every extractor's feature rows sit tightly around an
album centre, so every track's nearest neighbours are its own album. Alice played three tracks of
album A before the cut-off and went on to play the other two (discoveries) and one she knew (a
repeat); Bob's plays make album B the popular one. Values are worked out by hand in each test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recengine.cli import main
from recengine.cli.evaluate import sources_of
from recengine.evaluate import Evaluation, TooLittleHistory, split_history
from recengine.evaluate.hearing import exact_neighbours
from recengine.models import HistoryEvent, Tags
from tests.conftest import make_engine

DAY = 86400.0
CUTOFF = 1_750_000_000.0
ALBUMS = "ABCDEF"
PER_ALBUM = 5
RECIPES = [
    {"name": "For You", "kind": "user", "user": "alice", "size": 8},
    {"name": "Taste", "kind": "user", "user": "alice", "size": 10, "strategies": {"taste": 1.0}},
    {"name": "One per artist", "kind": "user", "user": "alice", "size": 10,
     "strategies": {"taste": 1.0, "diversity": 0.5}, "diversity": {"max_per_artist": 1}},
]


def build(tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    engine = make_engine(tmp_path, [folder], playlists=RECIPES, disabled_plugins=["musicnn_extractor"])
    rng = np.random.default_rng(7)
    catalog = engine.catalog
    root = catalog.root_id(str(folder))
    centres = {e.name: rng.normal(size=(len(ALBUMS), e.dim)) for e in engine.extractors}
    ids: dict[str, list[int]] = {}
    for a, album in enumerate(ALBUMS):
        for i in range(PER_ALBUM):
            sig = f"sig-{album}{i}"
            tid = catalog.add_track(root, f"{album}/{i}.flac", 1000, 1, None, sig)
            blocks = {e.name: (e.version, centres[e.name][a] + 0.01 * rng.normal(size=e.dim)) for e in engine.extractors}
            catalog.save_features(tid, sig, blocks, Tags(artist=f"Artist {album}", album=f"Album {album}",
                                                         title=f"{album}{i}"), duration=200.0)
            ids.setdefault(album, []).append(tid)
    engine.index.build()
    a = ids["A"]
    events = [HistoryEvent("alice", t, "play", at=CUTOFF - (3 - i) * DAY, listened_s=200) for i, t in enumerate(a[:3])]
    events += [HistoryEvent("alice", a[0], "like", at=CUTOFF - DAY),
               HistoryEvent("alice", a[2], "play", at=CUTOFF - DAY / 2, listened_s=200)]
    events += [HistoryEvent("alice", ids["C"][0], "skip", at=CUTOFF - DAY, listened_s=5)]
    events += [HistoryEvent("alice", a[3], "play", at=CUTOFF + DAY, listened_s=200),
               HistoryEvent("alice", a[4], "like", at=CUTOFF + 2 * DAY),
               HistoryEvent("alice", a[1], "play", at=CUTOFF + 2 * DAY, listened_s=200),
               HistoryEvent("alice", ids["D"][0], "skip", at=CUTOFF + 2 * DAY, listened_s=3)]
    events += [HistoryEvent("bob", ids["B"][0], "play", at=CUTOFF - DAY)] * 3
    events += [HistoryEvent("bob", ids["B"][1], "play", at=CUTOFF - DAY)] * 2
    engine.record_events(events)
    return engine, ids


@pytest.fixture
def library(tmp_path):
    engine, ids = build(tmp_path)
    yield engine, ids
    engine.close()


def test_the_generated_albums_are_what_the_neighbours_see(library):
    engine, ids = library
    vectors = engine.index.vectors([t for album in ALBUMS for t in ids[album]])
    nn = exact_neighbours(np.stack(list(vectors.values())), engine.index.metric, PER_ALBUM - 1)
    assert all(set(row) == set(range(i - i % PER_ALBUM, i - i % PER_ALBUM + PER_ALBUM)) - {i}
               for i, row in enumerate(nn.tolist()))


def test_report_numbers_by_hand(library):
    engine, ids = library
    report = Evaluation(sources_of(engine)).run("alice", cutoff=CUTOFF, now=CUTOFF + 3 * DAY)
    n = len(ALBUMS) * PER_ALBUM
    assert (report.tracks, report.albums, report.artists) == (30, 6, 6)
    rows = {r.variant: r for r in report.hearing}
    assert set(rows) == {e.name for e in engine.extractors} | {"fused", "similar"}
    for row in rows.values():
        # 10 neighbours, of which the 4 other tracks of the album come first: P@10 = 4/10, 1-NN = 1
        assert row.album.p_at_k == pytest.approx(4 / 10) and row.album.one_nn == 1.0
        assert row.album.chance == pytest.approx((PER_ALBUM - 1) / (n - 1))
        assert row.artist.p_at_k == pytest.approx(4 / 10)
        assert row.duplicates == 0.0
    # 30 lists of 10: N_10 sums to 300, so the mean is 10 and no track is in more than 29 lists
    assert 0.0 <= rows["fused"].hubness.orphans < 1.0 and rows["fused"].hubness.top[0][1] <= 29

    replay = {m.name: m for m in report.replay}
    assert set(replay) == {"taste=1+diversity=0.5+discovery=0.1", "taste=1", "taste=1+diversity=0.5",
                           "popularity", "random"}
    taste = replay["taste=1"]
    assert taste.recipes == ("Taste",)
    # discoveries: A3 and A4 among the 26 tracks alice never heard (30 - A0 A1 A2 - C0), both ranked first
    assert (taste.discoveries.truth, taste.discoveries.candidates) == (2, 26)
    assert taste.discoveries.hit_rate == 1.0 and taste.discoveries.ndcg == pytest.approx(1.0)
    # repeats: A1 among the 4 heard tracks (A0 A1 A2 C0); the list holds all 4, so the hit rate is 1
    assert (taste.repeats.truth, taste.repeats.candidates, taste.repeats.hit_rate) == (1, 4, 1.0)
    # D0, skipped after the cut-off, is not among the 4 heard tracks: no negative in the repeats
    assert taste.repeats.negatives == 0.0
    # one track per artist: only one of A3 and A4 (both Artist A) makes the list
    one_each = replay["taste=1+diversity=0.5"]
    assert one_each.recipes == ("One per artist",) and one_each.discoveries.hit_rate == pytest.approx(1 / 2)
    # popularity: B0 (3 plays) and B1 (2) first, then the rest by track id; A3 and A4 are ranks 14, 15
    popular = replay["popularity"].discoveries
    unheard = [t for t in range(1, n + 1) if t not in {*ids["A"][:3], ids["C"][0]}]
    order = [ids["B"][0], ids["B"][1]] + [t for t in unheard if t not in ids["B"][:2]]
    ranks = [order.index(t) + 1 for t in ids["A"][3:]]
    assert popular.hit_rate == pytest.approx(sum(r <= 10 for r in ranks) / 2)
    ideal = 1 + 1 / math.log2(3)
    assert popular.ndcg == pytest.approx(sum(1 / math.log2(r + 1) for r in ranks if r <= 10) / ideal)
    assert replay["random"].discoveries.hit_rate == pytest.approx(10 * (2 / 26) / 2)

    health = {p.name: p for p in report.playlists}
    capped = health["One per artist"]
    # alice now knows all of album A; five other artists, one track each allowed: 5 of 10, and the
    # cap is named as the rule that cut it
    assert (capped.asked, capped.reached) == (10, 5)
    assert "max_per_artist" in capped.cut_by
    assert capped.artists_per_10 == 5.0 and capped.albums_per_10 == 5.0
    assert health["For You"].reached == 8 and health["For You"].cut_by is None
    # For You: at most 2 per album (the default cap) among its 8 tracks, so at least 4 albums
    assert health["For You"].albums_per_10 >= 4.0
    assert 0 < health["For You"].coverage <= 1.0


def test_split_history_and_too_little(library):
    engine, ids = library
    split = split_history(engine.catalog, "alice", cutoff=CUTOFF)
    assert split.known == {*ids["A"][:3], ids["C"][0]}
    assert split.truth == {ids["A"][1], ids["A"][3], ids["A"][4]}
    assert split.negatives == {ids["D"][0]}
    with pytest.raises(TooLittleHistory, match="at least 5 plays or likes before the cut-off"):
        split_history(engine.catalog, "bob")
    with pytest.raises(TooLittleHistory, match="no listening history"):
        split_history(engine.catalog, "nobody")


def test_cli_too_little_history_exits_0_and_says_how_much(tmp_path, capsys):
    engine, _ = build(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"library": {"folders": [str(tmp_path / "lib")]}, "data_dir": str(tmp_path / "data"),
                                  "plugin_dirs": [], "disabled_plugins": ["musicnn_extractor"]}))
    engine.close()
    assert main(["--config", str(config), "evaluate", "--user", "bob", "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "too little history for 'bob'" in out and "at least 5 plays or likes" in out
    assert "Hearing: 30 tracks" in out
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") >= 3 and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert main(["--config", str(config), "evaluate", "--user", "alice", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["too_little_history"] is None
    # a config without recipes: the mix `recengine recommend` uses, and the baselines
    assert [(m["name"], m["recipes"]) for m in data["replay"]] == [
        ("taste=1+diversity=0.5+discovery=0.1", ["recengine recommend"]), ("popularity", []), ("random", [])]
