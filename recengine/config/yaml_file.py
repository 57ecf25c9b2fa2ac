"""Reading a config file: size cap, safe-load semantics, no aliases or duplicate keys, YAML 1.2 booleans."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from recengine.config.errors import ConfigError

MAX_CONFIG_BYTES = 256 * 1024


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses aliases (billion-laughs) and duplicate keys, and reads only
    true/false as booleans (YAML 1.2): ``on:``, ``yes``, ``no`` stay strings, so a key such as
    ``refresh: {on: [library]}`` means what it says."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}: aliases (*name) are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a config file safely: size cap, ``safe_load`` semantics, no aliases, mapping on top."""
    source = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, "", f"larger than {MAX_CONFIG_BYTES // 1024} KiB; refusing to read")
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_StrictLoader)  # noqa: S506 - strict safe loader
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            msg = f"line {mark.line + 1}, column {mark.column + 1}: {getattr(exc, 'problem', None) or msg}"
        if "could not determine a constructor" in str(exc):
            msg = "tags such as !!python/... are not allowed"
        raise ConfigError(source, "", f"invalid YAML: {msg}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected a mapping of settings at the top, got {type(data).__name__}")
    return data


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
