"""Tracks: search, one track, and its audio file (with HTTP Range)."""

from __future__ import annotations

import mimetypes

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

import recengine.web.inputs as inputs
from recengine.web.serialize import JSONResponse, track_json
from recengine.web.state import web

#: Audio types mimetypes may not know on every system.
AUDIO_TYPES = {".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
               ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".wav": "audio/wav", ".mka": "audio/x-matroska"}


def search(request: Request) -> JSONResponse:
    """``GET /api/v1/tracks?q=&limit=&offset=``: tracks whose artist, title, album or path
    contains every word of ``q`` (all tracks without ``q``)."""
    q = inputs.text(request.query_params.get("q"), "q", required=False)
    limit = inputs.query_int(request, "limit", 50)
    offset = inputs.query_int(request, "offset", 0, low=0, high=10**9)
    page = web(request).browse.search(q, limit=limit, offset=offset)
    return JSONResponse({"total": page.total, "offset": page.offset, "limit": limit,
                         "tracks": [track_json(t) for t in page.tracks]})


def track(request: Request) -> JSONResponse:
    """``GET /api/v1/tracks/{id}``."""
    found = inputs.track(web(request).engine, request.path_params["track_id"])
    return JSONResponse(track_json(found))


def audio(request: Request) -> FileResponse:
    """``GET /api/v1/tracks/{id}/audio``: the catalog track's file; Range requests are answered
    with 206. Only files of catalog tracks are ever served."""
    found = inputs.track(web(request).engine, request.path_params["track_id"])
    path = found.path
    if not path.is_file():
        raise inputs.ApiError(404, f"track {found.track_id}: its file is not there now")
    kind = AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=kind, headers={"cache-control": "private, max-age=3600"})


routes = [
    Route("/api/v1/tracks", search, methods=["GET"]),
    Route("/api/v1/tracks/{track_id:int}", track, methods=["GET"]),
    Route("/api/v1/tracks/{track_id:int}/audio", audio, methods=["GET", "HEAD"]),
]
