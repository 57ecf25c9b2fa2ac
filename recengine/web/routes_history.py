"""Listening history: record an event, list the newest, and the in-browser player's reports."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

import recengine.web.inputs as inputs
from recengine.models import EVENT_KINDS
from recengine.web.player import STATES
from recengine.web.serialize import JSONResponse, event_json
from recengine.web.state import web


def _user(value: object) -> str:
    return inputs.text("default" if value is None else value, "user", max_len=100)


async def record(request: Request) -> JSONResponse:
    """``POST /api/v1/history {user, track, event, listened_s}``; durable when it answers."""
    data = await inputs.json_body(request)
    engine = web(request).engine

    def answer() -> JSONResponse:
        user = _user(data.get("user"))
        kind = data.get("event")
        if kind not in EVENT_KINDS:
            raise inputs.ApiError(400, f"event: expected one of {', '.join(EVENT_KINDS)}")
        track = inputs.track(engine, data.get("track"))
        listened = inputs.seconds(data.get("listened_s"), "listened_s")
        event = engine.record(user, track.track_id, kind, listened_s=listened, source="web")
        return JSONResponse(event_json(event, track), status_code=201)

    return await run_in_threadpool(answer)


def listing(request: Request) -> JSONResponse:
    """``GET /api/v1/history?user=&limit=``: the newest events first."""
    state = web(request)
    user = _user(request.query_params.get("user"))
    events = state.browse.recent_events(user, limit=inputs.query_int(request, "limit", 50))
    tracks = state.engine.catalog.tracks_by_ids({e.track_id for e in events})
    return JSONResponse({"user": user, "events": [event_json(e, tracks.get(e.track_id)) for e in events]})


async def player(request: Request) -> JSONResponse:
    """``POST /api/v1/player {session, user, track, state, listened_s}``: what the page's player
    did; plays and skips are decided by the playback rules and recorded."""
    data = await inputs.json_body(request)
    state = web(request)

    def answer() -> JSONResponse:
        session = inputs.text(data.get("session"), "session", max_len=64)
        user = _user(data.get("user"))
        what = data.get("state")
        if what not in STATES:
            raise inputs.ApiError(400, f"state: expected one of {', '.join(STATES)}")
        track = inputs.track(state.engine, data.get("track"))
        listened = inputs.seconds(data.get("listened_s", 0.0), "listened_s") or 0.0
        events = state.players.report(session, user, track, what, listened)
        return JSONResponse({"recorded": [event_json(e) for e in events]})

    return await run_in_threadpool(answer)


routes = [
    Route("/api/v1/history", record, methods=["POST"]),
    Route("/api/v1/history", listing, methods=["GET"]),
    Route("/api/v1/player", player, methods=["POST"]),
]
