"""Set-up commands that work without an engine: ``plugins``, ``config check`` and ``config show``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from recengine.analysis.decode import DecoderMissing, preflight
from recengine.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from recengine.config import config_path
from recengine.plugin.boot import load_settings


def cmd_plugins(args) -> int:
    _, plugin_set = load_settings(config_path(args.config), report_failures=False)
    infos = plugin_set.infos
    if args.json:
        print(json.dumps([vars(i) for i in infos], indent=2))
        return EXIT_OK
    for info in infos:
        status = "blocked" if info.blocked else ("FAILED" if info.error else "ok")
        print(f"{info.name}  [{info.source}] {info.version}  {status}")
        if info.location and info.source != "built-in":
            print(f"    from: {info.location}")
        if info.hooks:
            print(f"    hooks: {', '.join(info.hooks)}")
        if info.error:
            print(f"    error: {info.error}")
    return EXIT_FAILURE if plugin_set.failures else EXIT_OK


def cmd_config_check(args) -> int:
    """``config check`` and ``config show``."""
    from recengine.playlists import Recipes
    from recengine.plugin.registry import collect

    config, plugin_set = load_settings(config_path(args.config), report_failures=False)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.action == "show":
        print(f"# effective configuration from {config.source}")
        print(yaml.safe_dump(config.nested(), sort_keys=True, allow_unicode=True), end="")
        return EXIT_OK
    problems = []
    recipes = Recipes.from_config(config, playlist_writers=set(collect(plugin_set.pm, "playlist_writers", config).names()),
                                  strategies=set(collect(plugin_set.pm, "scorers", config).names()))
    for i, folder in enumerate(config["library.folders"]):
        if not Path(folder).is_dir():
            problems.append(f"{config.source}: library.folders[{i}]: {folder!r} does not exist")
    for info in plugin_set.failures:
        problems.append(f"plugin {info.name} ({info.location}): {info.error}")
    try:
        preflight()
    except DecoderMissing as exc:
        problems.append(str(exc))
    problems += _seed_problems(args.engine_on, config, plugin_set, recipes)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"{config.source}: ok")
    return EXIT_OK


def _seed_problems(engine_on, config, plugin_set, recipes) -> list[str]:
    """Recipe tracks (``seeds``, ``from``, ``to``) that are not in the catalog, found as playlists
    find them (``engine.playlists.seed_problems()``, ``engine_on``: the Engine class); the catalog is
    only read. Before the first scan there is nothing to look them up in, which is said, not counted
    as a problem."""
    from recengine.catalog import Catalog, CatalogError
    from recengine.playlists.seeds import references

    if not any(True for recipe in recipes for _ in references(recipe)):
        return []
    path = config.data_dir / "catalog.db"
    if not path.exists():
        print(f"note: playlist seeds are not checked: no catalog yet in {config.data_dir} (run `recengine scan`)",
              file=sys.stderr)
        return []
    try:
        with engine_on(config, plugin_set, catalog=Catalog(path, migrate=False)) as engine:
            return engine.playlists.seed_problems()
    except CatalogError as exc:
        print(f"note: playlist seeds are not checked: {exc}", file=sys.stderr)
        return []
