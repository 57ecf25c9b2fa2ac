"""Playlist recipes and output folders, parsed once from the validated config.

A recipe names what to make (``kind``: ``user``, ``similar``, ``radio``, ``path``), how big, for
whom, with which filters and strategies, and where to write it (its playlist writers, listed under
the recipe key ``writers``, into an ``output`` folder with the path style its media server
expects). :meth:`Recipes.from_config` checks every recipe; a mistake is a
:class:`~recengine.config.ConfigError` naming the dotted key, e.g. ``playlists[1].kind``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from recengine.config import Config, ConfigError, unknown_key_error
from recengine.models import PathProfile
from recengine.recommend.filters import Filters
from recengine.recommend.ranking import DEFAULT_STRATEGIES

KINDS = ("user", "similar", "radio", "path")
REFRESH_ON = ("library", "history")
#: Strategies of ``similar`` and ``radio`` recipes that name none.
SEEDED_STRATEGIES = {"similar": 1.0, "diversity": 0.5}
_RECIPE_KEYS = {"name", "kind", "user", "seeds", "from", "to", "size", "duration_min", "filters", "strategies",
                "diversity", "writers", "output", "backend", "refresh", "description"}
_FILTER_KEYS = {"exclude_artists", "exclude_albums", "exclude_genres", "min_duration", "max_duration", "tags",
                "only_in_months"}
_REFRESH_KEYS = {"on", "every_s", "min_interval_s"}
_OUTPUT_KEYS = {"dir", "paths", "prefix_map"}


@dataclass(frozen=True)
class Output:
    """A folder for playlist files and the path style its media server reads."""

    name: str
    dir: Path
    profile: PathProfile


@dataclass
class Recipe:
    """One validated entry of ``playlists:``; ``key`` is its dotted config key (``playlists[0]``)."""

    name: str
    key: str = ""
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


@dataclass(frozen=True)
class Recipes:
    """The recipes of one config, in order, the output folders they write to, and the config
    file they come from (``source``, for messages)."""

    recipes: tuple[Recipe, ...]
    outputs: dict[str, Output]
    source: str = "<defaults>"

    @classmethod
    def from_config(cls, config: Config, *, playlist_writers: set[str] | None = None,
                    strategies: set[str] | None = None) -> Recipes:
        """Validate ``outputs:`` and ``playlists:``; names of unknown playlist writers and
        strategies are mistakes when the known ones are given."""
        outputs = parse_outputs(config)
        recipes: list[Recipe] = []
        files: dict[str, str] = {}
        for i, raw in enumerate(config["playlists"]):
            recipe = _parse_recipe(config.source, f"playlists[{i}]", raw, outputs, playlist_writers, strategies)
            other = files.get(recipe.name)
            if other is not None:
                raise ConfigError(config.source, f"{recipe.key}.name",
                                  f"{raw['name']!r} would write the same files as {other!r}: two playlists "
                                  "are named alike")
            files[recipe.name] = raw["name"]
            recipes.append(recipe)
        return cls(tuple(recipes), outputs, config.source)

    def __iter__(self) -> Iterator[Recipe]:
        return iter(self.recipes)

    def __len__(self) -> int:
        return len(self.recipes)

    def get(self, name: str) -> Recipe:
        for r in self.recipes:
            if r.name == name:
                return r
        raise LookupError(f"no playlist named {name!r} (known: {', '.join(r.name for r in self.recipes) or 'none'})")


def _check_keys(source: str, key: str, given: dict, allowed: set[str]) -> None:
    for k in given:
        if k not in allowed:
            raise unknown_key_error(source, f"{key}.{k}", str(k), sorted(allowed))


def parse_outputs(config: Config) -> dict[str, Output]:
    """``outputs:`` plus the ``default`` output (absolute paths under ``data_dir/playlists``)."""
    source = config.source
    outputs = {"default": Output("default", config.data_dir / "playlists", PathProfile("absolute"))}
    for name, spec in config["outputs"].items():
        key = f"outputs.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(source, key, f"expected a mapping with dir and paths, got {spec!r}")
        _check_keys(source, key, spec, _OUTPUT_KEYS)
        if not spec.get("dir"):
            raise ConfigError(source, f"{key}.dir", "a folder for the playlist files is required")
        mode = spec.get("paths", PathProfile.mode)
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


_DEFAULTS = {f.name: f for f in fields(Recipe)}


def _default(name: str) -> Any:
    f = _DEFAULTS[name]
    return f.default_factory() if callable(f.default_factory) else f.default


def _parse_recipe(source: str, key: str, raw: object, outputs: dict[str, Output],
                  playlist_writers: set[str] | None, strategies: set[str] | None) -> Recipe:
    if not isinstance(raw, dict):
        raise ConfigError(source, key, f"expected a recipe mapping, got {raw!r}")
    _check_keys(source, key, raw, _RECIPE_KEYS)

    def get(name: str, attr: str | None = None) -> Any:
        return raw.get(name, _default(attr or name))

    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(source, f"{key}.name", "every playlist needs a name")
    if safe_filename(name) != name.strip():
        raise ConfigError(source, f"{key}.name", f"{name!r} cannot be a file name (no /, \\, NUL or leading dot)")
    kind = get("kind")
    if kind not in KINDS:
        raise ConfigError(source, f"{key}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    seeds = get("seeds")
    if not isinstance(seeds, list) or not all(isinstance(s, str | int) for s in seeds):
        raise ConfigError(source, f"{key}.seeds", "expected a list of track paths")
    if kind == "similar" and not seeds:
        raise ConfigError(source, f"{key}.seeds", "a 'similar' playlist needs seed tracks")
    start, end = raw.get("from"), raw.get("to")
    if kind == "path" and not (start and end):
        raise ConfigError(source, f"{key}.from", "a 'path' playlist needs 'from' and 'to' tracks")
    size = get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 10000:
        raise ConfigError(source, f"{key}.size", f"expected a whole number from 1 to 10000, got {size!r}")
    duration_min = raw.get("duration_min")
    if duration_min is not None and (not isinstance(duration_min, int | float) or duration_min <= 0):
        raise ConfigError(source, f"{key}.duration_min", "expected minutes, a positive number")
    filters = raw.get("filters") or {}
    if not isinstance(filters, dict):
        raise ConfigError(source, f"{key}.filters", "expected a mapping")
    _check_keys(source, f"{key}.filters", filters, _FILTER_KEYS)
    weights = raw.get("strategies") or (
        dict(SEEDED_STRATEGIES) if kind in ("similar", "radio") else dict(DEFAULT_STRATEGIES))
    if not isinstance(weights, dict) or not all(isinstance(w, int | float) for w in weights.values()):
        raise ConfigError(source, f"{key}.strategies", "expected {strategy name: weight}")
    for s in weights:
        if strategies is not None and s not in strategies:
            raise unknown_key_error(source, f"{key}.strategies.{s}", s, sorted(strategies))
    writers = get("writers")
    writers = [writers] if isinstance(writers, str) else writers
    for w in writers:
        if playlist_writers is not None and w not in playlist_writers:
            raise ConfigError(source, f"{key}.writers",
                              f"unknown writer {w!r} (available: {', '.join(sorted(playlist_writers))})")
    output = str(get("output"))
    if output not in outputs:
        raise ConfigError(source, f"{key}.output", f"no output named {output!r} under outputs:")
    refresh = raw.get("refresh") or {}
    if not isinstance(refresh, dict):
        raise ConfigError(source, f"{key}.refresh", "expected a mapping (on, every_s, min_interval_s)")
    _check_keys(source, f"{key}.refresh", refresh, _REFRESH_KEYS)
    on = refresh.get("on", list(_default("refresh_on")))
    on = [on] if isinstance(on, str) else on
    bad = [o for o in on if o not in REFRESH_ON]
    if bad:
        raise ConfigError(source, f"{key}.refresh.on", f"expected library and/or history, got {bad[0]!r}")
    return Recipe(
        name=name.strip(), key=key, kind=kind, user=str(get("user")), seeds=[str(s) for s in seeds],
        start=start, end=end, size=size, duration_min=None if duration_min is None else float(duration_min),
        filters=filters, strategies={str(k): float(v) for k, v in weights.items()},
        diversity=dict(raw.get("diversity") or {}), writers=list(writers), output=output,
        backend=raw.get("backend"), refresh_on=tuple(on), every_s=refresh.get("every_s", _default("every_s")),
        min_interval_s=float(refresh.get("min_interval_s", _default("min_interval_s"))),
        description=str(get("description")))


def safe_filename(name: str) -> str:
    """``name`` without path separators, control characters, outer spaces or leading dots."""
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
