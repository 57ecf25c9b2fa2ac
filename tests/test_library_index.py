"""recengine.index.library: explicit opening, the one rebuild rule, the delta kept in step with the
catalog, and the settings read from the config (a small in-memory catalog stands in for SQLite)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from recengine.config import build_config, core_options
from recengine.index import (
    ExtractorInfo,
    IndexBackend,
    IndexNotReady,
    IndexSettings,
    LibraryIndex,
    extractor_infos,
)
from recengine.index.vectors import METRIC
from recengine.models import NotInIndex

EXTRACTORS = {"a": ExtractorInfo(version=1, weight=1.0), "b": ExtractorInfo(version=2, weight=0.5)}


class MemoryCatalog:
    """The three catalog reads the index makes, over {track_id: (committed_at, blocks)}."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[float, dict[str, np.ndarray]]] = {}
        self._rng = np.random.default_rng(0)

    def add(self, track_ids) -> None:
        for tid in track_ids:
            self.rows[tid] = (time.time(), {"a": self._rng.normal(size=6).astype(np.float32),
                                            "b": self._rng.normal(size=3).astype(np.float32)})
        time.sleep(0.01)  # committed_at strictly after any build that read the rows before

    def feature_blocks(self, versions, optional=None):
        ids = sorted(t for t, (_, blocks) in self.rows.items() if all(n in blocks for n in versions))
        return ids, [dict(self.rows[t][1]) for t in ids]

    def featurised_since(self, since, versions, optional=None):
        return {t: dict(blocks) for t, (at, blocks) in self.rows.items()
                if at > since and all(n in blocks for n in versions)}

    def present_ids(self):
        return set(self.rows)


def settings(**changes) -> IndexSettings:
    return dataclasses.replace(IndexSettings.from_config(build_config(None, core_options())), **changes)


def library_index(tmp_path: Path, catalog: MemoryCatalog, events: list | None = None, **changes) -> LibraryIndex:
    emit = (lambda hook, **kw: events.append((hook, kw))) if events is not None else (lambda hook, **kw: None)
    return LibraryIndex(catalog, settings(**changes), EXTRACTORS, data_dir=tmp_path, emit=emit)


def test_settings_come_from_the_config_only():
    config = build_config(None, core_options(), {"index": {"trees": 30, "weights": {"a": 2}, "metric": "euclidean"}})
    s = IndexSettings.from_config(config)
    assert (s.metric, s.trees, s.search_k, s.shards, s.weights) == ("euclidean", 30, None, None, {"a": 2.0})
    defaults = IndexSettings.from_config(build_config(None, core_options()))
    spec = core_options().options
    assert defaults.metric == METRIC and defaults.dimensions == spec["index.dimensions"].default
    assert defaults.rebuild_after_changes == spec["index.rebuild_after_changes"].default
    assert defaults.rebuild_quiet_s == spec["index.rebuild_quiet_s"].default
    with pytest.raises(TypeError):
        defaults.weights["a"] = 3.0  # frozen, weights included

    class Plain:
        name, version = "plain", 3

    class Weighted:
        name, version, weight = "weighted", 1, 0.25

    assert extractor_infos([Plain(), Weighted()]) == {"plain": ExtractorInfo(3, 1.0), "weighted": ExtractorInfo(1, 0.25)}


def test_opening_never_builds_and_a_query_says_what_to_do(tmp_path):
    empty = library_index(tmp_path / "empty", MemoryCatalog())
    assert empty.open() is False
    assert empty.query(np.ones(4), 3) == [] and empty.vectors([1]) == {}  # nothing to index: no error
    catalog = MemoryCatalog()
    catalog.add(range(1, 41))
    events: list = []
    index = library_index(tmp_path, catalog, events)
    assert isinstance(index, IndexBackend)
    assert index.open() is False and index.store.generation is None and index.dim is None
    for call in (lambda: index.vectors([1]), lambda: index.vector(1), lambda: index.query(np.ones(4), 3)):
        with pytest.raises(IndexNotReady, match="run `recengine scan`") as err:
            call()
        assert isinstance(err.value, NotInIndex)
    assert events == [] and not list((tmp_path / "index").iterdir())


def test_catch_up_builds_the_first_generation_then_follows_the_rule(tmp_path):
    catalog = MemoryCatalog()
    catalog.add(range(1, 41))
    events: list = []
    index = library_index(tmp_path, catalog, events, rebuild_after_changes=10, rebuild_quiet_s=3600.0)
    index.open()
    assert index.needs_rebuild()  # no generation
    assert index.catch_up(40) == 1 and events == [("index_rebuilt", {"generation": 1, "size": 40})]
    assert index.changes_since_build == 0 and not index.needs_rebuild()
    catalog.add(range(41, 46))
    assert index.catch_up(5) is None  # under the count, not quiet yet: the delta serves
    assert index.store.generation == 1 and set(index.vectors(range(41, 46))) == set(range(41, 46))
    vec = index.vector(43)
    assert index.query(vec, 1)[0][0] == 43
    catalog.add(range(46, 52))
    assert index.catch_up(6) == 2 and index.store.size == 51  # 11 >= 10 changes
    index.note_change(0)
    assert not index.needs_rebuild()  # no change is no change


def test_quiet_time_after_a_change_asks_for_a_rebuild(tmp_path):
    catalog = MemoryCatalog()
    catalog.add(range(1, 21))
    index = library_index(tmp_path, catalog, rebuild_quiet_s=0.3)
    index.catch_up()
    catalog.add([21])
    index.note_change(1)
    assert not index.needs_rebuild()
    time.sleep(0.35)
    assert index.needs_rebuild()
    assert index.catch_up() == 2 and not index.needs_rebuild()


def test_an_empty_library_is_not_rebuilt_until_something_changes(tmp_path):
    catalog = MemoryCatalog()
    index = library_index(tmp_path, catalog)
    assert index.catch_up() is None and not index.needs_rebuild()
    catalog.add([1, 2, 3])
    index.note_change(3)
    assert index.needs_rebuild() and index.catch_up() == 1


def test_refresh_loads_or_builds_when_nothing_is_loaded_and_reopening_loads(tmp_path):
    catalog = MemoryCatalog()
    catalog.add(range(1, 31))
    events: list = []
    daemon_side = library_index(tmp_path, catalog, events)
    daemon_side.open()
    assert daemon_side.refresh() == 0 and daemon_side.store.generation == 1 and len(events) == 1
    reader = library_index(tmp_path, catalog, events)
    assert reader.open() is True and reader.store.generation == 1 and len(events) == 1
    np.testing.assert_array_equal(reader.vector(7), daemon_side.vector(7))
    catalog.add([31])
    catalog.rows.pop(2)
    assert reader.refresh() == 1
    assert 31 in reader.vectors([31]) and reader.vector(2) is None
    other_weights = library_index(tmp_path, catalog, weights={"a": 3.0})
    assert other_weights.open() is False  # made with other weights: not loaded, not rebuilt
    assert other_weights.store.generation is None


def test_a_track_without_its_deep_block_is_indexed_and_gets_it_when_it_arrives(tmp_path):
    """Deep blocks (musicnn) come after the fast pass: a track lacking one is indexed with the block
    imputed at the scaler's centre (zeros), the block enters the scaling once enough tracks have it,
    and its statistics are refitted each time its coverage doubles."""
    catalog = MemoryCatalog()
    catalog.add(range(1, 21))
    extractors = {**EXTRACTORS, "d": ExtractorInfo(version=1, deep=True)}
    index = LibraryIndex(catalog, settings(dimensions=0), extractors, data_dir=tmp_path, emit=lambda *a, **k: None)
    assert index.catch_up(20) == 1
    assert index.store.size == 20 and index.scaler.order == ["a", "b"]  # no track has "d" yet
    before, before15 = index.vector(5), index.vector(15)

    def add_deep(ids):
        time.sleep(0.01)
        for tid in ids:
            at, blocks = catalog.rows[tid]
            blocks["d"] = np.array([float(tid), -float(tid), 1.0], np.float32)
            catalog.rows[tid] = (time.time(), blocks)
        time.sleep(0.01)

    add_deep(range(1, 5))  # 4 < MIN_DEEP_FIT: searched as before, no refit yet
    index.refresh()
    assert not index.needs_rebuild() and np.allclose(index.vector(5), before)
    add_deep(range(5, 11))  # 10 tracks have it now
    index.refresh()
    assert index.needs_rebuild()
    index.catch_up()
    assert index.scaler.order == ["a", "b", "d"] and index.store.size == 20
    d = slice(9, 12)  # the "d" block in the assembled vector (a: 6, b: 3, then d: 3)
    assert np.abs(index.vector(5)[d]).sum() > 0 and np.allclose(index.vector(5)[:9], before[:9], atol=1e-6)
    assert np.all(index.vector(15)[d] == 0)  # imputed: the centre, zero after scaling
    assert np.allclose(index.vector(15)[:9], before15[:9], atol=1e-6)  # ranked on the other blocks as before
    add_deep(range(11, 16))  # 5 < the 10 fitted: the delta has them, no refit
    index.refresh()
    assert not index.needs_rebuild() and np.abs(index.vector(15)[d]).sum() > 0
    add_deep(range(16, 21))  # 10 since the build: coverage doubled
    index.refresh()
    assert index.needs_rebuild()
    index.close()
