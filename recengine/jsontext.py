"""JSON that stays valid UTF-8 whatever the file names are (the CLI's ``--json`` and the HTTP API).

A file name that is not valid UTF-8 is held as lone surrogates (``os.fsdecode``); ``json.dumps``
with ``ensure_ascii=False`` passes them through, and encoding the text as UTF-8 then fails. Here
they become ``\\udcXX`` escapes, as ``ensure_ascii`` writes them, while other non-ASCII text stays
as it is: ``os.fsencode(json.loads(text)[...])`` gives the name's bytes back.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value: Any, *, indent: int | None = 2, separators: tuple[str, str] | None = None,
              allow_nan: bool = True) -> str:
    """``value`` as JSON text, lone surrogates escaped (see the module docstring)."""
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=False, allow_nan=allow_nan)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _LONE_SURROGATE.search(text) else text


def json_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (the HTTP API's bodies)."""
    return json_text(value, indent=None, separators=(",", ":"), allow_nan=False).encode("utf-8")
