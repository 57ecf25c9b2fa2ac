"""What the request handlers share: one engine per process and the server's own helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from recengine.catalog.browse import Browse
from recengine.web.auth import ApiToken
from recengine.web.mapview import LibraryMap
from recengine.web.player import BrowserPlayers
from recengine.web.settings import WebSettings


@dataclass
class WebState:
    """Held on ``app.state.web``; built once by :func:`recengine.web.app.create_app`."""

    engine: Any
    settings: WebSettings
    token: ApiToken
    browse: Browse
    library_map: LibraryMap
    players: BrowserPlayers


def web(request: Request) -> WebState:
    return request.app.state.web
