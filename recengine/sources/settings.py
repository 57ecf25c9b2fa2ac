"""The ``sources:`` section: media servers recengine learns from and pushes playlists to.

::

    sources:
      - name: navidrome            # optional; default kind + position
        kind: subsonic
        url: http://127.0.0.1:4533
        user: alice
        password: ${NAVIDROME_PASSWORD}   # or api_key: ... (OpenSubsonic)
        recengine_user: alice      # whose history the likes and plays go to (default: default)
        push: [For You]            # recipes written to the server as playlists
        interval_s: 3600           # how often the daemon syncs (default: daemon.sync_interval_s)

Parsed where it is used (``recengine sync`` and the daemon), so an unset ``${VAR}`` of a source
breaks nothing else. Errors name the dotted key, e.g. ``sources[0].url``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from recengine.config import Config, ConfigError, expand_env, unknown_key_error

KINDS = ("subsonic",)
_KEYS = {"name", "kind", "url", "user", "password", "api_key", "legacy_auth", "recengine_user", "push",
         "interval_s"}


@dataclass(frozen=True)
class SourceSettings:
    name: str
    kind: str
    url: str
    user: str
    interval_s: float  # how often the daemon syncs it (default: the option daemon.sync_interval_s)
    password: str | None = None
    api_key: str | None = None
    legacy_auth: bool = False
    recengine_user: str = "default"
    push: tuple[str, ...] = field(default_factory=tuple)


def parse_sources(config: Config, env: Mapping[str, str] | None = None) -> list[SourceSettings]:
    env = os.environ if env is None else env
    out: list[SourceSettings] = []
    for i, raw in enumerate(config["sources"] or []):
        source = _parse_one(config, f"sources[{i}]", raw, env, default_name=f"subsonic{i + 1}")
        if any(s.name == source.name for s in out):
            raise ConfigError(config.source, f"sources[{i}].name", f"two sources are named {source.name!r}")
        out.append(source)
    return out


def _parse_one(config: Config, key: str, raw: object, env: Mapping[str, str], *, default_name: str) -> SourceSettings:
    where = config.source
    if not isinstance(raw, dict):
        raise ConfigError(where, key, f"expected a mapping (kind, url, user, ...), got {raw!r}")
    for k in raw:
        if k not in _KEYS:
            raise unknown_key_error(where, f"{key}.{k}", str(k), sorted(_KEYS))
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(where, f"{key}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")

    def text(name: str, required: bool = False) -> str | None:
        value = raw.get(name)
        if value is None:
            if required:
                raise ConfigError(where, f"{key}.{name}", "required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(where, f"{key}.{name}", f"expected a string, got {value!r}")
        return expand_env(str(value), where, f"{key}.{name}", env)

    url = text("url", required=True)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(where, f"{key}.url", f"expected an http:// or https:// URL, got {url!r}")
    password, api_key = text("password"), text("api_key")
    if not (password or api_key):
        raise ConfigError(where, f"{key}.password", "a password or an api_key is required")
    push = raw.get("push") or []
    push = [push] if isinstance(push, str) else push
    if not isinstance(push, list) or not all(isinstance(p, str) for p in push):
        raise ConfigError(where, f"{key}.push", "expected a list of playlist recipe names")
    interval = raw.get("interval_s", config["daemon.sync_interval_s"])
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(where, f"{key}.interval_s", f"expected seconds, more than 0, got {interval!r}")
    return SourceSettings(name=str(raw.get("name") or default_name), kind=kind, url=url,
                          user=text("user", required=True), password=password, api_key=api_key,
                          legacy_auth=bool(raw.get("legacy_auth")),
                          recengine_user=str(raw.get("recengine_user") or "default"), push=tuple(push),
                          interval_s=float(interval))
