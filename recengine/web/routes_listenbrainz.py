"""``/1/...``: the ListenBrainz API parts scrobblers use, answered as ListenBrainz answers them.

Authentication is the user's scrobble token (``Authorization: Token <t>``), not the API token:
a media server only ever learns a token that can add listens for one user.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

import recengine.web.inputs as inputs
from recengine.scrobble import ListenBrainzService, ScrobbleError
from recengine.scrobble.listenbrainz import MAX_BODY_BYTES
from recengine.web.serialize import JSONResponse
from recengine.web.state import web


def _error(exc: ScrobbleError) -> JSONResponse:
    return JSONResponse({"code": exc.status, "error": exc.message}, status_code=exc.status)


def _service(request: Request) -> ListenBrainzService:
    return web(request).engine.listenbrainz


async def _body(request: Request) -> object:
    try:
        body = await inputs.body_bytes(request, MAX_BODY_BYTES)
    except inputs.ApiError as exc:
        raise ScrobbleError(exc.status, exc.message) from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ScrobbleError(400, "cannot parse JSON document") from None


async def _authorised(request: Request, action) -> JSONResponse:
    """``action(service, user, body)`` for the token's user, answered as ListenBrainz answers."""
    service = _service(request)
    try:
        user = await run_in_threadpool(service.user_of, request.headers.get("authorization"))
        body = await _body(request)
        await run_in_threadpool(action, service, user, body)
    except ScrobbleError as exc:
        return _error(exc)
    return JSONResponse({"status": "ok"})


async def submit_listens(request: Request) -> JSONResponse:
    return await _authorised(request, ListenBrainzService.submit)


async def validate_token(request: Request) -> JSONResponse:
    service = _service(request)
    header = request.headers.get("authorization")
    token = request.query_params.get("token")
    if token and not header:
        header = f"Token {token}"
    try:
        user = await run_in_threadpool(service.user_of, header)
    except ScrobbleError:
        return JSONResponse({"code": 200, "message": "Token invalid.", "valid": False})
    return JSONResponse({"code": 200, "message": "Token valid.", "valid": True, "user_name": user})


async def recording_feedback(request: Request) -> JSONResponse:
    return await _authorised(request, ListenBrainzService.feedback)


async def user_listens(request: Request) -> JSONResponse:
    service = _service(request)
    try:
        user = await run_in_threadpool(service.user_of, request.headers.get("authorization"))
        answer = await run_in_threadpool(service.listens, user, request.path_params["user_name"],
                                         dict(request.query_params))
    except ScrobbleError as exc:
        return _error(exc)
    return JSONResponse(answer)


routes = [
    Route("/1/submit-listens", submit_listens, methods=["POST"]),
    Route("/1/user/{user_name}/listens", user_listens, methods=["GET"]),
    Route("/1/validate-token", validate_token, methods=["GET"]),
    Route("/1/feedback/recording-feedback", recording_feedback, methods=["POST"]),
]
