"""The ASGI application: API v1, the page and its static files, plugin routes, error bodies.

One engine per process, shared by every request; request handlers run on a small thread pool
(each thread has its own catalog read connection) and queries pin an index generation, so a
rebuild never blocks a read.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import recengine.web.openapi as openapi
import recengine.web.routes_history as routes_history
import recengine.web.routes_library as routes_library
import recengine.web.routes_listenbrainz as routes_listenbrainz
import recengine.web.routes_queries as routes_queries
import recengine.web.routes_tracks as routes_tracks
from recengine.catalog.browse import Browse
from recengine.index import IndexNotReady
from recengine.models import NotInIndex
from recengine.web.auth import ApiToken, Guard
from recengine.web.inputs import ApiError
from recengine.web.mapview import LibraryMap
from recengine.web.player import BrowserPlayers
from recengine.web.plugins import collect_routes
from recengine.web.serialize import JSONResponse
from recengine.web.settings import WebSettings
from recengine.web.state import WebState

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: Request handler threads (each holds a catalog read connection).
THREADS = 8
#: Seconds a client is asked to wait (Retry-After) while no index is built yet.
INDEX_RETRY_AFTER_S = 30


def _page(name: str):
    def endpoint(request: Request) -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html; charset=utf-8")

    return endpoint


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _not_in_index(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=404)


async def _index_not_ready(request: Request, exc: Exception) -> JSONResponse:
    """No index for the current extractors and weights yet: the server's state, not the request's
    fault; a client may try again once the daemon has built it."""
    return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": str(INDEX_RETRY_AFTER_S)})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


def create_app(engine: Any, settings: WebSettings, token: ApiToken) -> Guard:
    """The whole HTTP application around ``engine`` (wrapped in the auth and headers guard)."""
    browse = Browse(engine.catalog)
    state = WebState(engine=engine, settings=settings, token=token, browse=browse,
                     library_map=LibraryMap(engine.index, browse), players=BrowserPlayers(engine.player.recorder()))
    extra = collect_routes(engine.pm, engine.config)
    document = openapi.document(extra.described)

    def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(document)

    routes = [
        *routes_library.routes, *routes_tracks.routes, *routes_queries.routes, *routes_history.routes,
        *routes_listenbrainz.routes,
        Route("/api/v1/openapi.json", openapi_json, methods=["GET"]),
        Route("/", _page("index.html"), methods=["GET"]),
        Route("/docs", _page("docs.html"), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *extra.routes,
    ]
    app = Starlette(routes=routes, lifespan=_lifespan, exception_handlers={
        ApiError: _api_error, IndexNotReady: _index_not_ready, NotInIndex: _not_in_index, HTTPException: _http_error, Exception: _internal_error})
    app.state.web = state
    return Guard(app, token)
