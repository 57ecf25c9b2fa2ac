"""Similar tracks, a path between two tracks, and personal recommendations; each with ``why``."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

import recengine.web.inputs as inputs
from recengine.web.serialize import JSONResponse, recommendations_json
from recengine.web.state import web

#: The most seed tracks one similar or recommend call may name.
MAX_SEEDS = 50


def _seed_list(engine: Any, value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_SEEDS:
        raise inputs.ApiError(400, f"{name}: expected a list of at most {MAX_SEEDS} tracks (ids or paths)")
    return [inputs.track(engine, v, name).track_id for v in value]


def _similar(engine: Any, seeds: list[int], n: int, filters) -> JSONResponse:
    recs = engine.similar(seeds, n, filters)
    return JSONResponse({"seeds": seeds, **recommendations_json(recs)})


def similar_get(request: Request) -> JSONResponse:
    """``GET /api/v1/similar?track=&n=``: tracks that sound like one track."""
    engine = web(request).engine
    seed = inputs.track(engine, request.query_params.get("track"))
    return _similar(engine, [seed.track_id], inputs.query_int(request, "n", 10), None)


async def similar_post(request: Request) -> JSONResponse:
    """``POST /api/v1/similar {tracks: [...], n, filters}``: tracks like a group of seeds."""
    data = await inputs.json_body(request)
    engine = web(request).engine

    def answer() -> JSONResponse:
        seeds = _seed_list(engine, data.get("tracks"), "tracks")
        if not seeds:
            raise inputs.ApiError(400, "tracks: name at least one seed track")
        n = inputs.integer(data.get("n", 10), "n", low=1, high=inputs.MAX_N)
        return _similar(engine, seeds, n, inputs.filters(data.get("filters")))

    return await run_in_threadpool(answer)


def path(request: Request) -> JSONResponse:
    """``GET /api/v1/path?from=&to=&n=``: ``n`` tracks walking from one track to another."""
    engine = web(request).engine
    start = inputs.track(engine, request.query_params.get("from"), "from")
    end = inputs.track(engine, request.query_params.get("to"), "to")
    n = inputs.query_int(request, "n", 12, low=2)
    recs = engine.path(start.track_id, end.track_id, n)
    return JSONResponse(recommendations_json(recs))


def recommend(request: Request) -> JSONResponse:
    """``GET /api/v1/recommend?user=&n=&seed=...``: personal recommendations."""
    engine = web(request).engine
    user = inputs.text(request.query_params.get("user", "default"), "user", max_len=100)
    n = inputs.query_int(request, "n", 20)
    seeds = _seed_list(engine, request.query_params.getlist("seed"), "seed")
    recs = engine.recommend(user, n, seeds=seeds)
    return JSONResponse({"user": user, **recommendations_json(recs)})


routes = [
    Route("/api/v1/similar", similar_get, methods=["GET"]),
    Route("/api/v1/similar", similar_post, methods=["POST"]),
    Route("/api/v1/path", path, methods=["GET"]),
    Route("/api/v1/recommend", recommend, methods=["GET"]),
]
