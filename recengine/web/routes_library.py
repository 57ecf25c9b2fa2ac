"""Health, status, failures, playlists, the library map, and the page's login."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import recengine.web.inputs as inputs
from recengine import __version__
from recengine.service.lock import running_pid
from recengine.service.status import read_status
from recengine.web.auth import has_session, session_cookie
from recengine.web.serialize import JSONResponse, recommendations_json
from recengine.web.state import web


def health(request: Request) -> JSONResponse:
    """``GET /api/v1/health`` (no token needed)."""
    return JSONResponse({"ok": True, "version": __version__})


def status(request: Request) -> JSONResponse:
    """``GET /api/v1/status``: what ``recengine status --json`` shows."""
    engine = web(request).engine
    pid = running_pid(engine.config.data_dir)
    return JSONResponse({"running": pid is not None, "pid": pid, "daemon": read_status(engine.config.data_dir),
                         "catalog": engine.catalog.counts(), "passes": engine.passes()})


def failures(request: Request) -> JSONResponse:
    """``GET /api/v1/failures``: files that could not be analysed, with the reason."""
    rows = web(request).engine.catalog.failures()
    return JSONResponse({"count": len(rows), "failures": [
        {"track": f.track_id, "path": f.path, "reason": f.reason, "message": f.message, "at": f.at} for f in rows]})


def _recipe(request: Request):
    name = request.path_params["name"]
    try:
        return web(request).engine.playlists.get(name)
    except LookupError as exc:
        raise inputs.ApiError(404, str(exc)) from None


def playlists(request: Request) -> JSONResponse:
    """``GET /api/v1/playlists``: the recipes of the config."""
    return JSONResponse({"playlists": [
        {"name": r.name, "kind": r.kind, "user": r.user, "size": r.size, "description": r.description,
         "writers": list(r.writers)} for r in web(request).engine.playlists.recipes]})


def playlist(request: Request) -> JSONResponse:
    """``GET /api/v1/playlists/{name}``: the recipe's tracks now, each with ``why``."""
    engine = web(request).engine
    recipe = _recipe(request)
    try:
        recs = engine.playlists.tracks_for(recipe)
    except LookupError as exc:
        raise inputs.ApiError(404, str(exc)) from None
    return JSONResponse({"name": recipe.name, "kind": recipe.kind, **recommendations_json(recs)})


def refresh(request: Request) -> JSONResponse:
    """``POST /api/v1/playlists/{name}/refresh``: write the recipe's files now (``written``: the
    files whose content changed; ``short``: why the list came out shorter than asked)."""
    recipe = _recipe(request)
    report = web(request).engine.playlists.refresh([recipe.name])
    failed = report.failed.get(recipe.name)
    if failed is not None:
        raise inputs.ApiError(409, f"playlist {recipe.name!r} could not be made: {failed}")
    short = report.short.get(recipe.name)
    return JSONResponse({"name": recipe.name, "written": [str(p) for p in report.written.get(recipe.name, [])],
                         "short": None if short is None else str(short)})


def library_map(request: Request) -> Response:
    """``GET /api/v1/map``: 2-D coordinates of every analysed track with artist, album and folder."""
    return Response(web(request).library_map.body(), media_type="application/json")


async def login(request: Request) -> JSONResponse:
    """``POST /api/v1/login {token}``: the session cookie for the page, and its CSRF value."""
    data = await inputs.json_body(request)
    token = web(request).token
    given = data.get("token")
    if not isinstance(given, str) or not token.matches(given):
        raise inputs.ApiError(401, "wrong API token")
    response = JSONResponse({"csrf": token.csrf})
    response.headers["set-cookie"] = session_cookie(token)
    return response


def session(request: Request) -> JSONResponse:
    """``GET /api/v1/session`` (open): the CSRF value when the page is logged in, else null."""
    token = web(request).token
    return JSONResponse({"csrf": token.csrf if has_session(request.scope, token) else None})


def logout(request: Request) -> JSONResponse:
    response = JSONResponse({"ok": True})
    response.headers["set-cookie"] = session_cookie(web(request).token, clear=True)
    return response


routes = [
    Route("/api/v1/health", health, methods=["GET"]),
    Route("/api/v1/status", status, methods=["GET"]),
    Route("/api/v1/failures", failures, methods=["GET"]),
    Route("/api/v1/playlists", playlists, methods=["GET"]),
    Route("/api/v1/playlists/{name}", playlist, methods=["GET"]),
    Route("/api/v1/playlists/{name}/refresh", refresh, methods=["POST"]),
    Route("/api/v1/map", library_map, methods=["GET"]),
    Route("/api/v1/login", login, methods=["POST"]),
    Route("/api/v1/session", session, methods=["GET"]),
    Route("/api/v1/logout", logout, methods=["POST"]),
]
