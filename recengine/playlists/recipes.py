"""Playlist recipes from ``config.yaml`` turned into playlist files.

A recipe names what to make (``kind``: ``user``, ``similar``, ``radio``, ``path``), how big, for
whom, with which filters and strategies, and where to write it (``writers`` into an ``output``
folder with the path style its media server expects). Files are written atomically, only when
their bytes change, and only over files recengine wrote itself (they carry its marker); a
user's file of the same name is left alone and ours goes to ``<name> (recengine).<ext>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recengine.config import ConfigError
from recengine.fileio import atomic_write, sweep_stale_temps
from recengine.models import PathProfile, Playlist, PlaylistEntry, Recommendation
from recengine.recommend.filters import Filters
from recengine.recommend.ranking import DEFAULT_STRATEGIES, Request

log = logging.getLogger(__name__)

KINDS = ("user", "similar", "radio", "path")
REFRESH_ON = ("library", "history")
_RECIPE_KEYS = {"name", "kind", "user", "seeds", "from", "to", "size", "duration_min", "filters", "strategies",
                "diversity", "writers", "output", "backend", "refresh", "description"}
_FILTER_KEYS = {"exclude_artists", "exclude_albums", "exclude_genres", "min_duration", "max_duration", "tags",
                "only_in_months"}
_REFRESH_KEYS = {"on", "every_s", "min_interval_s"}
_OUTPUT_KEYS = {"dir", "paths", "prefix_map"}


@dataclass
class Output:
    name: str
    dir: Path
    profile: PathProfile


@dataclass
class Recipe:
    name: str
    kind: str = "user"
    user: str = "default"
    seeds: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    size: int = 50
    duration_min: float | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    strategies: dict[str, float] = field(default_factory=dict)
    diversity: dict[str, Any] = field(default_factory=dict)
    writers: list[str] = field(default_factory=lambda: ["m3u8"])
    output: str = "default"
    backend: str | None = None
    refresh_on: tuple[str, ...] = REFRESH_ON
    every_s: float | None = None
    min_interval_s: float = 60.0
    description: str = ""


# --- parsing and validating ------------------------------------------------------------------------


def _unknown_keys(source: str, key: str, given: dict, allowed: set[str]) -> None:
    from recengine.config import unknown_key_error as _unknown

    for k in given:
        if k not in allowed:
            raise _unknown(source, f"{key}.{k}", str(k), sorted(allowed))


def parse_outputs(config) -> dict[str, Output]:
    source = config.source
    outputs = {"default": Output("default", config.data_dir / "playlists", PathProfile("absolute"))}
    for name, spec in (config.get("outputs") or {}).items():
        key = f"outputs.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(source, key, f"expected a mapping with dir and paths, got {spec!r}")
        _unknown_keys(source, key, spec, _OUTPUT_KEYS)
        if not spec.get("dir"):
            raise ConfigError(source, f"{key}.dir", "a folder for the playlist files is required")
        mode = spec.get("paths", "absolute")
        if mode not in ("absolute", "relative"):
            raise ConfigError(source, f"{key}.paths", f"expected absolute or relative, got {mode!r}")
        pmap = spec.get("prefix_map") or {}
        if not isinstance(pmap, dict):
            raise ConfigError(source, f"{key}.prefix_map", "expected a mapping of path prefixes")
        folder = Path(str(spec["dir"])).expanduser()
        if not folder.is_absolute():
            folder = config.base / folder
        outputs[name] = Output(name, folder, PathProfile(mode, tuple((str(a), str(b)) for a, b in pmap.items())))
    return outputs


def parse_recipes(config, *, writers: set[str] | None = None, scorers: set[str] | None = None) -> list[Recipe]:
    """Validate ``playlists:``; errors name the dotted key, e.g. ``playlists[1].kind``."""
    source = config.source
    outputs = parse_outputs(config)
    recipes: list[Recipe] = []
    names: set[str] = set()
    for i, raw in enumerate(config.get("playlists") or []):
        key = f"playlists[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(source, key, f"expected a recipe mapping, got {raw!r}")
        _unknown_keys(source, key, raw, _RECIPE_KEYS)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(source, f"{key}.name", "every playlist needs a name")
        if safe_filename(name) != name.strip():
            raise ConfigError(source, f"{key}.name", f"{name!r} cannot be a file name (no /, \\, NUL or leading dot)")
        if name in names:
            raise ConfigError(source, f"{key}.name", f"two playlists are named {name!r}")
        names.add(name)
        kind = raw.get("kind", "user")
        if kind not in KINDS:
            raise ConfigError(source, f"{key}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        r = Recipe(name=name.strip(), kind=kind, description=str(raw.get("description", "")))
        r.user = str(raw.get("user", "default"))
        seeds = raw.get("seeds", [])
        if not isinstance(seeds, list) or not all(isinstance(s, str | int) for s in seeds):
            raise ConfigError(source, f"{key}.seeds", "expected a list of track paths")
        r.seeds = [str(s) for s in seeds]
        if kind == "similar" and not r.seeds:
            raise ConfigError(source, f"{key}.seeds", "a 'similar' playlist needs seed tracks")
        r.start, r.end = raw.get("from"), raw.get("to")
        if kind == "path" and not (r.start and r.end):
            raise ConfigError(source, f"{key}.from", "a 'path' playlist needs 'from' and 'to' tracks")
        size = raw.get("size", 50)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 10000:
            raise ConfigError(source, f"{key}.size", f"expected a whole number from 1 to 10000, got {size!r}")
        r.size = size
        if raw.get("duration_min") is not None:
            if not isinstance(raw["duration_min"], int | float) or raw["duration_min"] <= 0:
                raise ConfigError(source, f"{key}.duration_min", "expected minutes, a positive number")
            r.duration_min = float(raw["duration_min"])
        filters = raw.get("filters") or {}
        if not isinstance(filters, dict):
            raise ConfigError(source, f"{key}.filters", "expected a mapping")
        _unknown_keys(source, f"{key}.filters", filters, _FILTER_KEYS)
        r.filters = filters
        strategies = raw.get("strategies") or (
            {"similar": 1.0, "diversity": 0.5} if kind in ("similar", "radio") else dict(DEFAULT_STRATEGIES))
        if not isinstance(strategies, dict) or not all(isinstance(w, int | float) for w in strategies.values()):
            raise ConfigError(source, f"{key}.strategies", "expected {strategy name: weight}")
        for s in strategies:
            if scorers is not None and s not in scorers:
                from recengine.config import unknown_key_error as _unknown

                raise _unknown(source, f"{key}.strategies.{s}", s, sorted(scorers))
        r.strategies = {str(k): float(v) for k, v in strategies.items()}
        r.diversity = dict(raw.get("diversity") or {})
        ws = raw.get("writers", ["m3u8"])
        ws = [ws] if isinstance(ws, str) else ws
        for w in ws:
            if writers is not None and w not in writers:
                raise ConfigError(source, f"{key}.writers", f"unknown writer {w!r} (available: {', '.join(sorted(writers))})")
        r.writers = list(ws)
        r.output = str(raw.get("output", "default"))
        if r.output not in outputs:
            raise ConfigError(source, f"{key}.output", f"no output named {r.output!r} under outputs:")
        r.backend = raw.get("backend")
        refresh = raw.get("refresh") or {}
        if not isinstance(refresh, dict):
            raise ConfigError(source, f"{key}.refresh", "expected a mapping (on, every_s, min_interval_s)")
        _unknown_keys(source, f"{key}.refresh", refresh, _REFRESH_KEYS)
        on = refresh.get("on", list(REFRESH_ON))
        on = [on] if isinstance(on, str) else on
        bad = [o for o in on if o not in REFRESH_ON]
        if bad:
            raise ConfigError(source, f"{key}.refresh.on", f"expected library and/or history, got {bad[0]!r}")
        r.refresh_on = tuple(on)
        r.every_s = refresh.get("every_s")
        r.min_interval_s = float(refresh.get("min_interval_s", 60.0))
        recipes.append(r)
    return recipes


def safe_filename(name: str) -> str:
    cleaned = re.sub(r"[/\\\x00-\x1f]", "", name).strip()
    return cleaned.lstrip(".")


def make_filters(spec: dict[str, Any], now: float) -> Filters:
    """Recipe filters -> :class:`Filters`; ``only_in_months: {christmas: [12]}`` leaves out tracks
    whose genre, title or album mentions the word outside those months."""
    month = dt.datetime.fromtimestamp(now).month
    genres = set(spec.get("exclude_genres") or [])
    for word, months in (spec.get("only_in_months") or {}).items():
        if month not in months:
            genres.add(str(word))
    return Filters(exclude_artists=set(spec.get("exclude_artists") or []),
                   exclude_albums=set(spec.get("exclude_albums") or []), exclude_genres=genres,
                   min_duration=spec.get("min_duration"), max_duration=spec.get("max_duration"),
                   tags=dict(spec.get("tags") or {}))


# --- making and writing ----------------------------------------------------------------------------


class Playlists:
    """The engine's playlist recipes: render, write, remember what was written."""

    def __init__(self, engine):
        self.engine = engine
        self.recipes = parse_recipes(engine.config, writers=set(engine.writers.names()),
                                     scorers=set(engine.scorers.names()))
        self.outputs = parse_outputs(engine.config)
        self.last_refresh: dict[str, float] = {}

    @property
    def marker(self) -> str:
        catalog = self.engine.catalog
        marker = catalog.get_meta("playlist_marker")
        if marker is None:
            marker = str(uuid.uuid4())
            catalog.set_meta("playlist_marker", marker)
        return marker

    def get(self, name: str) -> Recipe:
        for r in self.recipes:
            if r.name == name:
                return r
        raise LookupError(f"no playlist named {name!r} (known: {', '.join(r.name for r in self.recipes) or 'none'})")

    def tracks_for(self, recipe: Recipe, now: float | None = None) -> list[Recommendation]:
        now = time.time() if now is None else now
        filters = make_filters(recipe.filters, now)
        engine = self.engine
        want = recipe.size if recipe.duration_min is None else 10000
        if recipe.kind == "path":
            recs = engine.path(recipe.start, recipe.end, recipe.size, filters)
        else:
            seeds = [engine.resolve(s).track_id for s in recipe.seeds]
            if recipe.kind == "radio" and not seeds:
                recent = sorted(engine.catalog.events(recipe.user, since=now - 7 * 86400),
                                key=lambda e: -e.at)
                seeds = list(dict.fromkeys(e.track_id for e in recent if e.kind in ("play", "like")))[:5]
            req = Request(user=recipe.user, n=min(want, 500), seeds=seeds, strategies=recipe.strategies,
                          filters=filters, diversity=recipe.diversity, now=now)
            recs = engine.recommender.recommend(req)
        if recipe.duration_min is not None:
            budget, out = recipe.duration_min * 60, []
            for r in recs:
                if budget <= 0:
                    break
                out.append(r)
                budget -= r.track.duration or 0
            recs = out
        return recs

    def target_path(self, recipe: Recipe, writer) -> Path:
        out = self.outputs[recipe.output]
        return out.dir / f"{safe_filename(recipe.name)}{writer.suffix}"

    def write(self, recipe: Recipe, recs: list[Recommendation]) -> list[Path]:
        """Write the recipe's files; returns the paths whose content changed."""
        out = self.outputs[recipe.output]
        out.dir.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(out.dir, min_age_s=3600)  # never a live writer's temp
        entries = [PlaylistEntry(r.track.path, r.track.duration, r.track.artist, r.track.title, r.track.album, r.why)
                   for r in recs]
        playlist = Playlist(recipe.name, entries, self.marker, recipe.description)
        changed = []
        for wname in recipe.writers:
            writer = self.engine.writers[wname]
            path = self.target_path(recipe, writer)
            if path.exists() and writer.marker_of(path) != self.marker:
                log.warning("%s was not written by recengine; leaving it alone and writing %s instead",
                            path, path.with_name(f"{path.stem} (recengine){path.suffix}"))
                path = path.with_name(f"{path.stem} (recengine){path.suffix}")
                if path.exists() and writer.marker_of(path) != self.marker:
                    log.error("%s exists and is not ours either; playlist %s not written", path, recipe.name)
                    continue
            data = writer.render(playlist, out.profile, path)
            if atomic_write(path, data, fault="mid_playlist_write"):
                changed.append(path)
                self.engine.catalog.record_playlist_written(
                    recipe.name, str(path), self.marker, hashlib.sha256(data).hexdigest(), time.time())
                self.engine.emit("playlist_written", name=recipe.name, path=path)
        return changed

    def refresh(self, names: list[str] | None = None, *, reason: str | None = None, force: bool = True,
                now: float | None = None) -> dict[str, list[Path]]:
        """Re-make playlists: the named ones, or those whose refresh policy covers ``reason``
        (``library``/``history``/``timer``), respecting ``min_interval_s`` unless ``force``."""
        now = time.time() if now is None else now
        done: dict[str, list[Path]] = {}
        for recipe in self.recipes:
            if names is not None and recipe.name not in names:
                continue
            if reason in REFRESH_ON and reason not in recipe.refresh_on:
                continue
            if reason == "timer" and not (recipe.every_s and now - self.last_refresh.get(recipe.name, 0) >= recipe.every_s):
                continue
            if not force and now - self.last_refresh.get(recipe.name, 0) < recipe.min_interval_s:
                continue
            try:
                recs = self.tracks_for(recipe, now)
            except LookupError as exc:
                log.error("playlist %s: %s", recipe.name, exc)
                continue
            done[recipe.name] = self.write(recipe, recs)
            self.last_refresh[recipe.name] = now
        return done
