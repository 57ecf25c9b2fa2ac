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
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from recengine import __version__
from recengine.analysis.audio import DecoderMissing, preflight
from recengine.catalog.db import CatalogError
from recengine.config import ConfigError

log = logging.getLogger("recengine")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called (exit 2)."""


class CommandFailed(Exception):
    """The command could not do its job (exit 1)."""


def _open_engine(args):
    from recengine.engine import Engine

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


def cmd_history(args) -> int:
    with _open_engine(args) as engine:
        if args.action == "import":
            return _import_history(engine, args)
        if not args.tracks:
            raise UsageError(f"history {args.action}: name at least one track")
        for ref in args.tracks:
            try:
                event = engine.record(args.user, ref, args.action, listened_s=args.listened, source="cli")
            except LookupError as exc:
                raise UsageError(str(exc)) from None
            print(f"{event.kind} recorded for {args.user}: {engine.catalog.track(event.track_id).path}")
    return EXIT_OK


def _import_history(engine, args) -> int:
    from recengine.importers.formats import HistoryImportError, load_history, match_listens, match_rate
    from recengine.models import HistoryEvent

    tracks = engine.catalog.tracks(present=False)
    total_matched = 0
    for ref in args.tracks:
        try:
            result = load_history(Path(ref), args.format)
        except (HistoryImportError, OSError) as exc:
            raise CommandFailed(str(exc)) from None
        matches, unmatched = match_listens(result.listens, tracks)
        events = [HistoryEvent(args.user, tid, "skip" if listen.skipped else "play", at=listen.at,
                               listened_s=listen.listened_s, source=f"import:{result.format}")
                  for listen, tid in matches]
        engine.record_events(events)
        total_matched += len(events)
        print(f"{ref}: {result.format}: {len(result.listens)} listens, {len(matches)} matched "
              f"({match_rate(matches, unmatched):.0%}), {len(unmatched)} not in the library, "
              f"{len(result.problems)} unreadable records skipped")
    return EXIT_OK


def cmd_recommend(args) -> int:
    with _open_engine(args) as engine:
        strategies = None
        if args.strategy:
            strategies = {}
            for item in args.strategy:
                name, _, weight = item.partition("=")
                strategies[name] = float(weight or 1.0)
        kwargs = {"filters": _filters(args)}
        if strategies:
            kwargs["strategies"] = strategies
        try:
            recs = engine.recommend(args.user, args.n, seeds=args.seed or [], **kwargs)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        _print_recommendations(recs, args.json, why=True)
    return EXIT_OK


def cmd_playlists(args) -> int:
    with _open_engine(args) as engine:
        pl = engine.playlists
        if args.action == "list":
            for r in pl.recipes:
                paths = [str(pl.target_path(r, engine.writers[w])) for w in r.writers]
                print(f"{r.name}  [{r.kind}] size {r.size}, user {r.user} -> {', '.join(paths)}")
            if not pl.recipes:
                print(f"no playlists in {engine.config.source} (see playlists: in the README)", file=sys.stderr)
            return EXIT_OK
        try:
            names = args.names or None
            for n in names or []:
                pl.get(n)
            done = pl.refresh(names)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        for name, changed in done.items():
            print(f"{name}: " + (", ".join(str(p) for p in changed) if changed else "unchanged"))
    return EXIT_OK


def cmd_daemon(args) -> int:
    from recengine.service.daemon import AlreadyRunning, Daemon

    with _open_engine(args) as engine:
        try:
            return Daemon(engine).run()
        except AlreadyRunning as exc:
            raise UsageError(str(exc)) from None


def cmd_status(args) -> int:
    from recengine.service.daemon import running_pid

    with _open_engine(args) as engine:
        data_dir = engine.config.data_dir
        pid = running_pid(data_dir)
        status_file = data_dir / "status.json"
        status = json.loads(status_file.read_text()) if status_file.exists() else None
        counts = engine.catalog.counts()
        if args.json:
            print(json.dumps({"running": pid is not None, "pid": pid, "daemon": status, "catalog": counts}, indent=2))
            return EXIT_OK
        print(f"daemon: running (pid {pid})" if pid else "daemon: not running")
        print(f"catalog: {counts['ok']} tracks analysed, {counts['pending']} pending, {counts['failures']} failed, "
              f"{counts['missing']} missing")
        if status and pid:
            age = time.time() - status["updated"]
            print(f"state: {status['state']} ({age:.0f} s ago), queue {status['queue']}, "
                  f"{status['tracks_per_s']} tracks/s")
            if status.get("last_reconcile"):
                print(f"last reconcile: {time.time() - status['last_reconcile']:.0f} s ago")
            for root, info in status["watcher"]["roots"].items():
                print(f"watching {root}: {info.get('mode')}" + (f" ({info['why']})" if info.get("why") else ""))
            idx = status["index"]
            built = f", built {time.time() - idx['built_at']:.0f} s ago" if idx.get("built_at") else ""
            print(f"index: generation {idx['generation']}, {idx['size']} tracks, {idx['fresh']} fresh{built}")
    return EXIT_OK


def cmd_play(args) -> int:
    import threading

    from recengine.playback.backends import BackendUnavailable
    from recengine.playback.player import keep_playing, play_playlist

    with _open_engine(args) as engine:
        try:
            backend, tracks = play_playlist(engine, args.playlist, backend=args.backend,
                                            mode="append" if args.append else "replace")
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        except BackendUnavailable as exc:
            raise CommandFailed(str(exc)) from None
        print(f"playing {len(tracks)} tracks of {args.playlist} through {backend.name}", file=sys.stderr)
        stop = threading.Event()
        if args.watch or hasattr(backend, "wait"):
            try:
                keep_playing(engine, backend, stop, user=args.user, topup_below=args.topup_below,
                             recipe=args.playlist)
            except KeyboardInterrupt:
                stop.set()
        close = getattr(backend, "close", None)
        if close is not None:
            close()
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
    from recengine.config import config_path
    from recengine.plugin.boot import load_settings

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
    from recengine.config import config_path
    from recengine.plugin.boot import load_settings

    path = config_path(args.config)
    config, plugin_set = load_settings(path, report_failures=False)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.action == "show":
        print(f"# effective configuration from {config.source}")
        print(yaml.safe_dump(config.nested(), sort_keys=True, allow_unicode=True), end="")
        return EXIT_OK
    problems = []
    from recengine.playlists.recipes import parse_recipes
    from recengine.plugin.registry import collect

    parse_recipes(config, writers=set(collect(plugin_set.pm, "playlist_writers", config).names()),
                  scorers=set(collect(plugin_set.pm, "scorers", config).names()))
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
    from recengine.demo import make_demo_library
    from recengine.engine import Engine

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
    seen_albums = set()
    for track in engine.catalog.tracks(status="ok"):
        if track.album in seen_albums:
            continue
        seen_albums.add(track.album)
        print(f"\ntracks like {track.relpath}:")
        for rec in engine.similar([track.track_id], 3):
            print(f"  {rec.distance:6.3f}  {rec.track.relpath}")


def _filters(args):
    from recengine.recommend.filters import Filters

    return Filters(exclude_artists=set(args.exclude_artist or ()), exclude_albums=set(args.exclude_album or ()),
                   exclude_genres=set(args.exclude_genre or ()), min_duration=args.min_duration,
                   max_duration=args.max_duration,
                   tags=dict(t.split("=", 1) for t in args.tag or ()))


def _print_recommendations(recs, as_json: bool, why: bool = False) -> None:
    if as_json:
        print(json.dumps([{"path": str(r.track.path), "track_id": r.track.track_id, "artist": r.track.artist,
                           "title": r.track.title, "album": r.track.album, "duration": r.track.duration,
                           "distance": None if r.distance is None else round(r.distance, 6),
                           "score": round(r.score, 6), "why": r.why} for r in recs], indent=2, ensure_ascii=False))
        return
    for r in recs:
        dist = "" if r.distance is None else f"{r.distance:6.3f}  "
        print(f"{dist}{r.track.path}" + (f"  ({r.track.display})" if r.track.artist else "")
              + (f"\n        why: {r.why}" if why and r.why else ""))


def cmd_similar(args) -> int:
    with _open_engine(args) as engine:
        try:
            recs = engine.similar(args.tracks, args.n, _filters(args))
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        _print_recommendations(recs, args.json)
    return EXIT_OK


def cmd_path(args) -> int:
    with _open_engine(args) as engine:
        try:
            recs = engine.path(args.start, args.end, args.n, _filters(args))
        except (LookupError, KeyError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        _print_recommendations(recs, args.json)
    return EXIT_OK


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

    def add_filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="JSON output: path, artist, title, distance, score")
        p.add_argument("--exclude-artist", action="append", metavar="NAME", help="leave out this artist (repeatable)")
        p.add_argument("--exclude-album", action="append", metavar="NAME", help="leave out this album (repeatable)")
        p.add_argument("--exclude-genre", action="append", metavar="TEXT", help="leave out genres containing TEXT")
        p.add_argument("--min-duration", type=float, metavar="S", help="shortest track, seconds")
        p.add_argument("--max-duration", type=float, metavar="S", help="longest track, seconds")
        p.add_argument("--tag", action="append", metavar="FIELD=TEXT", help="only tracks whose tag contains TEXT")

    p = command("similar", cmd_similar, "tracks that sound like the given tracks (paths or track ids)")
    p.add_argument("tracks", nargs="+", metavar="TRACK")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    add_filters(p)

    p = command("path", cmd_path, "a playlist walking from one track to another")
    p.add_argument("start", metavar="A")
    p.add_argument("end", metavar="B")
    p.add_argument("-n", type=int, default=12, help="length including A and B (default 12)")
    add_filters(p)

    p = command("history", cmd_history, "record plays, skips, likes and dislikes, or import a listening history")
    p.add_argument("action", choices=("play", "skip", "like", "dislike", "unlike", "import"))
    p.add_argument("tracks", nargs="*", metavar="TRACK", help="track paths or ids (import: history files)")
    p.add_argument("--user", "-u", default="default", help="listener (default: default)")
    p.add_argument("--listened", type=float, metavar="S", help="seconds listened (play/skip)")
    p.add_argument("--format", choices=("listenbrainz", "lastfm", "scrobbler"), help="import: file format (default: detect)")

    p = command("recommend", cmd_recommend, "personal recommendations from history, likes and dislikes")
    p.add_argument("--user", "-u", default="default", help="listener (default: default)")
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    p.add_argument("--seed", action="append", metavar="TRACK", help="steer toward this track (repeatable)")
    p.add_argument("--strategy", action="append", metavar="NAME=WEIGHT",
                   help="scoring strategies and weights (default taste=1, diversity=0.5, discovery=0.1)")
    add_filters(p)

    p = command("playlists", cmd_playlists, "list the playlist recipes or refresh their files")
    p.add_argument("action", choices=("list", "refresh"))
    p.add_argument("names", nargs="*", metavar="NAME", help="refresh only these")

    command("daemon", cmd_daemon, "watch the library and keep the index and playlists fresh (foreground)")
    p = command("status", cmd_status, "whether the daemon runs and what it is doing")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = command("play", cmd_play, "play a playlist recipe through a playback backend; plays and skips are recorded")
    p.add_argument("playlist", metavar="PLAYLIST", help="a recipe name from config.yaml")
    p.add_argument("--backend", "-b", help="mpd, local, command, null or a plugin's (default: backend:)")
    p.add_argument("--append", action="store_true", help="add to the player's queue instead of replacing it")
    p.add_argument("--watch", action="store_true",
                   help="stay: record plays and skips and keep the queue topped up (Ctrl-C to stop)")
    p.add_argument("--topup-below", type=int, metavar="N", help="top up when fewer than N tracks remain")
    p.add_argument("--user", "-u", default="default", help="listener for top-up recommendations")

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
