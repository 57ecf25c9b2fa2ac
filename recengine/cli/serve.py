"""``recengine serve``: the HTTP API and the web page in the foreground."""

from __future__ import annotations

from recengine.cli.errors import UsageError


def cmd_serve(engine, args) -> int:
    from recengine.web import TokenRefused, WebSettings, serve

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port: must be a port number (0-65535), got {args.port}")
    settings = WebSettings.from_config(engine.config, host=args.host, port=args.port)
    try:
        return serve(engine, settings)
    except TokenRefused as exc:
        raise UsageError(str(exc)) from exc
