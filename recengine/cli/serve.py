"""``recengine serve``: the HTTP API and the web page in the foreground."""

from __future__ import annotations

from recengine.cli.errors import UsageError


def cmd_serve(engine, args) -> int:
    """A non-loopback address without a token is a configuration error (TokenRefused: exit 2)."""
    from recengine.web import WebSettings, serve

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port: must be a port number (0-65535), got {args.port}")
    return serve(engine, WebSettings.from_config(engine.config, host=args.host, port=args.port))
