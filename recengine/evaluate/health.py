"""Playlist health per recipe: size, variety, coverage, churn and, for paths, the largest step.

* **size**: tracks made against the recipe's ``size`` and, when short, the rule that cut it (the
  playlists stage says which: a diversity cap, the spacing, recently played tracks, too few
  candidates);
* **artists / albums per 10**: distinct artists (albums) in each run of 10 consecutive tracks,
  averaged over the list (an untagged track counts its folder as its album, and that album as its
  artist);
* **coverage**: the share of the library the recipe offered over ``REFRESHES`` refreshes replayed
  at even moments through the listener's history (each made from the history before it) and now;
* **changed at the last refresh**: the share of the list made now that was not in the list made
  from the history before the newest event (the refresh that event caused);
* **largest step** (path recipes): the largest distance between consecutive tracks (index
  vectors, the index's metric).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

import numpy as np

from recengine.catalog.evaluation import event_times
from recengine.evaluate.history import HistoryBefore
from recengine.models import Track
from recengine.playlists import Playlists, Recipe, Recipes
from recengine.recommend.distance import distance
from recengine.recommend.ranking import Recommender

if TYPE_CHECKING:
    from recengine.catalog import Catalog
    from recengine.config import Config
    from recengine.index import IndexBackend
    from recengine.plugin.registry import Registry

WINDOW = 10
REFRESHES = 2


@dataclass(frozen=True)
class PlaylistHealth:
    name: str
    kind: str
    asked: int
    reached: int
    cut_by: str | None  # the rule that made the list short (None: full, or not known)
    artists_per_10: float
    albums_per_10: float
    coverage: float
    changed_last_refresh: float | None  # None: no history to compare with
    largest_step: float | None  # path recipes only
    error: str | None = None


def album_key(track: Track) -> str:
    if track.album:
        return "album:" + track.album.strip().casefold()
    return "folder:" + str(PurePath(track.root) / PurePath(track.relpath).parent)


def artist_key(track: Track) -> str:
    return "artist:" + track.artist.strip().casefold() if track.artist else album_key(track)


def distinct_per_window(keys: Sequence[str], window: int = WINDOW) -> float:
    """Distinct keys in each run of ``window`` consecutive items, averaged (the whole list when
    it is shorter)."""
    if not keys:
        return 0.0
    w = min(window, len(keys))
    return float(np.mean([len(set(keys[i:i + w])) for i in range(len(keys) - w + 1)]))


def changed_share(now: Sequence[int], before: Sequence[int]) -> float:
    """The share of ``now`` not in ``before``."""
    return len(set(now) - set(before)) / len(now) if now else 0.0


def largest_step(ids: Sequence[int], index: IndexBackend) -> float | None:
    vectors = index.vectors(ids)
    steps = [float(distance(vectors[a], vectors[b], index.metric)) for a, b in zip(ids, ids[1:], strict=False)
             if a in vectors and b in vectors]
    return max(steps) if steps else None


class Health:
    """Makes each recipe's list now and at replayed moments (nothing is written)."""

    def __init__(self, catalog: Catalog, index: IndexBackend, scorers: Registry, config: Config, recipes: Recipes,
                 playlist_writers: Registry, *, walk, resolve: Callable[[str], Track], now: float,
                 progress: Callable[[float], None] = lambda done: None):  # fmt: skip
        self.catalog, self.index, self.scorers, self.config = catalog, index, scorers, config
        self.recipes, self.playlist_writers = recipes, playlist_writers
        self.walk, self.resolve, self.now = walk, resolve, now
        self.progress = progress

    def playlists(self, before: float) -> Playlists:
        """The playlists stage over the history before ``before``."""
        view = HistoryBefore(self.catalog, before)
        recommender = Recommender(view, self.index, self.scorers, self.config)
        return Playlists(self.recipes, view, self.playlist_writers, lambda hook, **kw: None,
                         recommend=recommender.recommend, walk=self.walk, resolve=self.resolve)

    def check(self) -> list[PlaylistHealth]:
        library = len(self.catalog.present_ids())
        current = self.playlists(float("inf"))
        out = []
        for i, recipe in enumerate(self.recipes):
            try:
                out.append(self._check(recipe, current, library))
            except LookupError as exc:
                out.append(PlaylistHealth(recipe.name, recipe.kind, recipe.size, 0, None, 0.0, 0.0, 0.0, None,
                                          None, error=str(exc)))
            self.progress((i + 1) / len(self.recipes))
        return out

    def _ids(self, playlists: Playlists, recipe: Recipe, now: float) -> list[int]:
        return [r.track.track_id for r in playlists.tracks_for(recipe, now)]

    def _check(self, recipe: Recipe, current: Playlists, library: int) -> PlaylistHealth:
        made = current.make(recipe, self.now, explain=True)
        ids = [r.track.track_id for r in made.tracks]
        tracks = [r.track for r in made.tracks]
        times = event_times(self.catalog, recipe.user)
        offered = set(ids)
        changed = None
        if times:
            moments = np.linspace(times[0], times[-1], REFRESHES + 1)[1:-1] if REFRESHES > 1 else []
            for moment in moments:
                offered.update(self._ids(self.playlists(float(moment)), recipe, float(moment)))
            changed = changed_share(ids, self._ids(self.playlists(times[-1]), recipe, self.now))
        return PlaylistHealth(
            recipe.name, recipe.kind, recipe.size, len(ids), made.shortfall.reason if made.shortfall else None,
            distinct_per_window([artist_key(t) for t in tracks]), distinct_per_window([album_key(t) for t in tracks]),
            len(offered) / max(library, 1), changed,
            largest_step(ids, self.index) if recipe.kind == "path" else None)
