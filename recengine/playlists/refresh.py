"""Recipes made into playlist files, and when to re-make them.

:class:`Playlists` gets everything in its constructor (the recipes, the catalog, the playlist
writers, an ``emit`` callable and the track queries it needs) and never calls back into the
engine. Files are written atomically, only when their bytes change, and only over files recengine
wrote itself (they carry its marker); a user's file of the same name is left alone and ours goes
to ``<name> (recengine).<ext>``.

A list shorter than the recipe asks for is not a failure, but it is said: :class:`Shortfall` names
the rule that cut it (a diversity cap, the spacing, recently played tracks, or too few candidates),
it is logged, and :meth:`Playlists.refresh` returns it with the files it wrote.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recengine.catalog import Catalog
from recengine.fileio import atomic_write, sweep_stale_temps
from recengine.models import Playlist, PlaylistEntry, Recommendation, Track
from recengine.playlists.recipes import REFRESH_ON, Output, Recipe, Recipes, make_filters, safe_filename
from recengine.playlists.seeds import SeedResolver
from recengine.plugin.registry import Registry
from recengine.recommend.filters import Filters
from recengine.recommend.ranking import Request

log = logging.getLogger(__name__)

Emit = Callable[..., None]
Recommend = Callable[[Request], list[Recommendation]]
#: ``path(from_id, to_id, n, filters)``: a walk between two tracks (``Similarity.path``).
Walk = Callable[[int, int, int, Filters], list[Recommendation]]

#: Recipe ``diversity:`` rules and the value that switches each off, tried one at a time to find
#: which of them cut a short list.
_RELAXED = {"max_per_artist": 1_000_000, "max_per_album": 1_000_000, "artist_spacing": 0,
            "exclude_played_hours": 0}
#: Radio without seeds is seeded by the listener's plays and likes of this many last seconds.
RADIO_HISTORY_S = 7 * 86400
RADIO_SEEDS = 5
#: At most this many tracks are asked for (a recipe limited by minutes asks for this many).
MAX_TRACKS = 500


@dataclass(frozen=True)
class Shortfall:
    """A list that came out shorter than its recipe's ``size``, and why."""

    wanted: int
    got: int
    reason: str

    def __str__(self) -> str:
        return f"{self.got} of {self.wanted} tracks: {self.reason}"


@dataclass
class Made:
    """A recipe's tracks, best first, and the shortfall when there are fewer than asked for."""

    recipe: Recipe
    tracks: list[Recommendation]
    shortfall: Shortfall | None = None


@dataclass
class RefreshReport:
    """What :meth:`Playlists.refresh` did, per recipe name: files whose content changed (``[]``:
    the files were already up to date), recipes that failed and why, lists that came out short."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    short: dict[str, Shortfall] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"written": {k: [str(p) for p in v] for k, v in self.written.items()},
                "failed": dict(self.failed),
                "short": {k: {"wanted": s.wanted, "got": s.got, "reason": s.reason} for k, s in self.short.items()}}


class Playlists:
    """Makes and writes the recipes' playlists; remembers when each was last refreshed."""

    def __init__(self, recipes: Recipes, catalog: Catalog, playlist_writers: Registry, emit: Emit, *,
                 recommend: Recommend, walk: Walk, resolve: Callable[[str], Track]):
        self.recipes = recipes
        self.catalog = catalog
        self.playlist_writers = playlist_writers
        self.emit = emit
        self.recommend = recommend
        self.walk = walk
        self.seeds = SeedResolver(catalog, resolve)
        self.last_refresh: dict[str, float] = {}

    @property
    def outputs(self) -> dict[str, Output]:
        return self.recipes.outputs

    @property
    def marker(self) -> str:
        """This library's ownership marker, written into every playlist file recengine owns."""
        marker = self.catalog.get_meta("playlist_marker")
        if marker is None:
            marker = str(uuid.uuid4())
            self.catalog.set_meta("playlist_marker", marker)
        return marker

    def get(self, name: str) -> Recipe:
        return self.recipes.get(name)

    def seed_problems(self) -> list[str]:
        """A line per recipe reference (seed, ``from``, ``to``) that is not in the catalog."""
        return self.seeds.problems(self.recipes, self.recipes.source)

    # making -----------------------------------------------------------------------------------------

    def tracks_for(self, recipe: Recipe, now: float | None = None) -> list[Recommendation]:
        """The recipe's tracks, best first; raises LookupError when a named track is unknown."""
        return self.make(recipe, now).tracks

    def make(self, recipe: Recipe, now: float | None = None, *, explain: bool = False) -> Made:
        """The recipe's tracks; with ``explain``, a short list also says which rule cut it."""
        now = time.time() if now is None else now
        filters = make_filters(recipe.filters, now)
        if recipe.kind == "path":
            start, end = self.seeds.resolve(str(recipe.start)), self.seeds.resolve(str(recipe.end))
            return Made(recipe, self.walk(start.track_id, end.track_id, recipe.size, filters))
        request = self._request(recipe, filters, now)
        recs = self.recommend(request)
        if recipe.duration_min is not None:
            budget, out = recipe.duration_min * 60, []
            for r in recs:
                if budget <= 0:
                    break
                out.append(r)
                budget -= r.track.duration or 0
            return Made(recipe, out)
        made = Made(recipe, recs)
        if explain and len(recs) < request.n:
            made.shortfall = Shortfall(request.n, len(recs), self._cut_by(request, len(recs)))
        return made

    def _request(self, recipe: Recipe, filters: Filters, now: float) -> Request:
        seeds = [self.seeds.resolve(s).track_id for s in recipe.seeds]
        if recipe.kind == "radio" and not seeds:
            recent = sorted(self.catalog.events(recipe.user, since=now - RADIO_HISTORY_S), key=lambda e: -e.at)
            seeds = list(dict.fromkeys(e.track_id for e in recent if e.kind in ("play", "like")))[:RADIO_SEEDS]
        n = MAX_TRACKS if recipe.duration_min is not None else min(recipe.size, MAX_TRACKS)
        return Request(user=recipe.user, n=n, seeds=seeds, strategies=recipe.strategies,
                       filters=filters, diversity=recipe.diversity, now=now)

    def _cut_by(self, request: Request, got: int) -> str:
        """Which ``diversity:`` rule made the list shorter: each is switched off in turn and the
        list asked for again; with none to blame, there were too few candidates."""

        def count(rules: dict[str, Any]) -> int:
            return len(self.recommend(replace(request, diversity={**request.diversity, **rules})))

        unbound = count(_RELAXED)
        if unbound <= got:
            return (f"only {got} tracks are left after the filters, the seeds, dislikes and what "
                    f"{request.user} already liked or played")
        # a rule whose removal alone lengthens the list; else each rule that alone shortens it
        cut = [rule for rule, off in _RELAXED.items() if count({rule: off}) > got]
        if not cut:
            cut = [rule for rule in _RELAXED if count({r: off for r, off in _RELAXED.items() if r != rule}) < unbound]
        if not cut:
            return "cut by the diversity rules together"
        named = [rule if rule not in request.diversity else f"{rule}={request.diversity[rule]}" for rule in cut]
        return f"cut by the diversity rule{'s' if len(named) > 1 else ''} {' and '.join(named)}"

    # writing ----------------------------------------------------------------------------------------

    def target_path(self, recipe: Recipe, playlist_writer: Any) -> Path:
        """Where ``playlist_writer`` writes the recipe's file (before any ``(recengine)`` rename)."""
        return self.outputs[recipe.output].dir / f"{safe_filename(recipe.name)}{playlist_writer.suffix}"

    def write(self, recipe: Recipe, recs: Sequence[Recommendation]) -> list[Path]:
        """Write the recipe's files; returns the paths whose content changed."""
        out = self.outputs[recipe.output]
        out.dir.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(out.dir, min_age_s=3600)  # never a live writer's temp
        entries = [PlaylistEntry(r.track.path, r.track.duration, r.track.artist, r.track.title, r.track.album, r.why)
                   for r in recs]
        marker = self.marker
        playlist = Playlist(recipe.name, entries, marker, recipe.description)
        changed = []
        for name in recipe.writers:
            playlist_writer = self.playlist_writers[name]
            path = self._owned_path(self.target_path(recipe, playlist_writer), playlist_writer, marker)
            if path is None:
                log.error("%s exists and is not ours either; playlist %s not written",
                          self.target_path(recipe, playlist_writer), recipe.name)
                continue
            data = playlist_writer.render(playlist, out.profile, path)
            if atomic_write(path, data, fault="mid_playlist_write"):
                changed.append(path)
                self.catalog.record_playlist_written(
                    recipe.name, str(path), marker, hashlib.sha256(data).hexdigest(), time.time())
                self.emit("playlist_written", name=recipe.name, path=path)
        return changed

    @staticmethod
    def _owned_path(path: Path, playlist_writer: Any, marker: str) -> Path | None:
        """``path``, or ``<stem> (recengine)<suffix>`` when a file of someone else's is there."""
        if not path.exists() or playlist_writer.marker_of(path) == marker:
            return path
        ours = path.with_name(f"{path.stem} (recengine){path.suffix}")
        log.warning("%s was not written by recengine; leaving it alone and writing %s instead", path, ours)
        if ours.exists() and playlist_writer.marker_of(ours) != marker:
            return None
        return ours

    # refresh policy ---------------------------------------------------------------------------------

    def due(self, recipe: Recipe, reason: str | None, force: bool, now: float) -> bool:
        """Whether ``refresh`` re-makes ``recipe`` now (see :meth:`refresh`)."""
        if reason in REFRESH_ON and reason not in recipe.refresh_on:
            return False
        last = self.last_refresh.get(recipe.name, 0.0)
        if reason == "timer" and not (recipe.every_s and now - last >= recipe.every_s):
            return False
        return force or now - last >= recipe.min_interval_s

    def refresh(self, names: list[str] | None = None, *, reason: str | None = None, force: bool = True,
                now: float | None = None) -> RefreshReport:
        """Re-make playlists: the named ones, or those whose refresh policy covers ``reason``
        (``library``/``history``/``timer``), respecting ``min_interval_s`` unless ``force``.
        A recipe naming a track that is not in the catalog fails (logged, in the report) and the
        others are still made."""
        now = time.time() if now is None else now
        report = RefreshReport()
        for recipe in self.recipes:
            if (names is not None and recipe.name not in names) or not self.due(recipe, reason, force, now):
                continue
            try:
                made = self.make(recipe, now, explain=True)
            except LookupError as exc:
                log.error("playlist %s: %s", recipe.name, exc)
                report.failed[recipe.name] = str(exc)
                continue
            if made.shortfall is not None:
                log.warning("playlist %s: %s", recipe.name, made.shortfall)
                report.short[recipe.name] = made.shortfall
            report.written[recipe.name] = self.write(recipe, made.tracks)
            self.last_refresh[recipe.name] = now
        return report
