"""The OpenAPI 3.1 document of API v1, served at ``/api/v1/openapi.json`` (and read by ``/docs``)."""

from __future__ import annotations

from typing import Any

from recengine import __version__

_N = {"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}
_TRACK = {"name": "track", "in": "query", "required": True, "description": "track id or library path",
          "schema": {"type": "string"}}
_ID = {"name": "track_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_USER = {"name": "user", "in": "query", "schema": {"type": "string", "default": "default"}}


def _q(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": kind, **extra}}


_FILTERS = {"type": "object", "properties": {
    "exclude_artists": {"type": "array", "items": {"type": "string"}},
    "exclude_albums": {"type": "array", "items": {"type": "string"}},
    "exclude_genres": {"type": "array", "items": {"type": "string"}},
    "min_duration": {"type": "number"}, "max_duration": {"type": "number"},
    "tags": {"type": "object", "additionalProperties": {"type": "string"}}}}
_TRACK_REF = {"oneOf": [{"type": "integer"}, {"type": "string"}]}

#: (method, path, summary, parameters, request body schema or None)
ENDPOINTS: list[tuple[str, str, str, list[dict[str, Any]], dict[str, Any] | None]] = [
    ("get", "/api/v1/health", "Is the server up (no token needed)", [], None),
    ("get", "/api/v1/status", "Daemon state, watcher mode, index generation, catalog counts", [], None),
    ("get", "/api/v1/tracks", "Search tracks by artist, title, album or path",
     [_q("q"), _q("limit", "integer", minimum=1, maximum=500), _q("offset", "integer", minimum=0)], None),
    ("get", "/api/v1/tracks/{track_id}", "One track", [_ID], None),
    ("get", "/api/v1/tracks/{track_id}/audio", "The track's audio file (HTTP Range supported)", [_ID], None),
    ("get", "/api/v1/similar", "Tracks that sound like one track", [_TRACK, _N], None),
    ("post", "/api/v1/similar", "Tracks like a group of seeds, with filters", [],
     {"type": "object", "required": ["tracks"], "properties": {
         "tracks": {"type": "array", "items": _TRACK_REF}, "n": {"type": "integer"}, "filters": _FILTERS}}),
    ("get", "/api/v1/path", "A playlist walking from one track to another",
     [{**_TRACK, "name": "from"}, {**_TRACK, "name": "to"}, _N], None),
    ("get", "/api/v1/recommend", "Personal recommendations, each with why", [_USER, _N, _q("seed")], None),
    ("post", "/api/v1/history", "Record a play, skip, like, dislike or unlike", [],
     {"type": "object", "required": ["track", "event"], "properties": {
         "user": {"type": "string"}, "track": _TRACK_REF,
         "event": {"enum": ["play", "skip", "like", "dislike", "unlike"]}, "listened_s": {"type": "number"}}}),
    ("get", "/api/v1/history", "A listener's newest history events",
     [_USER, _q("limit", "integer", minimum=1, maximum=500)], None),
    ("post", "/api/v1/player", "What the page's player did; plays and skips follow the playback rules", [],
     {"type": "object", "required": ["session", "track", "state"], "properties": {
         "session": {"type": "string"}, "user": {"type": "string"}, "track": _TRACK_REF,
         "state": {"enum": ["start", "playing", "paused", "ended", "left"]}, "listened_s": {"type": "number"}}}),
    ("get", "/api/v1/playlists", "The playlist recipes", [], None),
    ("get", "/api/v1/playlists/{name}", "A recipe's tracks now, each with why", [_NAME], None),
    ("post", "/api/v1/playlists/{name}/refresh", "Write a recipe's playlist files now", [_NAME], None),
    ("get", "/api/v1/failures", "Files that could not be analysed, with the reason", [], None),
    ("get", "/api/v1/map", "2-D coordinates of every analysed track (PCA of the index vectors)", [], None),
    ("post", "/api/v1/login", "Exchange the token for the page's session cookie", [],
     {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}),
    ("get", "/api/v1/session", "The CSRF value of a logged-in page (null when not logged in)", [], None),
    ("post", "/api/v1/logout", "Clear the session cookie", [], None),
]

_OPEN = {"/api/v1/health", "/api/v1/login", "/api/v1/session"}
_ERROR = {"description": "bad input, no or wrong token, unknown track: {error: message}",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document(extra: list[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """The OpenAPI document; ``extra`` adds ``(method, path, summary)`` of plugin endpoints."""
    paths: dict[str, dict[str, Any]] = {}
    rows = [*ENDPOINTS, *((m, p, s, [], None) for m, p, s in extra)]
    for method, path, summary, params, body in rows:
        op: dict[str, Any] = {"summary": summary, "parameters": params,
                              "responses": {"200": {"description": "JSON"}, "4XX": _ERROR}}
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        if path in _OPEN:
            op["security"] = []
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "recengine API", "version": __version__,
                 "description": "Similar tracks, recommendations with reasons, history, playlists and the "
                                "library map. Send Authorization: Bearer <token>."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "recengine_session"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}}},
        "security": [{"bearer": []}, {"cookie": []}],
    }
