"""Reading a request's input: counts, track references, JSON bodies and filters, each checked.

Anything wrong raises :class:`ApiError`, which the app turns into a 4xx JSON body.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from starlette.requests import Request

from recengine.models import Track, TrackNotFound
from recengine.recommend.filters import Filters

#: The most results one call may ask for.
MAX_N = 500
#: The largest request body read.
MAX_BODY = 1 << 20
#: Tag fields a filter may match.
TAG_FIELDS = frozenset({"artist", "album", "title", "genre"})


class ApiError(Exception):
    """A request that cannot be answered: HTTP ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def integer(value: Any, name: str, *, low: int, high: int) -> int:
    """``value`` (query text or JSON number) as an int in ``[low, high]``."""
    if isinstance(value, bool):
        raise ApiError(400, f"{name}: expected a whole number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > 12:
            raise ApiError(400, f"{name}: expected a whole number, got {value[:40]!r}")
        value = int(text)
    if not isinstance(value, int):
        raise ApiError(400, f"{name}: expected a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}, got {value}")
    return value


def query_int(request: Request, name: str, default: int, *, low: int = 1, high: int = MAX_N) -> int:
    raw = request.query_params.get(name)
    return default if raw is None or raw == "" else integer(raw, name, low=low, high=high)


def text(value: Any, name: str, *, max_len: int = 200, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(400, f"{name}: expected a non-empty string")
    if len(value) > max_len or "\x00" in value:
        raise ApiError(400, f"{name}: too long or not text")
    return value


def seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ApiError(400, f"{name}: expected a number of seconds >= 0")
    return float(value)


def track(engine: Any, ref: Any, name: str = "track") -> Track:
    """The catalog track ``ref`` names: an id, an absolute path, or a path relative to a library
    folder. A path is only ever looked up in the catalog, never opened."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    ref = text(ref, name, max_len=4096)
    try:
        if ref.isdigit() or Path(ref).is_absolute():
            return engine.resolve(int(ref) if ref.isdigit() else ref)
        for root in engine.config.library_folders:
            found = engine.catalog.track_by_path(Path(root) / ref)
            if found is not None:
                return found
    except TrackNotFound:
        pass
    raise ApiError(404, f"{name}: no track {ref[:200]!r} in the catalog")


async def body_bytes(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, read up to ``limit`` bytes (413 when it is longer or says it is)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body over {limit} bytes")
    return body


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (400 when malformed or not an object, 413 when too large)."""
    body = await body_bytes(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object")
    return data


def _names(data: dict[str, Any], key: str) -> set[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"filters.{key}: expected a list of strings")
    return set(value)


def filters(data: Any) -> Filters:
    """:class:`Filters` from a JSON object ``{exclude_artists, exclude_albums, exclude_genres,
    min_duration, max_duration, tags: {field: text}}`` (every key optional)."""
    if data is None:
        return Filters()
    if not isinstance(data, dict):
        raise ApiError(400, "filters: expected an object")
    known = {"exclude_artists", "exclude_albums", "exclude_genres", "min_duration", "max_duration", "tags"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ApiError(400, f"filters.{unknown[0]}: unknown filter (known: {', '.join(sorted(known))})")
    tags = data.get("tags", {})
    if not isinstance(tags, dict) or not all(k in TAG_FIELDS and isinstance(v, str) for k, v in tags.items()):
        raise ApiError(400, f"filters.tags: expected {{field: text}} with fields {', '.join(sorted(TAG_FIELDS))}")
    return Filters(exclude_artists=_names(data, "exclude_artists"), exclude_albums=_names(data, "exclude_albums"),
                   exclude_genres=_names(data, "exclude_genres"),
                   min_duration=seconds(data.get("min_duration"), "filters.min_duration"),
                   max_duration=seconds(data.get("max_duration"), "filters.max_duration"), tags=dict(tags))
