"""Which parser reads a history file: the format named, or the one its first bytes show."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from recengine.importers.lastfm import read_lastfm_csv, read_lastfm_loved
from recengine.importers.listenbrainz import read_listenbrainz
from recengine.importers.listenbrainz_zip import ZIP_MAGIC, is_zip, read_export_zip
from recengine.importers.records import ImportResult, Item, ListenStream
from recengine.importers.scrobbler_log import read_scrobbler_log


def _read_listenbrainz(path: str | os.PathLike[str]) -> Iterator[Item]:
    """A ListenBrainz export: the user-data ZIP, or one JSON / JSON lines file (feedback.jsonl too)."""
    return read_export_zip(path) if is_zip(path) else read_listenbrainz(path)


READERS = {"listenbrainz": _read_listenbrainz, "lastfm": read_lastfm_csv, "lastfm-loved": read_lastfm_loved,
           "scrobbler": read_scrobbler_log}
FORMATS = tuple(READERS)


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"scrobbler"``, ``"listenbrainz"`` (a ZIP too) or ``"lastfm"``, from the start of the file;
    ``"lastfm-loved"`` for a CSV whose name says ``loved`` (``Loved Tracks alice.csv``)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(ZIP_MAGIC):
        return "listenbrainz"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("#AUDIOSCROBBLER"):
        return "scrobbler"
    if text.startswith(("[", "{")):
        return "listenbrainz"
    if Path(path).suffix.lower() == ".log":
        return "scrobbler"
    return "lastfm-loved" if "loved" in Path(path).name.lower() else "lastfm"


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
