"""What the playlist writers share besides paths: one-line display text and the marker scan limit."""

from __future__ import annotations

import math
import unicodedata

#: Only this many bytes at the top of a playlist file are searched for recengine's marker.
MARKER_SCAN_BYTES = 64 * 1024

# Characters some readers treat as line breaks, beyond CR and LF.
_BREAKS = {"\t", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


def clean_text(value: object) -> str:
    """``value`` as one line of display text: breaks become spaces, control characters go.

    Removed: control characters (Unicode Cc), lone surrogates (Cs, from undecodable tags) and
    format characters (Cf) other than ZWJ/ZWNJ, which emoji and some scripts need. Runs of
    whitespace collapse to one space; the result is stripped.
    """
    if value is None:
        return ""
    out = []
    for ch in str(value):
        if ch in _BREAKS:
            out.append(" ")
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs") or (cat == "Cf" and ch not in "\u200c\u200d"):
            continue
        out.append(ch)
    return " ".join("".join(out).split())


def known_duration(duration: object) -> float | None:
    """``duration`` in seconds when it is a finite, non-negative number, else None."""
    if duration is None:
        return None
    try:
        d = float(duration)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return d if math.isfinite(d) and d >= 0 else None
