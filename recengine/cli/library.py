"""Library commands: ``scan``, ``demo``, ``status``, ``failures``, ``daemon``."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from recengine.analysis.decode import preflight
from recengine.cli.errors import EXIT_OK, CommandFailed, UsageError
from recengine.fileio import PidLock


def cmd_scan(engine, args) -> int:
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
            return run_demo(args)
        raise CommandFailed(
            f"library folder {names} does not exist: set library.folders in {engine.config.source}, "
            "or run `recengine demo` to try recengine on a generated library")
    executor = args.executor or ("dask" if args.scheduler else None)
    report = engine.scan(confirm_mass_delete=args.confirm_mass_delete, retry_failed=args.retry_failed,
                         workers=args.workers, featurise=not args.no_featurise, executor=executor,
                         scheduler=args.scheduler)
    for root, reason in report.unavailable:
        print(f"warning: {root} is unavailable ({reason}); nothing under it was changed", file=sys.stderr)
    for root, gone, total in report.mass_delete_blocked:
        print(f"warning: {root}: {gone} of {total} tracks are gone; run again with --confirm-mass-delete "
              "to remove them", file=sys.stderr)
    print(report.summary())
    return EXIT_OK


def cmd_daemon(engine, args) -> int:
    from recengine.service import AlreadyRunning, Daemon

    try:
        return Daemon(engine).run()
    except AlreadyRunning as exc:
        raise UsageError(str(exc)) from exc


def cmd_status(engine, args) -> int:
    from recengine.service import running_pid

    data_dir = engine.config.data_dir
    pid = running_pid(data_dir)
    status_file = data_dir / "status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else None
    counts = engine.catalog.counts()
    counts["pending_listens"] = engine.catalog.pending_listen_count()
    passes = engine.passes()
    if args.json:
        print(json.dumps({"running": pid is not None, "pid": pid, "daemon": status, "catalog": counts,
                          "passes": passes}, indent=2))
        return EXIT_OK
    print(f"daemon: running (pid {pid})" if pid else "daemon: not running")
    listed = " (`recengine failures` lists them)" if counts["failures"] or counts["skipped"] else ""
    print(f"catalog: {counts['ok']} tracks analysed, {counts['pending']} pending, {counts['failures']} failed, "
          f"{counts['missing']} missing, {counts['skipped']} skipped{listed}")
    if counts["pending_listens"]:
        print(f"scrobbled listens waiting for their file: {counts['pending_listens']}")
    _print_passes(passes, status if pid else None)
    if status and pid:
        age = time.time() - status["updated"]
        print(f"state: {status['state']} ({age:.0f} s ago), queue {status['queue']}, "
              f"{status['tracks_per_s']} tracks/s")
        _print_daemon_trouble(status, data_dir)
        if status.get("last_reconcile"):
            print(f"last reconcile: {time.time() - status['last_reconcile']:.0f} s ago")
        for root, info in status["watcher"]["roots"].items():
            print(f"watching {root}: {info.get('mode')}" + (f" ({info['why']})" if info.get("why") else ""))
        idx = status["index"]
        built = f", built {time.time() - idx['built_at']:.0f} s ago" if idx.get("built_at") else ""
        print(f"index: generation {idx['generation']}, {idx['size']} tracks, {idx['fresh']} fresh{built}")
        _print_sources(status)
    return EXIT_OK


def _print_passes(passes: dict, status: dict | None) -> None:
    """The two featurising passes, when there are deep extractors: what the fast pass made
    searchable, and how far the deep pass is (and whether the running daemon is at it)."""
    if not passes["deep"]:
        return
    state = ((status or {}).get("passes") or {}).get("deep_state")
    doing = {"running": " (running)", "idle": ""}.get(state, "") if status else " (`recengine scan` or the daemon runs it)"
    deep = "; ".join(f"deep pass ({name}): {d['done']} of {passes['fast']}, {d['pending']} pending"
                     for name, d in passes["deep"].items())
    print(f"analysed {passes['fast']} (fast pass); {deep}{doing if any(d['pending'] for d in passes['deep'].values()) else ''}")


def _print_sources(status: dict) -> None:
    """One line per ``sources:`` entry: when it last synced, and the last error while it fails."""
    if status.get("sources_problem"):
        print(f"sources: not synced: {status['sources_problem']}")
    for name, s in (status.get("sources") or {}).items():
        ok = f"synced {time.time() - s['last_ok']:.0f} s ago" if s.get("last_ok") else "never synced"
        line = f"source {name}: {ok}, every {s['interval_s']:.0f} s"
        if s.get("last_error"):
            line += (f"; failing ({s['failures']} attempts, the last {time.time() - s['last_sync']:.0f} s ago): "
                     f"{s['last_error']}")
        elif s.get("last_report"):
            line += f" ({s['last_report']})"
        print(line)


def _print_daemon_trouble(status: dict, data_dir: Path) -> None:
    """What keeps the daemon from its work: a failure it retries, or another writer it waits for."""
    from recengine.library.scan import WRITER_LOCK

    problem = status.get("problem")
    if problem:
        retry = "" if problem.get("retry_in_s") is None else f", next try in {problem['retry_in_s']:.0f} s"
        print(f"problem: {problem['error']} (failing for {time.time() - problem['since']:.0f} s, "
              f"{problem['attempts']} attempts{retry})")
    if status["state"] == "waiting":
        holder = PidLock(Path(data_dir) / WRITER_LOCK).holder()
        who = f"another recengine (pid {holder})" if holder and holder > 0 else "another recengine"
        print(f"waiting: {who} is updating the catalog (a `recengine scan`); the daemon keeps what it saw "
              "and goes on when that is done")


def cmd_failures(engine, args) -> int:
    """The failure ledger (files that could not be analysed), then the entries left out on purpose
    (FIFOs, symlinks out of the library, unreadable folders ...), each with its reason."""
    rows = engine.catalog.failures()
    skipped = engine.catalog.skipped()
    if args.json:
        print(json.dumps([*({"kind": "failed", "path": f.path, "reason": f.reason, "message": f.message, "at": f.at}
                            for f in rows),
                          *({"kind": "skipped", "path": k.path, "reason": k.reason, "message": k.explanation,
                             "at": k.at} for k in skipped)], indent=2))
    else:
        for f in rows:
            print(f"{f.reason:16} {f.path}: {f.message}")
        for k in skipped:
            print(f"{k.reason:16} {k.path}: skipped: {k.explanation}")
        print(f"{len(rows)} files failed, {len(skipped)} skipped", file=sys.stderr)
    return EXIT_OK


def run_demo(args) -> int:
    from recengine.demo import make_demo_library

    preflight()
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "recengine-demo"
    library = base / "library"
    print(f"generating a demo library in {library} ...", file=sys.stderr)
    make_demo_library(library, per_style=args.tracks)
    raw = {"library": {"folders": [str(library)]}, "data_dir": str(base / "data"), "plugin_dirs": []}
    with args.open_engine(None, raw=raw) as engine:
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
