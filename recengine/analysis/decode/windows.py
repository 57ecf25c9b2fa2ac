"""Which parts of a track are analysed: a few evenly spread windows, or all of a short file."""

from __future__ import annotations

from recengine.analysis.decode.tags import finite_duration


def plan_windows(duration: float | None, windows: int, window_s: float) -> list[tuple[float, float]]:
    """Analysis windows ``(start, length)``: the whole file when short, else ``windows`` excerpts
    centred at evenly spread points. Unknown duration: one window of the total length from 0."""
    total = windows * window_s
    duration = finite_duration(duration)
    if duration is None:
        return [(0.0, total)]
    if duration <= total * 1.2:
        return [(0.0, duration)]
    out = []
    for i in range(windows):
        centre = duration * (i + 0.5) / windows
        start = min(max(0.0, centre - window_s / 2), duration - window_s)
        out.append((round(start, 3), window_s))
    return out
