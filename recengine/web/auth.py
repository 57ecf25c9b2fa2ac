"""The API token, the page's session cookie, and the guard every request passes.

The token comes from ``RECENGINE_API_TOKEN``, else ``http.token``, else ``<data_dir>/api-token``
(generated at first start, mode 0600). Every ``/api/`` request needs ``Authorization: Bearer
<token>``, or the session cookie the page gets from ``POST /api/v1/login``; a request that
changes something and authenticates by cookie must also carry the ``X-CSRF-Token`` header.
``GET /api/v1/health``, the login call and the session check are open. Every response carries the security headers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recengine.config import ConfigError
from recengine.web.settings import WebSettings

TOKEN_ENV = "RECENGINE_API_TOKEN"
TOKEN_FILE = "api-token"
COOKIE = "recengine_session"
CSRF_HEADER = "x-csrf-token"
OPEN_PATHS = frozenset({"/api/v1/health", "/api/v1/login", "/api/v1/session"})
SAFE_METHODS = frozenset({"GET", "HEAD"})

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
     b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class TokenRefused(ConfigError):
    """The server must not start: a non-loopback address without a configured token. A
    configuration mistake (``recengine serve`` and ``recengine daemon`` exit 2 with its one line)."""

    def __init__(self, source: str, message: str):
        super().__init__(source, "http.token", message)


@dataclass(frozen=True)
class ApiToken:
    """The token and the values derived from it (cookie session, CSRF header)."""

    value: str
    generated: bool = False  # made at this start (print it once)

    def _derive(self, purpose: bytes) -> str:
        return hmac.new(self.value.encode(), purpose, hashlib.sha256).hexdigest()

    @property
    def session(self) -> str:
        return self._derive(b"recengine session cookie")

    @property
    def csrf(self) -> str:
        return self._derive(b"recengine csrf header")

    def matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.value.encode())


def load_token(settings: WebSettings, env: Mapping[str, str] | None = None) -> ApiToken:
    """The API token (see the module docstring); raises :class:`TokenRefused` for a
    non-loopback bind that would rely on a generated token."""
    env = os.environ if env is None else env
    configured = env.get(TOKEN_ENV) or settings.token
    if configured:
        return ApiToken(configured)
    if not settings.loopback:
        raise TokenRefused(settings.source, f"refusing to listen on {settings.host}: a non-loopback address needs "
                           f"a token (set {TOKEN_ENV} or http.token)")
    path = Path(settings.data_dir) / TOKEN_FILE
    if path.exists():
        return ApiToken(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return ApiToken(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return ApiToken(value, generated=True)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is no session
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def has_session(scope: Scope, token: ApiToken) -> bool:
    """Does the request carry the page's valid session cookie?"""
    session = _cookie(scope, COOKIE)
    return session is not None and hmac.compare_digest(session.encode(), token.session.encode())


def refusal(scope: Scope, token: ApiToken) -> tuple[int, str] | None:
    """Why this request may not go on (status, message), or None when it may."""
    path = scope["path"]
    if not path.startswith("/api/") or path in OPEN_PATHS:
        return None
    auth = _header(scope, b"authorization")
    if auth is not None:
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and token.matches(given.strip()):
            return None
        return 401, "wrong API token"
    if _cookie(scope, COOKIE) is None:
        return 401, "an API token is needed (Authorization: Bearer ...)"
    if not has_session(scope, token):
        return 401, "the session has expired; log in again"
    if scope["method"] not in SAFE_METHODS:
        csrf = _header(scope, CSRF_HEADER.encode()) or ""
        if not hmac.compare_digest(csrf.encode(), token.csrf.encode()):
            return 403, f"a request with the session cookie needs the {CSRF_HEADER} header"
    return None


class Guard:
    """ASGI middleware: authentication of ``/api/`` requests and the security headers."""

    def __init__(self, app: ASGIApp, token: ApiToken):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if api and not any(k == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        refused = refusal(scope, self.token)
        if refused is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, text = refused
        body = json.dumps({"error": text}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="recengine"'))
        await send_with_headers({"type": "http.response.start", "status": status, "headers": headers})
        await send_with_headers({"type": "http.response.body", "body": body})


def session_cookie(token: ApiToken, *, clear: bool = False) -> str:
    """The ``Set-Cookie`` value that logs the page in (or out)."""
    value, age = ("", 0) if clear else (token.session, 30 * 86400)
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}"
