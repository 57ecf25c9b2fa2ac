"""Scrobble endpoint: one 10,000-listen ``import`` over HTTP on a 10k-track library, and the match rate
of listens whose artist and title carry the noise real scrobblers send.

    .venv/bin/python bench/scrobble.py [--tracks 10000] [--listens 10000]

The library is a catalog of generated tracks (no audio: matching needs only tags): artists and
titles from a word list with accents, "The ..." bands and a few same-title songs by different
artists. Each listen names one of them with noise a media server or scrobbler adds: other
casing, accents dropped, "feat. X" appended, "(Remastered 2011)" or " - 2011 Remaster" suffixes,
"The" dropped or added; 3 % name tracks that are not in the library (they must stay unmatched:
a match there is a wrong match). Reported: wall time of the POST (parse, match, commit), the
match rate over listens of library tracks, and wrong matches.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recengine.engine import Engine  # noqa: E402
from recengine.importers import normalise  # noqa: E402
from recengine.web import start_server  # noqa: E402
from recengine.web.settings import WebSettings  # noqa: E402

WORDS = ("night drive", "glass", "bells", "échoes", "señor", "über", "river", "çava", "ocean", "neon", "ghost",
         "fjørd", "amber", "crystal", "storm", "velvet", "machine", "garden", "silver", "mirror", "thunder", "dawn",
         "café", "noir", "zéphyr", "lumière", "paradise", "signal", "orbit", "fever", "harbour", "wolves")


def name(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).title()


def noisy(rng: random.Random, artist: str, title: str) -> tuple[str, str]:
    import unicodedata

    def strip_accents(s: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))

    for change in rng.sample(range(6), rng.randint(1, 3)):
        if change == 0:
            artist, title = artist.upper(), title.lower()
        elif change == 1:
            artist, title = strip_accents(artist), strip_accents(title)
        elif change == 2:
            title = f"{title} (feat. {name(rng, 1)})"
        elif change == 3:
            title = rng.choice([f"{title} (Remastered 2011)", f"{title} - 2011 Remaster", f"{title} [Live]"])
        elif change == 4:
            artist = artist[4:] if artist.startswith("The ") else f"The {artist}"
        else:
            artist = f"{artist}, The" if artist.startswith("The ") else artist
    return artist, title


def make_library(engine: Engine, n: int, rng: random.Random) -> list[tuple[int, str, str]]:
    catalog = engine.catalog
    root_id = catalog.root_id(str(engine.config.library_folders[0]))
    now = time.time()
    tracks, seen = [], set()
    with catalog.write() as db:
        for i in range(n):
            artist = ("The " if i % 7 == 0 else "") + name(rng, 2)
            title = name(rng, rng.randint(1, 3))
            key = (normalise(artist), normalise(title))  # names no matcher could tell apart are one track
            if key in seen:
                continue
            seen.add(key)
            cur = db.execute(
                "INSERT INTO tracks(root_id, relpath, size, mtime_ns, content_sig, status, artist, album, title, "
                "duration, added_at, updated_at) VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, ?, 200.0, ?, ?)",
                (root_id, f"t/{i:06d}.flac", 1000 + i, i, f"sig{i}", artist, name(rng, 2), title, now, now))
            tracks.append((cur.lastrowid, artist, title))
    return tracks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=10000)
    ap.add_argument("--listens", type=int, default=10000)
    args = ap.parse_args()
    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix="recengine-scrobble-"))
    (work / "library").mkdir()
    raw = {"library": {"folders": [str(work / "library")]}, "data_dir": str(work / "data"), "plugin_dirs": [],
           "http": {"port": 0, "token": "bench-token-0123456789"}, "models_dir": str(work / "none")}
    with Engine.open(None, raw=raw, entrypoints=False) as engine:
        tracks = make_library(engine, args.tracks, rng)
        token = engine.listenbrainz.issue_token("bench")
        now = int(time.time())
        payload, truth = [], []
        for i in range(args.listens):
            if rng.random() < 0.03:
                artist, title, tid = name(rng, 3) + " Orchestra", name(rng, 4) + " Suite", None
            else:
                tid, artist, title = rng.choice(tracks)
                artist, title = noisy(rng, artist, title)
            payload.append({"listened_at": now - 10 * args.listens + 10 * i,
                            "track_metadata": {"artist_name": artist, "track_name": title}})
            truth.append(tid)
        handle = start_server(engine, WebSettings.from_config(engine.config), threading.Event())
        body = json.dumps({"listen_type": "import", "payload": payload}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=120)
        started = time.perf_counter()
        conn.request("POST", "/1/submit-listens", body=body, headers={"Authorization": f"Token {token}",
                                                                      "Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = resp.read()
        seconds = time.perf_counter() - started
        handle.stop()
        if resp.status != 200:
            print(f"refused: {resp.status} {answer[:200]!r}")
            return 1
        events = engine.catalog.events("bench")
        by_time = {int(e.at): e.track_id for e in events}
        in_library = [(p["listened_at"], t) for p, t in zip(payload, truth, strict=True) if t is not None]
        right = sum(1 for at, t in in_library if by_time.get(at) == t)
        wrong = sum(1 for at, t in in_library if at in by_time and by_time[at] != t)
        wrong += sum(1 for p, t in zip(payload, truth, strict=True) if t is None and p["listened_at"] in by_time)
        print(f"{len(tracks)} tracks, {len(payload)} listens in one import: {seconds:.2f} s over HTTP "
              f"(target < 5 s); matched {right}/{len(in_library)} = {right / len(in_library):.1%} "
              f"(target >= 95 %), wrong matches {wrong} (target 0); kept unmatched: "
              f"{engine.catalog.pending_listen_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
