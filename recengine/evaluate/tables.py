"""The report as a few short terminal tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from recengine.evaluate.hearing import HUB_FACTOR, MIN_GROUP, Precision
from recengine.evaluate.replay import K
from recengine.evaluate.report import Report


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the first column left-aligned, the others right."""
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def _precision(p: Precision | None) -> list[str]:
    if p is None:
        return ["-", "-", "-"]
    return [f"{p.p_at_k:.3f}", f"{p.one_nn:.3f}", f"{p.chance:.3f}"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def hearing_table(report: Report) -> str:
    rows = []
    for r in report.hearing:
        hub = r.hubness
        rows.append([r.variant, *_precision(r.album), *_precision(r.artist), _pct(r.duplicates),
                     _pct(hub.orphans) if hub else "-", _pct(hub.hubs) if hub else "-",
                     f"{hub.skew:.1f}" if hub else "-"])
    head = ["variant", f"album P@{K}", "1-NN", "chance", f"artist P@{K}", "1-NN", "chance", "dup lists",
            "orphans", "hubs", "skew"]
    return (f"Hearing: {report.tracks} tracks, {report.albums} albums and {report.artists} artists with "
            f"{MIN_GROUP}+ tracks (orphans: in no one's {K} neighbours; hubs: in more than {HUB_FACTOR * K})\n"
            + table(head, rows))


def replay_table(report: Report) -> str:
    if report.too_little_history:
        return f"Personal replay: {report.too_little_history}"
    when = dt.datetime.fromtimestamp(report.cutoff or 0).strftime("%Y-%m-%d %H:%M")
    rows = []
    for m in report.replay:
        rep, dis = m.repeats, m.discoveries
        rows.append([m.name, ", ".join(m.recipes) or "(baseline)", f"{rep.hit_rate:.3f}", f"{rep.ndcg:.3f}",
                     f"{rep.negatives:.1f}", f"{dis.hit_rate:.3f}", f"{dis.ndcg:.3f}", f"{dis.negatives:.1f}"])
    first = report.replay[0] if report.replay else None
    sizes = (f"; truth: {first.repeats.truth} repeats among {first.repeats.candidates} heard tracks, "
             f"{first.discoveries.truth} discoveries among {first.discoveries.candidates}") if first else ""
    head = ["strategies", "recipes", f"repeat HR@{K}", "NDCG", "neg", f"discovery HR@{K}", "NDCG", "neg"]
    return (f"Personal replay for {report.user}: history before {when}, plays and likes after it as the truth"
            f"{sizes} (neg: skipped or disliked tracks in the top {K}; random: its expected value)\n"
            + table(head, rows))


def playlists_table(report: Report) -> str:
    if not report.playlists:
        return "Playlists: no recipes in the config"
    rows = []
    for p in report.playlists:
        if p.error:
            rows.append([p.name, p.kind, "-", "-", "-", "-", "-", "-", p.error])
            continue
        step = "-" if p.largest_step is None else f"{p.largest_step:.3f}"
        rows.append([p.name, p.kind, f"{p.reached}/{p.asked}", f"{p.artists_per_10:.1f}", f"{p.albums_per_10:.1f}",
                     _pct(p.coverage), _pct(p.changed_last_refresh), step, p.cut_by or ""])
    head = ["playlist", "kind", "size", "artists/10", "albums/10", "coverage", "changed", "max step", "cut by"]
    return "Playlists (changed: at the last refresh; coverage: of the library, over replayed refreshes)\n" + \
        table(head, rows)


def render(report: Report) -> str:
    return "\n\n".join([hearing_table(report), replay_table(report), playlists_table(report),
                        f"({report.seconds:.1f} s)"])
