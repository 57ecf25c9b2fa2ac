"""The ``recengine`` command line.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error. Errors are one line; ``--debug``
adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from . import __version__
from .audio import DecoderMissing, preflight
from .catalog import CatalogError
from .config import ConfigError

log = logging.getLogger("recengine")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called (exit 2)."""


class CommandFailed(Exception):
    """The command could not do its job (exit 1)."""


def _open_engine(args):
    from .engine import Engine

    return Engine.open(args.config)


# --- commands ------------------------------------------------------------------------------------


def cmd_scan(args) -> int:
    engine = _open_engine(args)
    with engine:
        preflight()
        folders = engine.config.library_folders
        known_roots = {p for _, p, _ in engine.catalog.roots()}
        missing = [f for f in folders if not f.is_dir()]
        if folders and len(missing) == len(folders) and not (known_roots & {str(f) for f in folders}):
            names = ", ".join(str(f) for f in missing)
            if args.demo_if_missing:
                print(f"library folder {names} does not exist (set library.folders in {engine.config.source}); "
                      "showing the demo instead", file=sys.stderr)
                args.dir, args.tracks = None, 6
                return cmd_demo(args)
            raise CommandFailed(
                f"library folder {names} does not exist: set library.folders in {engine.config.source}, "
                "or run `recengine demo` to try recengine on a generated library")
        report = engine.scan(confirm_mass_delete=args.confirm_mass_delete, retry_failed=args.retry_failed,
                             workers=args.workers, featurise=not args.no_featurise)
        for root, reason in report.unavailable:
            print(f"warning: {root} is unavailable ({reason}); nothing under it was changed", file=sys.stderr)
        for root, gone, total in report.mass_delete_blocked:
            print(f"warning: {root}: {gone} of {total} tracks are gone; run again with --confirm-mass-delete "
                  "to remove them", file=sys.stderr)
        print(report.summary())
    return EXIT_OK


def cmd_failures(args) -> int:
    with _open_engine(args) as engine:
        rows = engine.catalog.failures()
        if args.json:
            print(json.dumps([{"path": f.path, "reason": f.reason, "message": f.message, "at": f.at} for f in rows],
                             indent=2))
        else:
            for f in rows:
                print(f"{f.reason:16} {f.path}: {f.message}")
            print(f"{len(rows)} files failed", file=sys.stderr)
    return EXIT_OK


def cmd_plugins(args) -> int:
    from .config import config_path
    from .engine import load_settings

    path = config_path(args.config)
    _, plugin_set = load_settings(path, report_failures=False)
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


def cmd_config(args) -> int:
    from .config import config_path
    from .engine import load_settings

    path = config_path(args.config)
    config, plugin_set = load_settings(path, report_failures=False)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.action == "show":
        print(f"# effective configuration from {config.source}")
        print(yaml.safe_dump(config.nested(), sort_keys=True, allow_unicode=True), end="")
        return EXIT_OK
    problems = []
    for i, folder in enumerate(config["library.folders"]):
        if not Path(folder).is_dir():
            problems.append(f"{config.source}: library.folders[{i}]: {folder!r} does not exist")
    for info in plugin_set.failures:
        problems.append(f"plugin {info.name} ({info.location}): {info.error}")
    try:
        preflight()
    except DecoderMissing as exc:
        problems.append(str(exc))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"{config.source}: ok")
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import make_demo_library
    from .engine import Engine

    preflight()
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "recengine-demo"
    library = base / "library"
    print(f"generating a demo library in {library} ...", file=sys.stderr)
    make_demo_library(library, per_style=args.tracks)
    raw = {"library": {"folders": [str(library)]}, "data_dir": str(base / "data"), "plugin_dirs": []}
    with Engine.open(None, raw=raw) as engine:
        report = engine.scan()
        print(report.summary())
        _print_demo_neighbours(engine)
    print("\nNext: point library.folders in config.yaml at your music and run `recengine scan`.")
    return EXIT_OK


def _print_demo_neighbours(engine) -> None:
    from .similarity import similar_tracks

    tracks = engine.catalog.tracks(status="ok")
    seen_albums = set()
    for track in tracks:
        if track.album in seen_albums:
            continue
        seen_albums.add(track.album)
        print(f"\ntracks like {track.relpath}:")
        for rec in similar_tracks(engine, [track.track_id], 3):
            print(f"  {rec.distance:6.3f}  {rec.track.relpath}")


# --- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recengine", description="Music recommendations beside your media server.")
    parser.add_argument("--version", action="version", version=f"recengine {__version__}")
    parser.add_argument("--config", "-c", help="config file (default: $RECENGINE_CONFIG, else ./config.yaml)")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks on errors")
    parser.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("scan", cmd_scan, "reconcile the library folders with the catalog and analyse new or changed files")
    p.add_argument("--retry-failed", action="store_true", help="retry files in the failure ledger")
    p.add_argument("--confirm-mass-delete", action="store_true",
                   help="allow removing more than scan.mass_delete_ratio of a folder's tracks")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: scan.workers)")
    p.add_argument("--no-featurise", action="store_true", help="only reconcile; analyse nothing")
    p.add_argument("--demo-if-missing", action="store_true",
                   help="when no library folder exists yet, run `recengine demo` instead of failing")

    p = command("failures", cmd_failures, "list files that could not be analysed, with the reason")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = command("plugins", cmd_plugins, "list plugins with their source, version, hooks and load errors")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = command("config", cmd_config, "check the config file or show the effective configuration")
    p.add_argument("action", choices=("check", "show"))

    p = command("demo", cmd_demo, "generate a small synthetic library, analyse it and show similar tracks")
    p.add_argument("--dir", help="where to put the demo library and data (default: a temp folder)")
    p.add_argument("--tracks", type=int, default=6, help="tracks per style (default 6)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if os.environ.get("RECENGINE_DEBUG"):
        args.debug = True
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted: everything analysed so far is kept; run the command again to continue",
              file=sys.stderr)
        return 130
    except (ConfigError, UsageError) as exc:
        return _fail(args, exc, EXIT_USAGE)
    except (DecoderMissing, CatalogError, CommandFailed) as exc:
        return _fail(args, exc, EXIT_FAILURE)
    except Exception as exc:
        return _fail(args, exc, EXIT_FAILURE, unexpected=True)


def _fail(args, exc: BaseException, code: int, unexpected: bool = False) -> int:
    if args.debug:
        log.exception("error")
    message = f"{type(exc).__name__}: {exc}" if unexpected else str(exc)
    print(f"recengine: error: {message}" + ("" if args.debug else "  (--debug for details)" if unexpected else ""),
          file=sys.stderr)
    return code
