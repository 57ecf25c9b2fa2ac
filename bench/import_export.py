"""A ListenBrainz user-data ZIP through ``recengine history import``: time, memory, match rate, and
that a second import adds nothing.

    .venv/bin/python bench/import_export.py [--tracks 10000] [--listens 200000] [--loves 2000]

The library is bench/scrobble.py's catalog of generated tracks (tags only); every tenth track
carries a recording MBID. The ZIP is written as ListenBrainz writes it (``listens/<year>/<month>.jsonl``
over the last years, ``feedback.jsonl``, ``user.json``): listens name a track with scrobbler
noise (bench/scrobble.py), their ``mbid_mapping`` the track's MBID where it has one; 3 % name
tracks not in the library; loves name the MBID, or only an MSID whose listens are in the ZIP.
Reported: the ZIP's size, import wall time and the process's peak RSS, listens and loves
matched, events added by a second import (must be 0).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scrobble import make_library, name, noisy  # noqa: E402

from recengine.engine import Engine  # noqa: E402
from recengine.importers import Matcher, import_history  # noqa: E402


def write_zip(path: Path, tracks: list[tuple[int, str, str]], mbids: dict[int, str], listens: int, loves: int,
              rng: random.Random) -> None:
    now = int(time.time())
    span = 3 * 365 * 86400
    by_month: dict[tuple[int, int], list[str]] = {}
    msid_of: dict[int, str] = {}
    for i in range(listens):
        at = now - span + i * span // listens
        if rng.random() < 0.03:
            artist, title, tid = name(rng, 3) + " Orchestra", name(rng, 4) + " Suite", None
        else:
            tid, artist, title = rng.choice(tracks)
            artist, title = noisy(rng, artist, title)
        msid = msid_of.setdefault(tid, str(uuid.UUID(int=rng.getrandbits(128)))) if tid else str(uuid.uuid4())
        mapping = {"recording_mbid": mbids[tid], "recording_name": title} if tid in mbids else None
        line = json.dumps({"listened_at": float(at), "inserted_at": float(at + 3), "track_metadata": {
            "artist_name": artist, "track_name": title, "recording_msid": msid, "mbid_mapping": mapping,
            "additional_info": {"submission_client": "bench"}}})
        month = time.gmtime(at)
        by_month.setdefault((month.tm_year, month.tm_mon), []).append(line)
    feedback = []
    for i in range(loves):
        tid = rng.choice(list(msid_of))
        record = {"recording_msid": msid_of[tid], "recording_mbid": mbids.get(tid), "score": 1 if i % 5 else -1,
                  "created": now - 86400 + i}
        feedback.append(json.dumps(record))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("user.json", json.dumps({"user_id": 1, "username": "bench"}))
        for (year, month), lines in sorted(by_month.items()):
            z.writestr(f"listens/{year}/{month}.jsonl", "\n".join(lines) + "\n")
        z.writestr("feedback.jsonl", "\n".join(feedback) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=10000)
    ap.add_argument("--listens", type=int, default=200_000)
    ap.add_argument("--loves", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(11)
    work = Path(tempfile.mkdtemp(prefix="recengine-import-"))
    (work / "library").mkdir()
    raw = {"library": {"folders": [str(work / "library")]}, "data_dir": str(work / "data"), "plugin_dirs": [],
           "models_dir": str(work / "none")}
    with Engine.open(None, raw=raw, entrypoints=False) as engine:
        tracks = make_library(engine, args.tracks, rng)
        mbids = {tid: str(uuid.UUID(int=rng.getrandbits(128))) for tid, _, _ in tracks[::10]}
        with engine.catalog.write() as db:
            db.executemany("UPDATE tracks SET mbid=? WHERE track_id=?", [(m, t) for t, m in mbids.items()])
        export = work / "listenbrainz_bench.zip"
        write_zip(export, tracks, mbids, args.listens, args.loves, rng)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        runs = []
        for _ in range(2):
            before = len(engine.catalog.events("bench"))
            started = time.perf_counter()
            matcher = Matcher(engine.catalog.tracks(present=False), engine.catalog.track_ids_by_mbid())
            report = import_history(export, user="bench", matcher=matcher, record_events=engine.record_events)
            runs.append((time.perf_counter() - started, len(engine.catalog.events("bench")) - before, report))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        (first_s, added, report), (second_s, added_again, _) = runs
        print(f"{len(tracks)} tracks; ZIP of {args.listens} listens + {args.loves} loves/hates: "
              f"{export.stat().st_size / 1e6:.1f} MB")
        print(f"first import {first_s:.1f} s: {report.listens} listens, {report.matched} matched "
              f"({report.match_rate:.1%}; 3 % are not in the library), {report.feedback} loves/hates, "
              f"{report.feedback_matched} matched; {added} events added; peak RSS grew by "
              f"{(peak - base_rss) / 1024:.0f} MB during the imports")
        print(f"second import {second_s:.1f} s: {added_again} events added (must be 0)")
    return 0 if added_again == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
