"""Queries: ``similar``, ``path``, ``recommend`` and ``history``."""

from __future__ import annotations

from pathlib import Path

from recengine.cli.errors import EXIT_OK, CommandFailed, UsageError
from recengine.jsontext import json_text
from recengine.models import NotInIndex, TrackNotFound
from recengine.recommend.filters import Filters


def filters_from(args) -> Filters:
    return Filters(exclude_artists=set(args.exclude_artist or ()), exclude_albums=set(args.exclude_album or ()),
                   exclude_genres=set(args.exclude_genre or ()), min_duration=args.min_duration,
                   max_duration=args.max_duration, tags=dict(args.tag or ()))


def print_recommendations(recs, as_json: bool, why: bool = False) -> None:
    if as_json:
        print(json_text([{"path": str(r.track.path), "track_id": r.track.track_id, "artist": r.track.artist,
                           "title": r.track.title, "album": r.track.album, "duration": r.track.duration,
                           "distance": None if r.distance is None else round(r.distance, 6),
                           "score": round(r.score, 6), "why": r.why} for r in recs]))
        return
    for r in recs:
        dist = "" if r.distance is None else f"{r.distance:6.3f}  "
        print(f"{dist}{r.track.path}" + (f"  ({r.track.display})" if r.track.artist else "")
              + (f"\n        why: {r.why}" if why and r.why else ""))


def _answer(query, as_json: bool) -> int:
    """Print ``query()``'s tracks; an unknown track is a usage error, one not analysed a failure."""
    try:
        recs = query()
    except TrackNotFound as exc:
        raise UsageError(str(exc)) from exc
    except NotInIndex as exc:
        raise CommandFailed(str(exc)) from exc
    print_recommendations(recs, as_json)
    return EXIT_OK


def cmd_similar(engine, args) -> int:
    return _answer(lambda: engine.similar(args.tracks, args.n, filters_from(args)), args.json)


def cmd_path(engine, args) -> int:
    if args.n < 2:
        raise UsageError("path: -n counts A and B, so it is at least 2")

    def walk():
        if engine.resolve(args.start).track_id == engine.resolve(args.end).track_id:
            raise UsageError("path: A and B are the same track")
        return engine.path(args.start, args.end, args.n, filters_from(args))

    return _answer(walk, args.json)


def cmd_recommend(engine, args) -> int:
    kwargs = {"filters": filters_from(args)}
    if args.strategy:
        strategies = dict(args.strategy)
        unknown = [s for s in strategies if s not in engine.scorers]
        if unknown:
            raise UsageError(f"--strategy: unknown strategy {unknown[0]!r} "
                             f"(available: {', '.join(sorted(engine.scorers.names()))})")
        kwargs["strategies"] = strategies
    try:
        recs = engine.recommend(args.user, args.n, seeds=args.seed or [], **kwargs)
    except TrackNotFound as exc:
        raise UsageError(str(exc)) from exc
    print_recommendations(recs, args.json, why=True)
    return EXIT_OK


def cmd_history(engine, args) -> int:
    if args.action == "import":
        return _import_history(engine, args)
    if not args.tracks:
        raise UsageError(f"history {args.action}: name at least one track")
    for ref in args.tracks:
        try:
            event = engine.record(args.user, ref, args.action, listened_s=args.listened, source="cli")
        except TrackNotFound as exc:
            raise UsageError(str(exc)) from exc
        print(f"{event.kind} recorded for {args.user}: {engine.catalog.track(event.track_id).path}")
    return EXIT_OK


def _import_history(engine, args) -> int:
    from recengine.importers import HistoryImportError, Matcher, import_history

    if not args.tracks:
        raise UsageError("history import: name at least one history file")
    matcher = Matcher(engine.catalog.tracks(present=False), engine.catalog.track_ids_by_mbid())
    for ref in args.tracks:
        try:
            report = import_history(Path(ref), args.format, user=args.user, matcher=matcher,
                                    record_events=engine.record_events)
        except (HistoryImportError, OSError) as exc:
            raise CommandFailed(str(exc)) from exc
        parts = []
        if report.listens or not report.feedback:
            parts.append(f"{report.listens} listens, {report.matched} matched ({report.match_rate:.0%}), "
                         f"{report.unmatched} not in the library")
        if report.feedback:
            parts.append(f"{report.feedback} loves/hates, {report.feedback_matched} matched")
        print(f"{ref}: {report.format}: {'; '.join(parts)}; {report.skipped} unreadable records skipped")
    return EXIT_OK
