"""recengine.index.store: immutable Annoy generations with a fresh delta (RELIABILITY.md rule 7).

T6, T7, T33-T36, T38; T37 (ids up to 1e9) is covered by the id tests here, its RSS bound by bench.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from annoy import AnnoyIndex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recengine.index.annoy_file import check_annoy_file
from recengine.index.shards import SHARD_MIN_ITEMS, default_shards
from recengine.index.store import IndexStore
from recengine.index.validation import MAX_NORM, MIN_NORM

DIM = 8


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _angular(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(2 - 2 * (_unit(a) @ _unit(b)), 0))


def _data(n: int, dim: int = DIM, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(n, dtype=np.int64) * 7919 + 10**9 - 7919 * n, rng.normal(size=(n, dim)).astype(
        np.float32
    )


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# ----- T33: invalid vectors never reach Annoy, no NaN distances -------------------------------------
def _valid(v) -> bool:
    """Independent oracle: a real 1-D vector of length DIM, finite as float32, sane norm."""
    a = np.asarray(v)
    if a.dtype.kind not in "fiu" or a.shape != (DIM,):
        return False
    with np.errstate(all="ignore"):
        x = a.astype(np.float64).astype(np.float32).astype(np.float64)
    return bool(np.isfinite(x).all() and MIN_NORM <= np.sqrt((x * x).sum()) <= MAX_NORM)


def _as_f32(v: list[float]) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.asarray(v, np.float32)


_special = st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e38, -1e38, 3.5e38, 1e-30, 1e-7, 5e-324])
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), _special, st.floats(-10, 10))
_vectors = st.one_of(
    st.lists(_floats, min_size=DIM, max_size=DIM).map(lambda v: np.asarray(v, np.float64)),
    st.lists(_floats, min_size=0, max_size=2 * DIM).map(_as_f32),
    st.lists(st.integers(-(2**31), 2**31), min_size=DIM, max_size=DIM).map(np.asarray),
    st.lists(st.complex_numbers(), min_size=DIM, max_size=DIM).map(np.asarray),
    st.lists(st.booleans(), min_size=DIM, max_size=DIM).map(np.asarray),
    st.just(np.asarray(["x"] * DIM)),
    st.just(np.asarray([None] * DIM, dtype=object)),
    st.just(np.zeros((2, DIM), np.float32)),
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> IndexStore:
    store = IndexStore(tmp_path_factory.mktemp("idx"))
    ids, x = _data(300)
    store.build(ids, x, {"features": "v1"})
    return store


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v=_vectors, q=st.lists(st.floats(-5, 5), min_size=DIM, max_size=DIM))
def test_t33_fresh_vectors_validated_and_no_nan_distances(built: IndexStore, v, q) -> None:
    before = built.rejected
    assert built.add_fresh(42, v) is _valid(v)
    assert built.rejected == before + (not _valid(v))
    if not _valid(q):
        with pytest.raises(ValueError):
            built.query(q, 5)
        return
    res = built.query(q, 20)
    assert len(res) == 20 and all(np.isfinite(d) for _, d in res)
    assert [d for _, d in res] == sorted(d for _, d in res)
    with pytest.raises(ValueError):
        built.query(v if not _valid(v) else [np.nan] * DIM, 5)


@settings(max_examples=40, deadline=None)
@given(vs=st.lists(_vectors, min_size=1, max_size=12))
def test_t33_build_skips_and_counts_invalid_rows(tmp_path_factory, vs) -> None:
    store = IndexStore(tmp_path_factory.mktemp("b"), dim=DIM)
    good = [_valid(v) for v in vs]
    ids = np.arange(len(vs), dtype=np.int64)
    if not any(good):
        with pytest.raises(ValueError):
            store.build(ids, vs, {})
        assert store.generation is None
        return
    gen = store.build(ids, vs, {})
    man = json.loads((store.directory / f"gen-{gen:06d}.json").read_text())
    assert man["n_items"] == sum(good) and man["n_rejected"] == len(vs) - sum(good)
    assert store.size == sum(good)
    for i, ok in enumerate(good):
        assert (store.vector(i) is not None) is ok


def test_t33_wrong_dtype_array_and_duplicate_ids(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with pytest.raises(ValueError):
        store.build([1, 2], np.ones((2, DIM), np.complex64), {})
    ids, x = _data(50)
    store.build(np.concatenate([ids, ids[:5]]), np.vstack([x, x[:5]]), {})
    assert store.size == 50 and store.rejected == 2 + 5
    assert store.add_fresh(1, np.ones(DIM + 1, np.float32)) is False
    assert store.query(x[0], 1)[0][0] == ids[0]


# ----- T34: queries during rebuild-and-swap cycles ----------------------------------------------
@pytest.mark.parametrize("shards", [1, 2])
def test_t34_queries_during_rebuild_cycles(tmp_path: Path, shards: int) -> None:
    store = IndexStore(tmp_path, keep_generations=2, shards=shards)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, DIM)).astype(np.float32)
    base = np.arange(400, dtype=np.int64)
    store.build(base + 10**7, x, {})  # generation g holds ids g * 10**7 + i
    errors: list[BaseException] = []
    answers = [0]
    stop = threading.Event()

    def reader(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                res = store.query(r.normal(size=DIM), 10)
                gens = {tid // 10**7 for tid, _ in res}
                assert len(res) == 10 and len(gens) == 1, gens
                answers[0] += 1
                time.sleep(0.001)  # let the builder have the GIL now and then
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    pinned = None
    reader_inside = contextlib.ExitStack()
    try:
        for cycle in range(2, 32):
            gen = store.build(base + cycle * 10**7, x, {"cycle": cycle})
            assert gen == cycle
            if cycle == 5:
                pinned = reader_inside.enter_context(store.pinned())  # a reader that stays inside a query
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert answers[0] > 30
    # the pinned old generation is still mapped, its files kept, and it still answers
    assert pinned is not None and pinned.number == 5
    assert (tmp_path / "gen-000005.ann").exists()
    assert len(pinned.anns) == shards and (tmp_path / f"gen-000005.s{shards - 1}.ann").exists() == (
        shards > 1
    )
    assert all(len(a.get_nns_by_vector(x[0].tolist(), 3)) == 3 for a in pinned.anns)
    reader_inside.close()
    exts = ("ann", "ids.npy", "json") + (("s1.ann",) if shards > 1 else ())
    assert _files(tmp_path) == sorted(f"gen-{g:06d}.{ext}" for g in (30, 31) for ext in exts)
    store.close()


# ----- T35: deterministic builds ----------------------------------------------------------------
@pytest.mark.parametrize("shards", [1, 2])
def test_t35_same_data_and_seed_give_identical_files(tmp_path: Path, shards: int) -> None:
    ids, x = _data(3000, dim=32, seed=5)
    for sub in ("a", "b"):
        store = IndexStore(tmp_path / sub, seed=7, n_jobs=1, shards=shards)
        store.build(ids, x, {"scaling": "z", "features": 3})
        store.close()
    names = _files(tmp_path / "a")
    assert names == _files(tmp_path / "b") and len(names) == 3 + (shards - 1)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    man = json.loads((tmp_path / "a" / "gen-000001.json").read_text())
    assert man["seed"] == 7 and man["n_jobs"] == 1 and man["meta"] == {"scaling": "z", "features": 3}


# ----- T36: recall ------------------------------------------------------------------------------
@pytest.mark.parametrize(("metric", "shards"), [("angular", 1), ("euclidean", 1), ("angular", 2)])
def test_t36_recall_at_10_on_random_64d(tmp_path: Path, metric: str, shards: int) -> None:
    ids, x = _data(2000, dim=64, seed=11)
    store = IndexStore(tmp_path, metric=metric, shards=shards)
    store.build(ids, x, {})
    qs = np.random.default_rng(12).normal(size=(100, 64)).astype(np.float32)
    hits = 0
    for q in qs:
        d = _angular(x, q) if metric == "angular" else np.linalg.norm(x - q, axis=1)
        truth = set(ids[np.argsort(d)[:10]].tolist())
        res = store.query(q, 10)
        hits += len(truth & {t for t, _ in res})
        tid, dist = res[0]
        assert dist == pytest.approx(float(d[np.searchsorted(ids, tid)]), abs=1e-4)
    assert hits / 1000 >= 0.9


# ----- T38: fresh items and removals before the next build --------------------------------------
@pytest.mark.parametrize("shards", [1, 2])
def test_t38_fresh_items_found_and_removed_items_vanish(tmp_path: Path, shards: int) -> None:
    store = IndexStore(tmp_path, shards=shards)
    ids, x = _data(1000)
    store.build(ids, x, {})
    rng = np.random.default_rng(9)
    q = rng.normal(size=DIM).astype(np.float32)
    fresh = q + 0.01 * rng.normal(size=(20, DIM)).astype(np.float32)
    for i, v in enumerate(fresh):
        assert store.add_fresh(5 * 10**9 + i, v)
    res = store.query(q, 20)
    assert {t for t, _ in res} == {5 * 10**9 + i for i in range(20)}
    assert res[0][1] == pytest.approx(float(_angular(fresh, q).min()), abs=1e-5)
    assert store.stale == 20 and store.size == 1020
    # the same distance whether a vector is answered by Annoy or by the delta
    store.add_fresh(7, x[3])
    near = dict(store.query(x[3] + 0.1, 50))
    assert near[7] == pytest.approx(near[int(ids[3])], abs=1e-5)
    store.remove(7)
    # removals: from the delta and from the Annoy file, at once
    gone = [5 * 10**9, 5 * 10**9 + 1, int(ids[0]), int(ids[1])]
    for tid in gone:
        store.remove(tid)
    assert not set(gone) & {t for t, _ in store.query(q, 30)}
    assert not set(gone) & {t for t, _ in store.query(x[0], 30)}
    assert store.vector(int(ids[0])) is None and store.vector(int(ids[2])) is not None
    for k in (2, 3, 998, 999):  # items of either shard map back to their track
        np.testing.assert_allclose(store.vector(int(ids[k])), x[k], rtol=1e-6)
    assert store.size == 1020 - 4
    # exclude: answers stay full-length
    top = [t for t, _ in store.query(q, 10)]
    res = store.query(q, 10, exclude=set(top))
    assert len(res) == 10 and not set(top) & {t for t, _ in res}
    # a fresh vector replaces the Annoy copy of the same track
    store.add_fresh(int(ids[5]), -x[5])
    assert int(ids[5]) not in {t for t, _ in store.query(x[5], 5)}
    np.testing.assert_array_equal(store.vector(int(ids[5])), -x[5])
    # the next build includes the delta; changes made before it are dropped, not those during it
    keep = [i for i, t in enumerate(ids) if t not in gone]
    all_ids = np.concatenate([ids[keep], [5 * 10**9 + i for i in range(2, 20)]])
    all_x = np.vstack([x[keep], fresh[2:]])
    store.build(all_ids, all_x, {})
    assert store.stale == 0 and store.size == len(all_ids)
    assert {t for t, _ in store.query(q, 18)} == {5 * 10**9 + i for i in range(2, 20)}


def test_set_delta_replaces_and_empty_generation(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    assert store.load() is None and store.query(np.ones(DIM), 3) == []
    assert store.build([], np.zeros((0, DIM), np.float32), {}) == 1
    ids, x = _data(30)
    assert store.set_delta(ids, x) == 0
    assert store.query(x[4], 1)[0][0] == ids[4]
    assert store.set_delta(ids[:2], x[:2], removed=[int(ids[0])]) == 0
    assert [t for t, _ in store.query(x[4], 5)] == [int(ids[1])]
    assert IndexStore(tmp_path).load() == 1


# ----- T6: damaged index files ------------------------------------------------------------------
def _two_generations(directory: Path, shards: int | None = None) -> tuple[IndexStore, np.ndarray]:
    store = IndexStore(directory, shards=shards)
    ids, x = _data(500)
    store.build(ids, x, {})
    store.build(ids + 1, x, {})
    return store, x


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "ids"])
def test_t6_damaged_generation_refused_previous_serves(tmp_path: Path, damage: str) -> None:
    _, x = _two_generations(tmp_path)
    ann = tmp_path / "gen-000002.ann"
    raw = bytearray(ann.read_bytes())
    node = 12 + 4 * DIM
    if damage == "truncate":
        ann.write_bytes(raw[: (len(raw) // node // 2) * node])
    elif damage == "flip":
        raw[len(raw) // 3] ^= 0x40
        ann.write_bytes(raw)
    elif damage == "manifest":
        (tmp_path / "gen-000002.json").write_text('{"format": 1, "generation": ')
    else:
        (tmp_path / "gen-000002.ids.npy").write_bytes(b"\x93NUMPY garbage")
    stale = tmp_path / ".gen-000003.ann.abcd1234.tmp"
    stale.write_bytes(b"stale")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))  # a crashed build's leftover, hours old
    live = tmp_path / ".gen-000004.ann.live0001.tmp"
    live.write_bytes(b"being written")  # another process's build in progress: left alone
    store = IndexStore(tmp_path)
    assert store.load() == 1
    assert [g for g, _ in store.load_failures] == [2]
    assert store.query(x[0], 1)[0][1] == pytest.approx(0, abs=1e-3)
    assert not stale.exists()
    assert live.exists()
    live.unlink()
    # the next build supersedes the bad generation and removes it
    ids, _ = _data(500)
    assert store.build(ids, x, {}) == 3
    assert _files(tmp_path) == [f"gen-{g:06d}.{e}" for g in (1, 3) for e in ("ann", "ids.npy", "json")]


def test_t6_damaged_second_shard_refused_previous_serves(tmp_path: Path) -> None:
    store, x = _two_generations(tmp_path, shards=2)
    store.close()
    ids, _ = _data(500)
    shard = tmp_path / "gen-000002.s1.ann"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    shard.write_bytes(raw)
    store = IndexStore(tmp_path)
    assert store.load() == 1 and [g for g, _ in store.load_failures] == [2]
    assert "gen-000002.s1.ann" in store.load_failures[0][1]
    assert store.query(x[1], 1)[0][0] == ids[1]  # an item of the second shard, from generation 1
    shard.unlink()  # a missing shard is refused the same way
    assert IndexStore(tmp_path).load() == 1
    store.close()


def test_default_shards_and_format_1_manifest(tmp_path: Path) -> None:
    assert default_shards(SHARD_MIN_ITEMS - 1, cpus=8) == 1
    assert default_shards(SHARD_MIN_ITEMS, cpus=1) == 1
    assert default_shards(SHARD_MIN_ITEMS, cpus=2) == default_shards(10**7, cpus=16) == 2
    # a generation written before shards existed (format 1: one ann_file) still loads
    ids, x = _data(300)
    IndexStore(tmp_path).build(ids, x, {})
    man_path = tmp_path / "gen-000001.json"
    man = json.loads(man_path.read_text())
    assert man["format"] == 2 and man["shards"] == 1 and man["ann_files"] == ["gen-000001.ann"]
    man.update(format=1, ann_file=man.pop("ann_files")[0], ann_sha256=man.pop("ann_sha256")[0])
    del man["shards"]
    man_path.write_text(json.dumps(man))
    store = IndexStore(tmp_path)
    assert store.load() == 1 and store.load_failures == []
    assert store.query(x[7], 1)[0][0] == ids[7]


def test_t6_expected_meta_mismatch_refused(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    ids, x = _data(100)
    store.build(ids, x, {"features": 1})
    store.build(ids, x, {"features": 2})
    assert IndexStore(tmp_path).load(expect_meta={"features": 1}) == 1
    assert IndexStore(tmp_path, dim=DIM + 1).load() is None


# ----- T7: wrong f / metric behind a matching manifest ------------------------------------------
_LOADER = textwrap.dedent(
    """
    import sys, json
    import numpy as np
    from recengine.index.store import IndexStore
    store = IndexStore(sys.argv[1])
    gen = store.load()
    res = store.query(np.ones(int(sys.argv[2]), np.float32), 5)
    print(json.dumps({"gen": gen, "n": len(res), "failures": [g for g, _ in store.load_failures]}))
    """
)


def _forge(directory: Path, f: int, metric: str, dim: int, seed: int) -> None:
    """Replace generation 2's Annoy file by one of another f/metric (or random bytes when f=0) and
    make the manifest's checksum match, as a buggy or hostile writer would."""
    path = directory / "gen-000002.ann"
    if f == 0:
        rng = np.random.default_rng(seed)
        path.write_bytes(rng.integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())
    else:
        ann = AnnoyIndex(f, metric)
        ann.set_seed(seed)
        for i, v in enumerate(np.random.default_rng(seed).normal(size=(500, f)).tolist()):
            ann.add_item(i, v)
        ann.build(10, n_jobs=1)
        ann.save(str(path))
        ann.unload()
    import hashlib

    man_path = directory / "gen-000002.json"
    man = json.loads(man_path.read_text())
    man["ann_sha256"][0] = hashlib.sha256(path.read_bytes()).hexdigest()
    man_path.write_text(json.dumps(man))


@pytest.mark.parametrize(
    ("f", "metric"),
    [(4, "angular"), (7, "angular"), (16, "angular"), (32, "angular"), (7, "euclidean"),
     (8, "euclidean"), (8, "manhattan"), (8, "dot"), (0, "random")],
)  # fmt: skip
def test_t7_wrong_f_or_metric_refused_without_crash(tmp_path: Path, f: int, metric: str) -> None:
    # (7, "euclidean") has exactly the node size of angular f=8: only the structure check sees it
    _two_generations(tmp_path)
    _forge(tmp_path, f, metric, DIM, seed=f)
    with pytest.raises(Exception, match="range|multiple|descendant|root|nodes"):
        check_annoy_file(tmp_path / "gen-000002.ann", DIM, "angular", 500)
    proc = subprocess.run(
        [sys.executable, "-c", _LOADER, str(tmp_path), str(DIM)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"gen": 1, "n": 5, "failures": [2]}


def test_failed_build_keeps_current_generation_and_leaves_no_files(tmp_path: Path, monkeypatch) -> None:
    import errno

    import recengine.index.manifest as index_mod

    store = IndexStore(tmp_path)
    ids, x = _data(200)
    store.build(ids, x, {})
    before = _files(tmp_path)
    real = index_mod.atomic_write

    def full(path, data, **kw):
        if str(path).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, **kw)

    monkeypatch.setattr(index_mod, "atomic_write", full)
    with pytest.raises(OSError) as err:
        store.build(ids + 1, x, {})
    assert err.value.errno == errno.ENOSPC
    assert store.generation == 1 and _files(tmp_path) == before
    assert store.query(x[0], 1)[0][0] == ids[0]


_CRASHER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from recengine.index.store import IndexStore
    store = IndexStore(sys.argv[1])
    store.load()
    rng = np.random.default_rng(0)
    store.build(np.arange(300) + 1, rng.normal(size=(300, 8)).astype(np.float32), {})
    """
)


@pytest.mark.parametrize(
    ("point", "expect"), [("mid_index_write", 1), ("before_index_replace", 1), ("after_index_replace", 2)]
)
def test_t2_crash_at_index_fault_points(tmp_path: Path, point: str, expect: int) -> None:
    ids, x = _data(300)
    IndexStore(tmp_path).build(ids, x, {})
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(tmp_path)],
        env={**os.environ, "RECENGINE_FAULTPOINT": point},
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert proc.returncode == 137, proc.stderr
    store = IndexStore(tmp_path)
    assert store.load() == expect and store.load_failures == []
    store.sweep_temps(min_age_s=0)  # what the daemon does at start-up, holding the data dir's lock
    assert not [n for n in _files(tmp_path) if n.endswith(".tmp")]
    assert len(store.query(x[0], 5)) == 5
    nxt = 2 if point == "mid_index_write" else 3  # a number whose files exist is never reused
    assert store.build(ids, x, {}) == nxt
    assert _files(tmp_path) == [f"gen-{g:06d}.{e}" for g in (expect, nxt) for e in ("ann", "ids.npy", "json")]


# ----- bulk lookups -----------------------------------------------------------------------------
@pytest.mark.parametrize("shards", [1, 2])
def test_bulk_vectors_match_single_lookups_and_keep_the_order_given(tmp_path: Path, shards: int) -> None:
    store = IndexStore(tmp_path, shards=shards)
    assert store.vectors([1, 2]) == {}
    assert store.vectors_matrix([1, 2])[0].tolist() == [False, False]
    ids, x = _data(600)
    store.build(ids, x, {})
    store.add_fresh(5, np.ones(DIM, np.float32))  # a new track
    store.add_fresh(int(ids[10]), -x[10])  # a fresh vector replaces the generation's copy
    store.remove(int(ids[11]))
    wanted = [int(ids[599]), 5, -1, int(ids[10]), int(ids[11]), int(ids[0]), int(ids[599]), int(ids[1])]
    got = store.vectors(wanted)
    assert list(got) == [int(ids[599]), 5, int(ids[10]), int(ids[0]), int(ids[1])]
    for tid, vec in got.items():
        assert vec.dtype == np.float32
        np.testing.assert_array_equal(vec, store.vector(tid))
    np.testing.assert_array_equal(got[int(ids[10])], -x[10])
    np.testing.assert_allclose(np.stack([got[int(ids[k])] for k in (0, 1, 599)]), x[[0, 1, 599]], rtol=1e-6)
    assert store.vector(int(ids[11])) is None and store.vector(-1) is None
    np.testing.assert_array_equal(got[5], np.ones(DIM, np.float32))
    mask, matrix = store.vectors_matrix(wanted)  # the same, as one array in the order asked, repeats kept
    assert mask.tolist() == [True, True, False, True, False, True, True, True]
    assert matrix.dtype == np.float32 and matrix.shape == (6, DIM)
    np.testing.assert_array_equal(matrix, np.stack([got[t] for t, m in zip(wanted, mask.tolist(), strict=True) if m]))


# ----- issue 12 item 10: odd entries where the index lives --------------------------------------
def test_a_file_where_the_index_folder_belongs_is_moved_aside(tmp_path: Path, caplog) -> None:
    path = tmp_path / "index"
    path.write_bytes(b"not an index folder")
    with caplog.at_level("WARNING"):
        store = IndexStore(path)
    ids, x = _data(50)
    assert store.build(ids, x, {}) == 1 and path.is_dir()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("index.not-a-folder-")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"not an index folder"
    assert aside[0].name in caplog.text and "rebuilt from the catalog" in caplog.text
    store.close()


def test_a_file_that_cannot_be_moved_aside_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    from recengine.index.generations import IndexDirectoryError

    path = tmp_path / "index"
    path.write_bytes(b"x")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(IndexDirectoryError) as err:
        IndexStore(path)
    message = str(err.value)
    assert str(path) in message and "Permission denied" in message and "move or remove it" in message
    assert "\n" not in message and path.read_bytes() == b"x"


def test_entries_named_like_generation_files_that_are_not_files_are_skipped(tmp_path: Path, caplog) -> None:
    store, x = _two_generations(tmp_path)
    store.close()
    odd = [tmp_path / "gen-000000.json", tmp_path / "gen-000005.json"]
    for d in odd:
        d.mkdir()
    with caplog.at_level("WARNING"):
        store = IndexStore(tmp_path)
        assert store.load() == 2 and store.load_failures == []
        ids, _ = _data(500)
        assert store.build(ids, x, {}) == 6  # a number whose name is taken is never reused
        assert store.build(ids, x, {}) == 7
    assert all(d.is_dir() for d in odd)  # never read, never deleted
    assert _files(tmp_path) == sorted(["gen-000000.json", "gen-000005.json"]
                                      + [f"gen-{g:06d}.{e}" for g in (6, 7) for e in ("ann", "ids.npy", "json")])
    for d in odd:
        assert caplog.text.count(f"{d.name} is not a regular file") == 1
    assert store.query(x[0], 1)[0][1] == pytest.approx(0, abs=1e-3)
    store.close()
