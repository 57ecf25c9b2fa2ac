"""How well the engine hears the library: do a track's neighbours share its album or artist?

For each extractor alone and for the fused index vectors, every track's ``K`` nearest other
tracks are computed exactly in memory (blocks of rows, so memory stays flat), on vectors scaled as
the index scales them (:class:`recengine.index.vectors.Scaler`). Then:

* **precision@K**: the share of a track's ``K`` neighbours on its album (artist), averaged over the
  tracks whose album (artist) has at least ``MIN_GROUP`` tracks; **1-NN**: the same for the
  nearest neighbour alone; **chance**: what a random ranking scores, ``(group size - 1) / (n - 1)``
  averaged over the same tracks. Copies of the query (same content) are left out of its list, as
  ``similar`` leaves them out;
* **duplicates**: the share of raw neighbour lists holding a copy of the query (the same audio
  under another path): how many copies the library has, as the neighbours see it;
* **hubs and orphans** (Radovanovic et al., "Hubs in space", JMLR 2010): ``N_K(x)``, how many
  lists ``x`` appears in; orphans never appear (``N_K = 0``), hubs appear in more than
  ``HUB_FACTOR * K`` lists; ``skew`` is the skewness of ``N_K`` (0: no hubness).

On a library of more than ``EXTRACTOR_QUERIES`` tracks the extractors alone are measured on an
evenly spaced sample of that many query tracks (against the whole library), without hubness.
The ``similar`` row measures what users get (``engine.similar``: the index, local scaling and
duplicate removal included) on an evenly spaced sample of at most ``SIMILAR_QUERIES`` tracks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recengine.models import Recommendation, Track

K = 10
MIN_GROUP = 3
HUB_FACTOR = 2
SIMILAR_QUERIES = 200
#: Extractors alone are measured on at most this many evenly spaced tracks' lists (all against all
#: above it costs minutes); the fused vectors always on every list, for the hubness.
EXTRACTOR_QUERIES = 3000
#: Extra neighbours fetched so that K remain once copies of the query are dropped.
_SLACK = 5
_BLOCK = 256


@dataclass(frozen=True)
class Precision:
    """Same-group neighbours of ``queries`` tracks (those in groups of ``MIN_GROUP`` or more)."""

    queries: int
    groups: int
    p_at_k: float
    one_nn: float
    chance: float


@dataclass(frozen=True)
class Hubness:
    orphans: float  # share of tracks in nobody's list
    hubs: float  # share of tracks in more than HUB_FACTOR * K lists
    skew: float
    top: list[tuple[int, int]] = field(default_factory=list)  # (track_id, N_K), most frequent first


@dataclass(frozen=True)
class HearingRow:
    """One variant: an extractor alone, ``fused`` (the index vectors) or ``similar``."""

    variant: str
    album: Precision | None
    artist: Precision | None
    duplicates: float
    hubness: Hubness | None


def group_labels(tracks: Sequence[Track], attribute: str) -> np.ndarray:
    """An integer label per track from its ``album`` or ``artist`` tag (case-insensitive); -1
    where the tag is empty."""
    names: dict[str, int] = {}
    out = np.full(len(tracks), -1, dtype=np.int64)
    for i, track in enumerate(tracks):
        value = (getattr(track, attribute) or "").strip().casefold()
        if value:
            out[i] = names.setdefault(value, len(names))
    return out


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` row indices spread evenly over ``0..n-1`` (all of them when n <= limit)."""
    return np.unique(np.linspace(0, n - 1, min(limit, n)).astype(np.int64)) if n else np.zeros(0, np.int64)


def exact_neighbours(vectors: np.ndarray, metric: str, k: int, queries: np.ndarray | None = None) -> np.ndarray:
    """``(q, k)`` row indices of the ``k`` nearest other rows of each row of ``queries`` (default:
    every row), nearest first (Annoy's
    angular or euclidean distance; ties broken by row index).

    Rows are ranked by a closeness that orders them as the distance does: the dot product of
    unit vectors (angular), or ``2 a.b - |b|^2`` (euclidean: ``|a - b|^2`` less the row's own
    ``|a|^2``), a block of ``_BLOCK`` rows at a time."""
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n if queries is None else len(queries), 0), dtype=np.int64)
    if metric == "angular":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        penalty = None
    else:
        penalty = np.einsum("ij,ij->i", x, x)
    queries = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), _BLOCK):
        block = queries[start:start + _BLOCK]
        close = x[block] @ x.T
        if penalty is not None:
            close *= 2.0
            close -= penalty[None, :]
        close[np.arange(len(block)), block] = -np.inf
        # np.partition finds each row's k-th value ~8x faster than argpartition; every entry at
        # least that close is kept (ties included), then ordered by closeness, then by row
        kth = np.partition(close, -k, axis=1)[:, -k]
        r, c = np.nonzero(close >= kth[:, None])
        order = np.lexsort((c, -close[r, c], r))
        r, c = r[order], c[order]
        pos = np.arange(len(r)) - np.searchsorted(r, r)
        keep = pos < k
        out[start + r[keep], pos[keep]] = c[keep]
    return out


def drop_copies(neighbours: np.ndarray, sigs: Sequence[str], k: int,
                queries: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Neighbour lists (of ``queries``, default every row) without copies of the query (same
    content signature), cut to ``k`` (-1 pads a list that ran short), and the share of raw
    top-``k`` lists that held a copy."""
    sig = np.asarray(sigs, dtype=object)
    own = sig if queries is None else sig[queries]
    same = sig[neighbours] == own[:, None]
    had_copy = same[:, :k].any(axis=1) if len(neighbours) else np.zeros(0, bool)
    out = np.full((len(neighbours), k), -1, dtype=np.int64)
    for i in range(len(neighbours)):
        kept = neighbours[i][~same[i]][:k]
        out[i, :len(kept)] = kept
    return out, float(had_copy.mean()) if len(had_copy) else 0.0


def label_precision(neighbours: np.ndarray, labels: np.ndarray, queries: np.ndarray | None = None,
                    population: np.ndarray | None = None) -> Precision | None:
    """Precision@k, 1-NN and chance over the query rows in groups of at least ``MIN_GROUP``.

    ``neighbours`` holds indices into ``labels`` (the library), one row per query (``queries``:
    their indices, default every track); -1 entries are misses. ``population`` (default
    ``labels``) is what chance is computed over. None when no group is big enough."""
    labels = np.asarray(labels)
    queries = np.arange(len(labels)) if queries is None else np.asarray(queries)
    population = labels if population is None else population
    values, counts = np.unique(population[population >= 0], return_counts=True)
    size = dict(zip(values.tolist(), counts.tolist(), strict=True))
    q_labels = labels[queries]
    keep = np.array([size.get(int(lab), 0) >= MIN_GROUP for lab in q_labels], dtype=bool)
    if not keep.any() or neighbours.shape[1] == 0:
        return None
    rows, q_labels = neighbours[keep], q_labels[keep]
    hits = (rows >= 0) & (labels[np.maximum(rows, 0)] == q_labels[:, None])
    n = len(population)
    chance = np.mean([(size[int(lab)] - 1) / max(n - 1, 1) for lab in q_labels])
    return Precision(queries=int(keep.sum()), groups=len(set(q_labels.tolist())),
                     p_at_k=float(hits.mean()), one_nn=float(hits[:, 0].mean()), chance=float(chance))


def hubness(neighbours: np.ndarray, ids: Sequence[int], k: int, top: int = 5) -> Hubness:
    """k-occurrence statistics of full neighbour lists (one row per library track)."""
    n = len(ids)
    counts = np.bincount(neighbours[neighbours >= 0].ravel(), minlength=n)[:n]
    std = counts.std()
    skew = float(((counts - counts.mean()) ** 3).mean() / std ** 3) if std > 0 else 0.0
    order = np.argsort(-counts, kind="stable")[:top]
    return Hubness(orphans=float((counts == 0).mean()), hubs=float((counts > HUB_FACTOR * k).mean()),
                   skew=skew, top=[(int(ids[i]), int(counts[i])) for i in order if counts[i] > 0])


def vector_row(variant: str, vectors: np.ndarray, metric: str, tracks: Sequence[Track],
               labels: dict[str, np.ndarray], k: int = K, limit: int | None = None) -> HearingRow:
    """One exact variant: every track's list, or (``limit``) an evenly spaced sample of lists,
    and then no hubness (it needs every list)."""
    queries = None if limit is None or len(tracks) <= limit else evenly_spaced(len(tracks), limit)
    raw = exact_neighbours(vectors, metric, k + _SLACK, queries)
    clean, duplicates = drop_copies(raw, [t.content_sig for t in tracks], k, queries)
    hubs = hubness(clean, [t.track_id for t in tracks], k) if queries is None else None
    return HearingRow(variant, label_precision(clean, labels["album"], queries),
                      label_precision(clean, labels["artist"], queries), duplicates, hubs)


def similar_row(similar: Callable[[list[int], int], list[Recommendation]], tracks: Sequence[Track],
                labels: dict[str, np.ndarray], k: int = K, limit: int = SIMILAR_QUERIES) -> HearingRow:
    """What ``similar`` answers for an evenly spaced sample of at most ``limit`` tracks."""
    row_of = {t.track_id: i for i, t in enumerate(tracks)}
    queries = evenly_spaced(len(tracks), limit)
    lists = np.full((len(queries), k), -1, dtype=np.int64)
    copies = 0
    for j, q in enumerate(queries):
        recs = similar([tracks[q].track_id], k)
        found = [row_of[r.track.track_id] for r in recs if r.track.track_id in row_of][:k]
        lists[j, :len(found)] = found
        copies += any(r.track.content_sig == tracks[q].content_sig for r in recs)
    return HearingRow("similar", label_precision(lists, labels["album"], queries),
                      label_precision(lists, labels["artist"], queries),
                      copies / max(len(queries), 1), None)
