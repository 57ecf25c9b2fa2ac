"""Personal-recommendation benchmark: simulated listeners on a labelled corpus.

Layout: ``CORPUS/<label>/<track>`` (a label is e.g. one soundtrack). The corpus is scanned through
the real engine into ``--data-dir`` (kept and reused: a second run only reconciles, then
measures); each run works on a throw-away copy of it, so the kept catalog never holds history.

Each simulated listener likes one or two labels (labels with at least ``--min-label`` tracks).
Their in-taste tracks are split: about half go into the history (1-4 full plays each, spread over
the past eight weeks; some of them also liked), about a third are HELD BACK (liked, but not in the
history: the tracks a good recommender should find), the rest are left unknown. One or two other
labels are the listener's rejected neighbourhoods: a few of their tracks are skipped early
(listened 5-20 s) and one or two disliked. The same listener is also recorded a second time
without the skips (the "no skips" rows), to measure what the skips do.

Methods (10 recommendations each, the listener's own history excluded):

* ``taste``: ``engine.recommend(user, strategies={"taste": 1.0})``
* ``mix``: the default recipe mix (taste + diversity + discovery); "tag caps only" turns the
  diversity's folder-as-album fallback off (the corpus has no tags, so then only MMR varies it)
* ``content``: ``engine.similar([last played track])`` (history excluded by a filter)
* ``popular``: the tracks most played by the *other* simulated listeners
* ``random``: a random sample of the tracks not in the history

Metrics, averaged over listeners:

* ``HR@10``: share of the held-back tracks in the top 10 (out of min(10, held)); ``±`` is the
  standard error over listeners
* ``NDCG@10``: binary relevance = held back
* ``any``: share of listeners with at least one held-back track in the top 10
* ``taste%``: share of the recommendations from the listener's own labels (held or not)
* ``neg%``: share from a rejected neighbourhood (label of a disliked or skipped track, not a
  taste label); ``skip%``: the same for the labels of skipped tracks only
* ``disl``: disliked tracks returned (must be 0); ``cap``/``dup``: lists breaking the diversity
  caps (artist tag, else album tag, else the track's folder, over ``max_per_album``) / lists with
  the same audio twice (checked for every method, required for ``mix``)

    .venv/bin/python bench/personal.py /work/corpus --data-dir /tmp/personal-data
    .venv/bin/python bench/personal.py /work/corpus --data-dir /tmp/personal-data --seed 7
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recengine import Engine  # noqa: E402
from recengine.default_plugins.diversity import DEFAULTS as DIVERSITY_DEFAULTS  # noqa: E402
from recengine.models import HistoryEvent  # noqa: E402
from recengine.recommend.filters import Filters  # noqa: E402

NOW = 1_750_000_000.0  # a fixed "now" so runs are reproducible
DAY = 86400.0
TAG_CAPS_ONLY = {"folder_as_album": False}  # the diversity caps without the folder fallback


@dataclass
class Listener:
    user: str
    taste: set[str]
    held: set[int]
    history: set[int]
    disliked: set[int]
    skipped: set[int]
    events: list[HistoryEvent] = field(default_factory=list)

    def without_skips(self) -> list[HistoryEvent]:
        return [
            HistoryEvent(
                e.user + "-noskip", e.track_id, e.kind, at=e.at, listened_s=e.listened_s, source=e.source
            )
            for e in self.events
            if e.kind != "skip"
        ]

    @property
    def last_played(self) -> int:
        return max((e for e in self.events if e.kind == "play"), key=lambda e: e.at).track_id


def label_of(relpath: str) -> str:
    parts = Path(relpath).parts
    return parts[0] if len(parts) > 1 else "."


def make_listener(name: str, rng: random.Random, by_label: dict[str, list[int]], min_label: int) -> Listener:
    big = sorted(lab for lab, ids in by_label.items() if len(ids) >= min_label)
    taste = set(rng.sample(big, rng.choice([1, 2])))
    in_taste = sorted(t for lab in taste for t in by_label[lab])
    rng.shuffle(in_taste)
    n_hist = max(2, round(0.5 * len(in_taste)))
    n_held = max(2, round(0.3 * len(in_taste)))
    hist, held = in_taste[:n_hist], in_taste[n_hist : n_hist + n_held]
    off = sorted(lab for lab in by_label if lab not in taste)
    rejected = rng.sample(off, min(len(off), rng.choice([1, 2])))
    neg_pool = sorted(t for lab in rejected for t in by_label[lab])
    rng.shuffle(neg_pool)
    n_skip = min(len(neg_pool) - 1, rng.randint(3, 6))
    skipped, disliked = neg_pool[:n_skip], neg_pool[n_skip : n_skip + rng.randint(1, 2)]

    def when() -> float:
        return NOW - rng.uniform(2 * DAY, 56 * DAY)

    events = []
    for t in hist:
        for _ in range(rng.randint(1, 4)):
            events.append(HistoryEvent(name, t, "play", at=when(), listened_s=rng.uniform(90, 240)))
    for t in rng.sample(hist, max(1, round(0.4 * len(hist)))):
        events.append(HistoryEvent(name, t, "like", at=when()))
    for t in skipped:
        events.append(HistoryEvent(name, t, "skip", at=when(), listened_s=rng.uniform(5, 20)))
    for t in disliked:
        events.append(HistoryEvent(name, t, "dislike", at=when()))
    events.sort(key=lambda e: e.at)
    return Listener(
        name, taste, set(held), set(hist) | set(skipped) | set(disliked), set(disliked), set(skipped), events
    )


def ndcg(recs: list[int], relevant: set[int], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, t in enumerate(recs[:k]) if t in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def group_key(track) -> str:
    """What the diversity caps count: the artist tag, else the album tag, else the folder."""
    if track.artist:
        return "artist:" + track.artist.casefold()
    if track.album:
        return "album:" + track.album.casefold()
    return "folder:" + str(Path(track.root) / Path(track.relpath).parent)


def measure(recs, who: Listener, labels: dict[int, str], k: int, cap: int) -> dict[str, float]:
    ids = [r.track.track_id for r in recs][:k]
    held = who.held
    neg_labels = {labels[t] for t in who.disliked | who.skipped} - who.taste
    skip_labels = {labels[t] for t in who.skipped} - who.taste
    n = max(1, len(ids))
    groups = Counter(group_key(r.track) for r in recs[:k])
    sigs = [r.track.content_sig for r in recs[:k]]
    return {
        "hr": len(set(ids) & held) / max(1, min(k, len(held))),
        "ndcg": ndcg(ids, held, k),
        "any": float(bool(set(ids) & held)),
        "taste": sum(labels[t] in who.taste for t in ids) / n,
        "neg": sum(labels[t] in neg_labels for t in ids) / n,
        "skip": sum(labels[t] in skip_labels for t in ids) / n,
        "disl": float(len(set(ids) & who.disliked)),
        "cap": float(bool(groups) and max(groups.values()) > cap),
        "dup": float(len(set(sigs)) != len(sigs) or len(set(ids)) != len(ids)),
        "len": float(len(ids)),
        "known": float(len(set(ids) & who.history)),
    }


class _Rec:  # the baselines' lists look like Recommendations
    def __init__(self, track):
        self.track = track


def scan_base(corpus: Path, data_dir: Path, workers: int) -> None:
    raw = {
        "library": {"folders": [str(corpus)]},
        "data_dir": str(data_dir),
        "plugin_dirs": [],
        "scan": {"workers": workers},
    }
    t0 = time.monotonic()
    with Engine.open(None, raw=raw, entrypoints=False) as engine:
        report = engine.scan(workers=workers)
        engine.index  # noqa: B018 - make sure an index generation is on disk
        print(f"scan: {report.summary()} ({time.monotonic() - t0:.1f} s); data dir {data_dir}")


def run(corpus: Path, base: Path, *, listeners: int, seed: int, k: int, min_label: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="recengine-personal-"))
    try:
        shutil.copytree(base, work / "data")
        raw = {"library": {"folders": [str(corpus)]}, "data_dir": str(work / "data"), "plugin_dirs": []}
        with Engine.open(None, raw=raw, entrypoints=False) as engine:
            return _run(engine, listeners=listeners, seed=seed, k=k, min_label=min_label)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(engine, *, listeners: int, seed: int, k: int, min_label: int) -> dict:
    indexed = {t for t in engine.catalog.present_ids() if engine.index.vector(t) is not None}
    tracks = {t.track_id: t for t in engine.catalog.tracks() if t.track_id in indexed}
    labels = {t: label_of(tr.relpath) for t, tr in tracks.items()}
    by_label: dict[str, list[int]] = {}
    for t, lab in sorted(labels.items()):
        by_label.setdefault(lab, []).append(t)
    people = [
        make_listener(f"s{seed}-l{i}", random.Random(f"{seed}:{i}"), by_label, min_label)
        for i in range(listeners)
    ]
    engine.record_events([e for p in people for e in p.events])
    engine.record_events([e for p in people for e in p.without_skips()])
    plays = [Counter(e.track_id for e in p.events if e.kind == "play") for p in people]
    total_plays = sum(plays, Counter())
    cap = int(DIVERSITY_DEFAULTS["max_per_album"])
    rows: dict[str, list[dict]] = {}
    t0 = time.monotonic()
    for i, who in enumerate(people):
        rng = random.Random(f"{seed}:{i}:baselines")
        unknown = sorted(set(tracks) - who.history)
        lists = {
            "taste": engine.recommend(who.user, k, strategies={"taste": 1.0}, now=NOW),
            "mix (taste+diversity)": engine.recommend(who.user, k, now=NOW),
            "content (last played)": engine.similar(
                [who.last_played], k, filters=Filters(exclude_tracks=set(who.history))
            ),
            "popular (others' plays)": [
                _Rec(tracks[t])
                for t, _ in sorted((total_plays - plays[i]).items(), key=lambda kv: (-kv[1], kv[0]))
                if t not in who.history
            ][:k],
            "random": [_Rec(tracks[t]) for t in rng.sample(unknown, min(k, len(unknown)))],
            "taste, no skips": engine.recommend(who.user + "-noskip", k, strategies={"taste": 1.0}, now=NOW),
            "mix, no skips": engine.recommend(who.user + "-noskip", k, now=NOW),
            "mix, tag caps only": engine.recommend(who.user, k, now=NOW, diversity=TAG_CAPS_ONLY),
            "mix, tag caps, no skips": engine.recommend(
                who.user + "-noskip", k, now=NOW, diversity=TAG_CAPS_ONLY
            ),
        }
        for name, recs in lists.items():
            rows.setdefault(name, []).append(measure(recs, who, labels, k, cap))
    elapsed = time.monotonic() - t0
    summary = {name: {m: float(np.mean([r[m] for r in rs])) for m in rs[0]} for name, rs in rows.items()}
    for name, rs in rows.items():
        summary[name]["hr_se"] = float(np.std([r["hr"] for r in rs], ddof=1) / math.sqrt(len(rs)))
        summary[name]["disl"] = float(sum(r["disl"] for r in rs))
        summary[name]["cap"] = float(sum(r["cap"] for r in rs))
        summary[name]["dup"] = float(sum(r["dup"] for r in rs))
    return {
        "summary": summary,
        "seconds": elapsed,
        "listeners": listeners,
        "seed": seed,
        "k": k,
        "cap": cap,
        "labels": {lab: len(ids) for lab, ids in by_label.items()},
        "held": float(np.mean([len(p.held) for p in people])),
    }


def report(res: dict) -> bool:
    s, k = res["summary"], res["k"]
    print(
        f"seed {res['seed']}: {res['listeners']} listeners, {res['held']:.1f} held-back tracks each on average; "
        f"labels {res['labels']}; {res['seconds']:.1f} s"
    )
    head = (
        f"{'method':26} {f'HR@{k}':>12} {f'NDCG@{k}':>8} {'any':>5} {'taste%':>7} {'neg%':>6} {'skip%':>6} "
        f"{'disl':>5} {'cap':>4} {'dup':>4} {'len':>5}"
    )
    print(head)
    print("-" * len(head))
    for name, m in s.items():
        print(
            f"{name:26} {m['hr']:6.3f} ±{m['hr_se']:.3f} {m['ndcg']:8.3f} {m['any']:5.2f} {100 * m['taste']:6.1f}% "
            f"{100 * m['neg']:5.1f}% {100 * m['skip']:5.1f}% {m['disl']:5.0f} {m['cap']:4.0f} {m['dup']:4.0f} "
            f"{m['len']:5.1f}"
        )
    taste, mix, pop, content = (
        s["taste"],
        s["mix (taste+diversity)"],
        s["popular (others' plays)"],
        s["content (last played)"],
    )
    checks = [
        (
            f"taste HR@{k} >= 2x popular ({taste['hr']:.3f} vs {2 * pop['hr']:.3f})",
            taste["hr"] >= 2 * pop["hr"],
        ),
        (f"taste HR@{k} > content ({taste['hr']:.3f} vs {content['hr']:.3f})", taste["hr"] > content["hr"]),
        ("no disliked track returned", all(s[n]["disl"] == 0 for n in s)),
    ]
    for name, plain in (("taste", "taste, no skips"), ("mix, tag caps only", "mix, tag caps, no skips")):
        a, b = s[name]["skip"], s[plain]["skip"]
        checks.append(
            (
                f"{name}: skipped neighbourhood {100 * b:.1f}% -> {100 * a:.1f}% with skips (<= half)",
                a <= 0.5 * b,
            )
        )
    a, b = mix["skip"], s["mix, no skips"]["skip"]
    print(
        f"  [info] mix with folder caps: skipped neighbourhood {100 * b:.1f}% -> {100 * a:.1f}% with skips "
        f"(at most {res['cap']} per folder forces about {math.ceil(k / res['cap'])} labels into every list)"
    )
    checks.append(
        (
            f"mix: no list over the cap of {res['cap']} per artist/album/folder, no duplicates",
            mix["cap"] == 0 and mix["dup"] == 0,
        )
    )
    ok = True
    for text, passed in checks:
        print(f"  [{'PASS' if passed else 'FAIL'}] {text}")
        ok &= passed
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="CORPUS/<label>/<track>")
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=Path("/tmp/personal-data"),
        help="scanned catalog to create or reuse (each run works on a copy)",
    )
    ap.add_argument("--listeners", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-k", type=int, default=10, help="recommendations per listener")
    ap.add_argument("--min-label", type=int, default=6, help="smallest label a listener can like")
    ap.add_argument("--workers", type=int, default=0, help="scan workers (0: one per core)")
    args = ap.parse_args(argv)
    scan_base(args.corpus.resolve(), args.data_dir.resolve(), args.workers)
    res = run(
        args.corpus.resolve(),
        args.data_dir.resolve(),
        listeners=args.listeners,
        seed=args.seed,
        k=args.k,
        min_label=args.min_label,
    )
    return 0 if report(res) else 1


if __name__ == "__main__":
    sys.exit(main())
