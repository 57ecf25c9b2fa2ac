"""ListenBrainz exports: a JSON array of listens, JSON lines (one listen per line), or an API
response (``{"payload": {"listens": [...]}}``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from recengine.importers.records import HistoryImportError, Item, Listen, lines, parse_time, path_of, text_of

_PATH_KEYS = ("file_path", "filepath", "path", "location", "file")


def listen_of(obj: object) -> Listen:
    """A listen from one ListenBrainz listen object; ValueError says what is missing."""
    if not isinstance(obj, dict):
        raise ValueError("a listen must be a JSON object")
    tm = obj.get("track_metadata")
    if not isinstance(tm, dict):
        raise ValueError("missing track_metadata")
    artist, title = text_of(tm.get("artist_name")), text_of(tm.get("track_name"))
    if artist is None or title is None:
        raise ValueError("missing track_metadata.artist_name or track_name")
    if "listened_at" not in obj:
        raise ValueError("missing listened_at")
    at = parse_time(obj["listened_at"])
    info = tm.get("additional_info")
    path = None
    if isinstance(info, dict):
        path = next((p for k in _PATH_KEYS if (p := path_of(info.get(k)))), None)
    return Listen(artist, title, text_of(tm.get("release_name")), at, path=path)


def _is_jsonl(path: str | os.PathLike[str]) -> bool | None:
    """True for JSON lines, False for one JSON document, None for an empty file."""
    for _, text in lines(path):
        first = text.strip()
        if not first:
            continue
        if not first.startswith("{"):
            return False
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return False
        return isinstance(obj, dict) and "payload" not in obj
    return None


def read_listenbrainz(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The listens of a ListenBrainz export, and a :class:`HistoryImportError` per bad one.

    A listen needs ``listened_at`` and ``track_metadata.artist_name`` / ``track_name``;
    ``release_name`` becomes the album and a path in ``additional_info`` (``file_path``,
    ``filepath``, ``path``, ``location`` or ``file``; ``file://`` URIs decoded) enables matching
    by path. In an array, bad items are reported as "item N" (the line is not known).
    """
    jsonl = _is_jsonl(path)
    if jsonl is None:
        return
    if jsonl:
        yield from _read_lines(path)
        return
    try:
        with open(path, encoding="utf-8-sig") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise HistoryImportError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except UnicodeDecodeError:
        raise HistoryImportError("not valid UTF-8", file=path) from None
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        doc = doc["payload"].get("listens")
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise HistoryImportError("expected a JSON array of listens", file=path, line=1)
    for i, item in enumerate(doc, 1):
        try:
            yield listen_of(item)
        except ValueError as exc:
            yield HistoryImportError(f"item {i}: {exc}", file=path)


def _read_lines(path: str | os.PathLike[str]) -> Iterator[Item]:
    bad: set[int] = set()
    for lineno, text in lines(path, bad):
        if not text.strip():
            continue
        if lineno in bad:
            bad.discard(lineno)
            yield HistoryImportError("not valid UTF-8", file=path, line=lineno)
            continue
        try:
            yield listen_of(json.loads(text))
        except json.JSONDecodeError as exc:
            yield HistoryImportError(f"invalid JSON: {exc.msg}", file=path, line=lineno)
        except ValueError as exc:
            yield HistoryImportError(str(exc), file=path, line=lineno)
