"""``evaluate``: the evaluation report (:mod:`recengine.evaluate`) in the terminal, as JSON or HTML."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from recengine.cli.errors import EXIT_OK, CommandFailed
from recengine.evaluate import Evaluation, Sources, page, tables
from recengine.models import NotInIndex


def days(text: str) -> float:
    """``--since``: a positive number of days."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected days, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 days, got {text}")
    return value


class ProgressBar:
    """``stage [#####.....]`` on one line of a terminal; nothing elsewhere."""

    def __init__(self, out=sys.stderr):
        self.out = out
        self.enabled = out.isatty()
        self.last = 0.0

    def __call__(self, stage: str, done: float) -> None:
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.1 or done >= 1.0):
            self.last = now
            filled = int(30 * min(done, 1.0))
            self.out.write(f"\r{stage:10} [{'#' * filled}{'.' * (30 - filled)}] {100 * done:3.0f}% ")
            self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\r" + " " * 60 + "\r")
            self.out.flush()


def sources_of(engine) -> Sources:
    return Sources(catalog=engine.catalog, index=engine.index, extractor_versions=engine.extractor_versions(),
                   scorers=engine.scorers, playlist_writers=engine.writers, config=engine.config,
                   recipes=engine.recipes, similar=lambda ids, n: engine.similar(ids, n),
                   walk=lambda a, b, n, filters: engine.path(a, b, n, filters), resolve=engine.resolve,
                   scaler=engine.index.scaler)


def cmd_evaluate(engine, args) -> int:
    bar = ProgressBar()
    try:
        report = Evaluation(sources_of(engine), progress=bar).run(args.user, since_days=args.since)
    except NotInIndex as exc:
        raise CommandFailed(str(exc)) from exc
    finally:
        bar.close()
    if args.html:
        Path(args.html).write_text(page.render(report), encoding="utf-8")
    if args.json:
        print(json.dumps(report.as_dict(), indent=1, ensure_ascii=False))
    else:
        print(tables.render(report))
        if args.html:
            print(f"report written to {args.html}")
    return EXIT_OK
