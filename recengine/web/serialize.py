"""JSON shapes of the API's records: tracks, recommendations, history events, failures."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse as StarletteJSONResponse

from recengine.jsontext import json_bytes
from recengine.models import HistoryEvent, Recommendation, Track


class JSONResponse(StarletteJSONResponse):
    """Starlette's JSON response, whose body stays valid UTF-8 with file names that are not
    (:mod:`recengine.jsontext`): every API answer goes through it."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def track_json(track: Track) -> dict[str, Any]:
    return {
        "id": track.track_id,
        "path": str(track.path),
        "relpath": track.relpath,
        "display": track.display,
        "artist": track.artist,
        "title": track.title,
        "album": track.album,
        "genre": track.genre,
        "tracknumber": track.tracknumber,
        "duration": track.duration,
        "status": track.status,
    }


def recommendation_json(rec: Recommendation) -> dict[str, Any]:
    """A track with its ``score``, ``why`` and ``distance``."""
    return {**track_json(rec.track), "score": round(rec.score, 4), "why": rec.why,
            "distance": None if rec.distance is None else round(rec.distance, 4)}


def recommendations_json(recs: list[Recommendation]) -> dict[str, Any]:
    return {"count": len(recs), "tracks": [recommendation_json(r) for r in recs]}


def event_json(event: HistoryEvent, track: Track | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"user": event.user, "track": event.track_id, "event": event.kind, "at": event.at,
                           "listened_s": event.listened_s, "source": event.source}
    if track is not None:
        out["display"] = track.display
    return out
