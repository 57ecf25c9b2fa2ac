"""Tags and duration through mutagen: no subprocess, and never an exception."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from recengine.models import Tags

log = logging.getLogger(__name__)


def read_tags(path: Path) -> Tags:
    """Tags and duration through mutagen (no subprocess); empty Tags when it cannot tell.

    mutagen raises all kinds of errors on damaged or hostile files (and its lazily parsed tag
    objects can raise later), so everything it does is guarded."""
    try:
        return _read_tags(path)
    except Exception as exc:  # noqa: BLE001 - a tag reader must never fail a file
        log.debug("%s: tags unreadable: %s", path, exc)
        return Tags()


def _read_tags(path: Path) -> Tags:
    import mutagen

    f = mutagen.File(path, easy=True)
    if f is None:
        return Tags()
    duration = getattr(getattr(f, "info", None), "length", None)
    tags = f.tags if f.tags is not None else {}

    def first(key: str) -> str | None:
        try:
            values = tags.get(key)
            if not values:
                return None
            value = str(values[0] if isinstance(values, list) else values).strip()
        except Exception:  # noqa: BLE001
            return None
        return value or None

    number = first("tracknumber")
    try:
        tracknumber = int(number.split("/")[0]) if number else None
    except ValueError:
        tracknumber = None
    ok_duration = finite_duration(duration)
    return Tags(first("artist"), first("album"), first("title"), first("genre"), tracknumber, ok_duration,
                first("musicbrainz_trackid"))


def finite_duration(value: object) -> float | None:
    """A usable duration in seconds, or None (missing, zero, negative, NaN, infinite, absurd)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0 or value > 7 * 86400:
        return None
    return value
