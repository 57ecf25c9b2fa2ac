"""Printing what commands answer: JSON that stays valid UTF-8 whatever the file names are."""

from __future__ import annotations

import json
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value: Any, *, indent: int = 2) -> str:
    """``value`` as JSON, non-ASCII text as it is; a file name that is not valid UTF-8 (held as lone
    surrogates, ``os.fsdecode``) has them as ``\\udcXX`` escapes, as ``ensure_ascii`` writes them:
    the output stays valid UTF-8, and ``os.fsencode(json.loads(...))`` gives the name's bytes back."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
