"""The HTTP API (v1) and the web page, served by Starlette on uvicorn."""

from recengine.web.app import create_app
from recengine.web.auth import TokenRefused
from recengine.web.server import ServerHandle, serve, start_server
from recengine.web.settings import WebSettings

__all__ = ["ServerHandle", "TokenRefused", "WebSettings", "create_app", "serve", "start_server"]
