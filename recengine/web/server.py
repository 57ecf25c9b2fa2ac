"""Running the HTTP server: on a thread beside the daemon, or in the foreground (``recengine serve``).

The listening socket is bound by :func:`start_server` itself, so a port in use or a refused
address is an error in the caller, and port 0 picks a free port (``handle.port`` says which).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from recengine.web.app import create_app
from recengine.web.auth import TOKEN_FILE, load_token
from recengine.web.settings import WebSettings

log = logging.getLogger(__name__)

#: Seconds in-flight requests get to finish when the server stops.
GRACE_S = 1.0


@dataclass
class ServerHandle:
    """A running server: its URL, and :meth:`stop` (returns within about ``GRACE_S`` + 1 s)."""

    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.server.should_exit = True
        self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: a response's header and body writes go out at once instead
    # of waiting ~40 ms for the client's delayed ACK on keep-alive connections
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    return sock


def start_server(engine: Any, settings: WebSettings, stop_event: threading.Event) -> ServerHandle:
    """Serve ``engine`` on a thread until ``stop_event`` is set (or ``handle.stop()``).

    Raises :class:`recengine.web.auth.TokenRefused` for a non-loopback address without a
    configured token, and ``OSError`` when the address cannot be bound."""
    token = load_token(settings)
    app = create_app(engine, settings, token)
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", server_header=False,
                            timeout_graceful_shutdown=GRACE_S)
    server = uvicorn.Server(config)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()

    thread = threading.Thread(target=run, name="recengine-http", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError(f"the HTTP server did not start on {settings.host}:{port} (see the log)")
    url = settings.url(port)

    def stop_when_asked() -> None:
        stop_event.wait()
        server.should_exit = True

    threading.Thread(target=stop_when_asked, name="recengine-http-stop", daemon=True).start()
    threading.Thread(target=_warm_similarity, args=(engine, stop_event), name="recengine-similarity-warm",
                     daemon=True).start()
    if token.generated:
        print(f"recengine: web page and API at {url}\nrecengine: API token (saved in "
              f"{settings.data_dir / TOKEN_FILE}): {token.value}", file=sys.stderr)
    log.info("web page and API at %s", url)
    return ServerHandle(url, port, server, thread, stop_event)


def _warm_similarity(engine: Any, stop_event: threading.Event) -> None:
    """Work out what similarity queries share (local scaling) ahead of them, while the server runs."""
    try:
        similarity = engine.similarity
    except Exception as exc:  # noqa: BLE001 - the queries report the same problem themselves
        log.debug("similarity not warmed: %s", exc)
        return
    similarity.warm(stop_event)


def serve(engine: Any, settings: WebSettings) -> int:
    """``recengine serve``: run in the foreground until SIGTERM or Ctrl-C; returns the exit code."""
    stop = threading.Event()
    handle = start_server(engine, settings, stop)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(0.5):
            if not handle.running:
                return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handle.stop()
    return 0

