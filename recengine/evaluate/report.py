"""The evaluation report: hearing, personal replay and playlist health, assembled from the stages.

:class:`Evaluation` is handed what it reads (:class:`Sources`: the catalog, the index, the
registries, the recipes and the two queries it asks) and never writes: the catalog is only read,
no playlist file is written, no index is built. :meth:`Evaluation.run` returns a :class:`Report`,
plain dataclasses; :meth:`Report.as_dict` is the JSON form.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recengine.evaluate.health import Health, PlaylistHealth
from recengine.evaluate.hearing import (
    EXTRACTOR_QUERIES,
    MIN_GROUP,
    HearingRow,
    evenly_spaced,
    group_labels,
    similar_row,
    vector_row,
)
from recengine.evaluate.history import TooLittleHistory, split_history
from recengine.evaluate.replay import Mixes, MixResult, Replay
from recengine.index.vectors import Projection, Scaler
from recengine.models import Recommendation, Track
from recengine.recommend.ranking import DEFAULT_STRATEGIES

if TYPE_CHECKING:
    from recengine.catalog import Catalog
    from recengine.config import Config
    from recengine.index import IndexBackend
    from recengine.playlists import Recipes
    from recengine.plugin.registry import Registry

DAY = 86400.0
#: The per-extractor projections are fitted on this many tracks (the leading axes are stable on a sample).
PROJECTION_ROWS = 4000
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Sources:
    """What the report reads. ``similar(ids, n)`` and ``walk(a, b, n, filters)`` are the engine's
    queries; ``resolve`` turns a recipe's track reference into a track."""

    catalog: Catalog
    index: IndexBackend
    extractor_versions: dict[str, int]
    scorers: Registry
    playlist_writers: Registry
    config: Config
    recipes: Recipes
    similar: Callable[[list[int], int], list[Recommendation]]
    walk: Callable[..., list[Recommendation]]
    resolve: Callable[[str], Track]
    scaler: Scaler | None = None  # the index's fitted scaling; None: fitted here per extractor


@dataclass
class Report:
    user: str
    tracks: int
    albums: int  # tagged albums with at least MIN_GROUP tracks
    artists: int
    hearing: list[HearingRow] = field(default_factory=list)
    cutoff: float | None = None
    replay: list[MixResult] = field(default_factory=list)
    too_little_history: str | None = None
    playlists: list[PlaylistHealth] = field(default_factory=list)
    map: dict[str, Any] = field(default_factory=dict)  # x, y, album, artist per track (the HTML's map)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (floats rounded to 4 places; the map left out)."""
        data = dataclasses.asdict(self)
        data.pop("map")
        return _rounded(data)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def mix_name(strategies: dict[str, float]) -> str:
    return "+".join(f"{s}={w:g}" for s, w in strategies.items() if w > 0)


def recipe_mixes(recipes: Recipes, user: str) -> Mixes:
    """Each distinct strategy mix of ``user``'s personal recipes (kind ``user``; the seeded kinds
    rank around their seeds, not a history): its name, the recipes that use it, its strategies and
    diversity options. Without such a recipe, the mix ``recengine recommend`` uses."""
    mixes: dict = {}
    for recipe in recipes:
        if recipe.kind != "user" or recipe.user != user:
            continue
        name = mix_name(recipe.strategies)
        names, strategies, diversity = mixes.get(name, ((), recipe.strategies, recipe.diversity))
        mixes[name] = ((*names, recipe.name), strategies, diversity)
    return mixes or {mix_name(DEFAULT_STRATEGIES): (("recengine recommend",), dict(DEFAULT_STRATEGIES), {})}


class Evaluation:
    """Builds the report for one listener."""

    def __init__(self, sources: Sources, *, progress: Progress = lambda stage, done: None):
        self.sources = sources
        self.progress = progress

    def run(self, user: str, *, since_days: float | None = None, cutoff: float | None = None,
            mixes: Mixes | None = None, now: float | None = None) -> Report:
        """The whole report. ``since_days``: the truth is the last that many days (default: the
        newest 20 % of the events, at least a day); ``cutoff`` sets the moment itself; ``mixes``
        replaces the recipes' strategy mixes (name -> (recipes, strategies, diversity))."""
        started = time.monotonic()
        src = self.sources
        now = time.time() if now is None else now
        ids, blocks = src.catalog.feature_matrix(src.extractor_versions)
        by_id = src.catalog.tracks_by_ids(ids)
        tracks = [by_id[t] for t in ids]
        labels = {a: group_labels(tracks, a) for a in ("album", "artist")}
        report = Report(user, len(tracks), _groups(labels["album"]), _groups(labels["artist"]))
        report.hearing, indexed, vectors = self._hearing(tracks, blocks, labels)
        report.map = self._map(indexed, vectors)
        del blocks, vectors
        if cutoff is None and since_days is not None:
            cutoff = now - since_days * DAY
        try:
            split = split_history(src.catalog, user, cutoff=cutoff)
        except TooLittleHistory as exc:
            report.too_little_history = str(exc)
        else:
            report.cutoff = split.cutoff
            replay = Replay(src.catalog, src.index, src.scorers, src.config,
                            progress=lambda done: self.progress("replay", done))
            report.replay = replay.run(split, recipe_mixes(src.recipes, user) if mixes is None else mixes)
        health = Health(src.catalog, src.index, src.scorers, src.config, src.recipes, src.playlist_writers,
                        walk=src.walk, resolve=src.resolve, now=now,
                        progress=lambda done: self.progress("playlists", done))
        report.playlists = health.check()
        report.seconds = time.monotonic() - started
        return report

    def _hearing(self, tracks: list[Track], blocks: dict[str, np.ndarray],
                 labels: dict[str, np.ndarray]) -> tuple[list[HearingRow], list[Track], np.ndarray]:
        """The hearing rows, and the indexed tracks with their index vectors (for the map)."""
        src = self.sources
        fused = src.index.vectors([t.track_id for t in tracks])
        kept = [i for i, t in enumerate(tracks) if t.track_id in fused]
        indexed = [tracks[i] for i in kept]
        matrix = np.stack([fused.pop(t.track_id) for t in indexed]) if indexed else np.zeros((0, 0), np.float32)
        if len(tracks) < 2:
            return [], indexed, matrix
        dimensions = matrix.shape[1] - 1  # extractors alone are projected as the index projects (plus the bias)
        rows = []
        names = sorted(blocks)
        steps = len(names) + 2
        for i, name in enumerate(names):
            per_track = [{name: v} for v in blocks.pop(name)]
            vectors = self._scaler(name, per_track).transform_many(per_track)
            projection = Projection.fit(vectors, dimensions, max_rows=PROJECTION_ROWS) if dimensions > 0 else None
            if projection is not None:
                vectors = projection.transform(vectors)
            rows.append(vector_row(name, vectors, src.index.metric, tracks, labels, limit=EXTRACTOR_QUERIES))
            del per_track, vectors
            self.progress("hearing", (i + 1) / steps)
        if len(indexed) >= 2:
            sub = {a: v[kept] for a, v in labels.items()}
            rows.append(vector_row("fused", matrix, src.index.metric, indexed, sub))
            self.progress("hearing", (steps - 1) / steps)
            rows.append(similar_row(src.similar, indexed, sub))
        self.progress("hearing", 1.0)
        return rows, indexed, matrix

    def _scaler(self, name: str, per_track: list[dict[str, np.ndarray]]) -> Scaler:
        """The index's scaling of block ``name`` alone (weight 1, every other block 0)."""
        index_scaler = self.sources.scaler
        if index_scaler is not None and name in index_scaler.order:
            return index_scaler.with_weights({n: 1.0 if n == name else 0.0 for n in index_scaler.order})
        return Scaler.fit(per_track, weights={name: 1.0}, order=[name])

    @staticmethod
    def _map(tracks: list[Track], vectors: np.ndarray, limit: int = 3000) -> dict[str, Any]:
        """The two leading principal axes of at most ``limit`` tracks' index vectors."""
        pick = evenly_spaced(len(tracks), limit)
        if len(pick) < 3:
            return {}
        x = vectors[pick].astype(np.float64)
        x -= x.mean(axis=0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        xy = x @ vt[:2].T
        return {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
                "album": [tracks[i].album or "" for i in pick], "artist": [tracks[i].artist or "" for i in pick]}


def _groups(labels: np.ndarray) -> int:
    counts = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    return int((counts >= MIN_GROUP).sum())
