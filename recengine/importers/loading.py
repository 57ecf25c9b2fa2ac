"""Which parser reads a history file: the format named, or the one its first bytes show."""

from __future__ import annotations

import os
from pathlib import Path

from recengine.importers.lastfm import read_lastfm_csv
from recengine.importers.listenbrainz import read_listenbrainz
from recengine.importers.records import ImportResult, ListenStream
from recengine.importers.scrobbler_log import read_scrobbler_log

READERS = {"listenbrainz": read_listenbrainz, "lastfm": read_lastfm_csv, "scrobbler": read_scrobbler_log}
FORMATS = tuple(READERS)


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"scrobbler"``, ``"listenbrainz"`` or ``"lastfm"``, from the start of the file."""
    with open(path, "rb") as f:
        head = f.read(4096)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("#AUDIOSCROBBLER"):
        return "scrobbler"
    if text.startswith(("[", "{")):
        return "listenbrainz"
    if Path(path).suffix.lower() == ".log":
        return "scrobbler"
    return "lastfm"


def read_history(path: str | os.PathLike[str], fmt: str | None = None, *, strict: bool = False) -> ListenStream:
    """The listens of ``path`` as ``fmt`` (one of :data:`FORMATS`; detected when None), read as
    they are iterated."""
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown history format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return ListenStream(fmt, path, READERS[fmt](path), strict=strict)


def load_history(path: str | os.PathLike[str], fmt: str | None = None, *, strict: bool = False) -> ImportResult:
    """The whole file read at once (see :func:`read_history`)."""
    return read_history(path, fmt, strict=strict).collect()
