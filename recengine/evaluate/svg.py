"""Small SVG charts written as text: grouped horizontal bars and a scatter map.

Generated on the server side in plain Python, so the HTML report is one self-contained file (no
script, no CDN, nothing fetched when it is opened) and recengine needs no plotting library: a
matplotlib extra would add ~40 MB of wheels (and a font cache on first use) for four charts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Colour-blind-safe palette (Okabe & Ito), then greys for "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
OTHER = "#bbbbbb"
FONT = 'font-family="sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.1f}"


def bars(title: str, categories: Sequence[str], series: Sequence[Series], *, scale: float | None = None,
         marks: Series | None = None, width: int = 720) -> str:
    """Horizontal bars: a group per category, a bar per series (None: no bar); ``marks`` draws a
    vertical tick per category (e.g. chance). ``scale``: the value at the right edge (default: the
    largest value)."""
    values = [v for s in series for v in s.values if v is not None]
    values += [v for v in (marks.values if marks else ()) if v is not None]
    top = scale or max(values + [1e-9])
    label_w = min(320, 20 + 7 * max((len(c) for c in categories), default=0))
    bar_h, gap, legend_h = 14, 10, 22
    plot_w = width - label_w - 60
    group_h = bar_h * len(series) + gap
    height = 30 + legend_h + group_h * len(categories)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{escape(title)}" {FONT}>',
           f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    x = label_w
    for s in [*series, *([marks] if marks else [])]:
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{s.colour}"/>'
                   f'<text x="{x + 14}" y="35">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    for i, category in enumerate(categories):
        y0 = 30 + legend_h + i * group_h
        out.append(f'<text x="{label_w - 6}" y="{y0 + group_h / 2}" text-anchor="end">{escape(category)}</text>')
        for j, s in enumerate(series):
            value = s.values[i]
            if value is None:
                continue
            y = y0 + j * bar_h
            w = max(0.0, plot_w * value / top)
            out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{s.colour}">'
                       f'<title>{escape(s.name)}: {_fmt(value)}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}" font-size="10">{_fmt(value)}</text>')
        if marks is not None and marks.values[i] is not None:
            mx = label_w + plot_w * marks.values[i] / top
            out.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y0 - 2}" y2="{y0 + group_h - gap + 2}" '
                       f'stroke="{marks.colour}" stroke-width="2"><title>{escape(marks.name)}: '
                       f'{_fmt(marks.values[i])}</title></line>')
    out.append("</svg>")
    return "".join(out)


def scatter(title: str, xs: Sequence[float], ys: Sequence[float], groups: Sequence[str], *, top: int = 8,
            size: int = 520) -> str:
    """Points coloured by group: the ``top`` largest groups get a colour each, the rest grey."""
    counts = Counter(g for g in groups if g)
    colour = {g: PALETTE[i % len(PALETTE)] for i, (g, _) in enumerate(counts.most_common(top))}
    lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    pad, legend_w = 10, 280

    def px(v: float, lo: float, hi: float) -> float:
        return pad + (size - 2 * pad) * ((v - lo) / (hi - lo) if hi > lo else 0.5)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + legend_w}" height="{size + 24}" role="img" '
           f'aria-label="{escape(title)}" {FONT}>',
           f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
           f'<rect x="0" y="24" width="{size}" height="{size}" fill="none" stroke="#ddd"/>']
    # grey first, so the coloured groups are drawn on top
    for x, y, g in sorted(zip(xs, ys, groups, strict=True), key=lambda p: p[2] in colour):
        c = colour.get(g, OTHER)
        out.append(f'<circle cx="{px(x, lo_x, hi_x):.1f}" cy="{24 + size - px(y, lo_y, hi_y):.1f}" r="2.5" '
                   f'fill="{c}" fill-opacity="0.8"/>')
    for i, (g, c) in enumerate([*colour.items(), ("other", OTHER)]):
        y = 40 + 18 * i
        name = g if len(g) <= 32 else g[:31] + "…"
        n = counts[g] if g in counts else sum(v for k, v in counts.items() if k not in colour) + groups.count("")
        out.append(f'<circle cx="{size + 14}" cy="{y - 4}" r="5" fill="{c}"/>'
                   f'<text x="{size + 24}" y="{y}">{escape(name)} ({n})</text>')
    out.append("</svg>")
    return "".join(out)
