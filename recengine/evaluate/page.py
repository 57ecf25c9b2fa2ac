"""The report as one self-contained HTML file: the terminal tables and four inline SVG charts
(precision against chance, replay per strategy, variety per playlist, the library map)."""

from __future__ import annotations

import datetime as dt
from html import escape

from recengine.evaluate.replay import K
from recengine.evaluate.report import Report
from recengine.evaluate.svg import PALETTE, Series, bars, scatter
from recengine.evaluate.tables import hearing_table, playlists_table, replay_table

CSS = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
       "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}"
       "pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}svg{display:block;margin:1em 0}")


def hearing_chart(report: Report) -> str:
    rows = [r for r in report.hearing if r.album or r.artist]
    if not rows:
        return "<p>No album or artist with enough tagged tracks to measure.</p>"
    names = [r.variant for r in rows]
    charts = []
    for attribute, colour in (("album", PALETTE[0]), ("artist", PALETTE[1])):
        precisions = [getattr(r, attribute) for r in rows]
        if not any(precisions):
            continue
        charts.append(bars(
            f"Same-{attribute} neighbours: precision@{K} and 1-NN (tick: chance)", names,
            [Series(f"P@{K}", [p.p_at_k if p else None for p in precisions], colour),
             Series("1-NN", [p.one_nn if p else None for p in precisions], PALETTE[2])],
            scale=1.0, marks=Series("chance", [p.chance if p else None for p in precisions], PALETTE[3])))
    return "".join(charts)


def replay_chart(report: Report) -> str:
    if not report.replay:
        return ""
    names = [m.name for m in report.replay]
    return bars(f"Replay per strategy: hit rate@{K} and NDCG@{K}", names, [
        Series("discovery HR", [m.discoveries.hit_rate for m in report.replay], PALETTE[0]),
        Series("discovery NDCG", [m.discoveries.ndcg for m in report.replay], PALETTE[5]),
        Series("repeat HR", [m.repeats.hit_rate for m in report.replay], PALETTE[1]),
        Series("repeat NDCG", [m.repeats.ndcg for m in report.replay], PALETTE[6]),
    ], scale=1.0)


def playlists_chart(report: Report) -> str:
    shown = [p for p in report.playlists if not p.error and p.reached]
    if not shown:
        return ""
    return bars("Variety per playlist: distinct artists and albums per 10 tracks", [p.name for p in shown], [
        Series("artists / 10", [p.artists_per_10 for p in shown], PALETTE[2]),
        Series("albums / 10", [p.albums_per_10 for p in shown], PALETTE[4]),
    ], scale=10.0)


def map_charts(report: Report) -> str:
    m = report.map
    if not m:
        return "<p>Too few analysed tracks for a map.</p>"
    out = []
    for attribute in ("album", "artist"):
        if any(m[attribute]):
            out.append(scatter(f"Library map (two principal axes of the index vectors), by {attribute}",
                                   m["x"], m["y"], m[attribute]))
    return "".join(out) or scatter("Library map (untagged)", m["x"], m["y"], [""] * len(m["x"]))


def render(report: Report) -> str:
    made = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    sections = [
        ("How well recengine hears your library", hearing_chart(report), hearing_table(report)),
        (f"Personal replay for {report.user}", replay_chart(report), replay_table(report)),
        ("Playlist health", playlists_chart(report), playlists_table(report)),
        ("Library map", map_charts(report), ""),
    ]
    body = "".join(f"<h2>{escape(title)}</h2>{chart}" + (f"<pre>{escape(text)}</pre>" if text else "")
                   for title, chart, text in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>recengine evaluation: '
            f'{escape(report.user)}</title><style>{CSS}</style></head><body><h1>recengine evaluation: '
            f'{escape(report.user)}</h1><p>{report.tracks} tracks; made {made} in {report.seconds:.1f} s.</p>'
            f"{body}</body></html>\n")
