"""Playlist and playback commands: ``playlists`` and ``play``."""

from __future__ import annotations

import sys
import threading

from recengine.cli.errors import EXIT_FAILURE, EXIT_OK, CommandFailed, UsageError


def cmd_playlists(engine, args) -> int:
    pl = engine.playlists
    if args.action == "list":
        for r in pl.recipes:
            paths = [str(pl.target_path(r, engine.writers[w])) for w in r.writers]
            print(f"{r.name}  [{r.kind}] size {r.size}, user {r.user} -> {', '.join(paths)}")
            try:  # as refresh would make it now: a short list says which rule cut it
                made = pl.make(r, explain=True)
            except LookupError as exc:  # a seed not in the catalog, no index yet
                print(f"    cannot be made now: {exc}")
                continue
            if made.shortfall is not None:
                print(f"    short: {made.shortfall}")
        if not pl.recipes:
            print(f"no playlists in {engine.config.source} (see playlists: in the README)", file=sys.stderr)
        return EXIT_OK
    try:
        names = args.names or None
        for n in names or []:
            pl.get(n)
    except LookupError as exc:
        raise UsageError(str(exc)) from exc
    report = pl.refresh(names)
    for name, changed in report.written.items():
        short = f" ({report.short[name]})" if name in report.short else ""
        print(f"{name}: " + (", ".join(str(p) for p in changed) if changed else "unchanged") + short)
    for name, problem in report.failed.items():
        print(f"{name}: not written: {problem}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILURE


def cmd_play(engine, args) -> int:
    from recengine.playback.errors import BackendUnavailable

    try:
        backend, tracks = engine.player.play_playlist(args.playlist, backend=args.backend,
                                                      mode="append" if args.append else "replace")
    except LookupError as exc:
        raise UsageError(str(exc)) from exc
    except BackendUnavailable as exc:
        raise CommandFailed(str(exc)) from exc
    print(f"playing {len(tracks)} tracks of {args.playlist} through {backend.name}", file=sys.stderr)
    stop = threading.Event()
    if args.watch or hasattr(backend, "wait"):
        try:
            engine.player.keep_playing(backend, stop, user=args.user, topup_below=args.topup_below,
                                       recipe=args.playlist)
        except KeyboardInterrupt:
            stop.set()
    close = getattr(backend, "close", None)
    if close is not None:
        close()
    return EXIT_OK
