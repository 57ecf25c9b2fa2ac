"""``recengine sync``: pull likes and plays from the configured media servers, push playlists there."""

from __future__ import annotations

import sys

from recengine.cli.errors import EXIT_FAILURE, EXIT_OK, UsageError
from recengine.sources import SubsonicError


def cmd_sync(engine, args) -> int:
    syncs = engine.source_syncs()
    if args.source:
        known = [s.settings.name for s in syncs]
        syncs = [s for s in syncs if s.settings.name in args.source]
        missing = sorted(set(args.source) - {s.settings.name for s in syncs})
        if missing:
            raise UsageError(f"no source named {missing[0]!r} (configured: {', '.join(known) or 'none'})")
    if not syncs:
        print(f"no sources: in {engine.config.source} (see 'Subsonic servers' in the README)", file=sys.stderr)
        return EXIT_OK
    failed = 0
    for sync in syncs:
        try:
            print(sync.run().summary())
        except SubsonicError as exc:
            print(f"{sync.settings.name}: {exc}", file=sys.stderr)
            failed += 1
        except LookupError as exc:  # a pushed recipe that does not exist
            print(f"{sync.settings.name}: {exc}", file=sys.stderr)
            failed += 1
    return EXIT_FAILURE if failed else EXIT_OK
