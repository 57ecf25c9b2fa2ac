"""Local scaling: a hub (near everything) stops crowding a query's list; sigmas follow rebuilds."""

from __future__ import annotations

import time

import numpy as np

from recengine.recommend.distance import distance
from recengine.recommend.local_scaling import LocalScaling


class ExactIndex:
    """An exact in-memory index with the backend's query interface (the algorithm under test needs
    only distances)."""

    metric = "euclidean"

    def __init__(self, vectors: dict[int, np.ndarray]):
        self.items = vectors
        self.built_at = 1.0
        self.queries = 0

    def query(self, vec, n, exclude=frozenset()):
        self.queries += 1
        ids = [t for t in self.items if t not in exclude]
        d = distance(vec, np.stack([self.items[t] for t in ids]), self.metric)
        order = np.argsort(d, kind="stable")[:n]
        return [(ids[i], float(d[i])) for i in order]


def test_a_track_in_a_dense_crowd_loses_to_an_equally_near_track_in_a_sparse_region():
    rng = np.random.default_rng(1)
    items = {i: rng.normal(0, 0.05, 2) for i in range(20)}  # a dense crowd around the origin
    items.update({100 + i: np.array([3.0, 0.0]) + rng.normal(0, 1.0, 2) for i in range(12)})  # sparse
    index = ExactIndex(items)
    ls = LocalScaling(index, k=5)
    query = np.array([1.5, 0.0])
    crowd, loner = 0, 100
    items[loner] = np.array([3.0, 0.0])  # both 1.5 away from the query
    ids = [crowd, loner]
    vecs = np.stack([items[t] for t in ids])
    plain = distance(query, vecs, "euclidean")
    assert abs(plain[0] - plain[1]) < 0.1
    scaled = ls.rerank(plain, ids, vecs)
    assert scaled[1] < scaled[0]  # the crowd's member is near everything: it counts for less


def test_sigmas_are_cached_until_the_index_is_rebuilt():
    rng = np.random.default_rng(2)
    index = ExactIndex({i: rng.normal(size=3) for i in range(30)})
    ls = LocalScaling(index, k=3)
    ids = [1, 2, 3]
    vecs = np.stack([index.items[t] for t in ids])
    first = ls.sigmas(ids, vecs)
    assert index.queries == 3
    assert np.array_equal(ls.sigmas(ids, vecs), first) and index.queries == 3
    index.items[99] = index.items[1] + 1e-3  # a near copy arrives, then a rebuild
    index.built_at = 2.0
    again = ls.sigmas(ids, vecs)
    assert index.queries == 6 and again[0] < first[0]


def test_a_warming_similarity_works_out_every_sigma_ahead_and_again_after_a_rebuild(monkeypatch):
    import threading

    from recengine.recommend import similarity as similarity_module
    from recengine.testing import wait_for

    monkeypatch.setattr(similarity_module, "WARM_RECHECK_S", 0.05)
    monkeypatch.setattr(similarity_module, "WARM_CHUNK", 7)  # several chunks
    rng = np.random.default_rng(3)
    index = ExactIndex({i: rng.normal(size=3) for i in range(30)})
    index.vectors = lambda ids: {t: index.items[t] for t in ids if t in index.items}

    class Catalog:
        def present_ids(self):
            return set(index.items)

    sim = similarity_module.Similarity(Catalog(), index, local_scaling_k=3)
    stop = threading.Event()
    warmer = threading.Thread(target=sim.warm, args=(stop,))
    warmer.start()
    try:
        wait_for(lambda: index.queries >= 30, timeout=10, what="every track's sigma")
        time.sleep(0.2)
        assert index.queries == 30  # once each, not again while the index stays the same
        ids = list(range(30))
        sim.local_scaling.sigmas(ids, np.stack([index.items[t] for t in ids]))
        assert index.queries == 30  # a query now finds them all worked out
        index.built_at = 2.0
        wait_for(lambda: index.queries >= 60, timeout=10, what="the sigmas after a rebuild")
    finally:
        stop.set()
        warmer.join(5)
    assert not warmer.is_alive()
