"""ListenBrainz exports: a JSON array of listens, JSON lines (one listen per line), or an API
response (``{"payload": {"listens": [...]}}``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import NoReturn, TextIO

from recengine.importers.records import (
    HistoryImportError,
    Item,
    Listen,
    lines,
    mbid_of,
    parse_time,
    path_of,
    text_of,
)

_PATH_KEYS = ("file_path", "filepath", "path", "location", "file")
#: An array is read this many characters at a time ...
READ_CHARS = 1 << 20
#: ... and one item may not be longer than this.
MAX_ITEM_CHARS = 64 << 20


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
    path = mbid = None
    if isinstance(info, dict):
        path = next((p for k in _PATH_KEYS if (p := path_of(info.get(k)))), None)
        mbid = mbid_of(info.get("recording_mbid"))
    mapping = tm.get("mbid_mapping")
    if mbid is None and isinstance(mapping, dict):  # what ListenBrainz itself mapped the listen to
        mbid = mbid_of(mapping.get("recording_mbid"))
    return Listen(artist, title, text_of(tm.get("release_name")), at, path=path, mbid=mbid)


def _first_char(path: str | os.PathLike[str]) -> str | None:
    """The first character that is not white space, None for an empty file."""
    for _, text in lines(path):
        if text.strip():
            return text.strip()[0]
    return None


def _is_jsonl(path: str | os.PathLike[str]) -> bool:
    """Whether the file's first non-empty line is a whole listen object (JSON lines)."""
    for _, text in lines(path):
        first = text.strip()
        if not first:
            continue
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return False
        except RecursionError:  # a whole (deeply nested) object on one line
            return True
        return isinstance(obj, dict) and "payload" not in obj
    return False


def read_listenbrainz(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The listens of a ListenBrainz export, and a :class:`HistoryImportError` per bad one.

    A listen needs ``listened_at`` and ``track_metadata.artist_name`` / ``track_name``;
    ``release_name`` becomes the album and a path in ``additional_info`` (``file_path``,
    ``filepath``, ``path``, ``location`` or ``file``; ``file://`` URIs decoded) enables matching
    by path; ``additional_info.recording_mbid``, else ``mbid_mapping.recording_mbid`` (what
    ListenBrainz mapped the listen to, in its exports), matching by MBID. JSON lines and arrays are read one listen at a time; in an array, bad items are
    reported as "item N" (the line is not known). A record nested too deeply for the JSON reader
    is a bad record like any other.
    """
    first = _first_char(path)
    if first is None:
        return
    if first == "{" and _is_jsonl(path):
        yield from _read_lines(path)
    elif first == "[":
        yield from _read_array(path)
    else:
        yield from _read_document(path)


def _read_document(path: str | os.PathLike[str]) -> Iterator[Item]:
    """A file holding one JSON document: an API response or a single listen (small files)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise HistoryImportError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except UnicodeDecodeError:
        raise HistoryImportError("not valid UTF-8", file=path) from None
    except RecursionError:
        raise HistoryImportError("invalid JSON: nested too deeply", file=path) from None
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        doc = doc["payload"].get("listens")
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise HistoryImportError("expected a JSON array of listens", file=path, line=1)
    for i, item in enumerate(doc, 1):
        yield _item(item, i, path)


def _item(obj: object, i: int, path: str | os.PathLike[str]) -> Item:
    try:
        return listen_of(obj)
    except ValueError as exc:
        return HistoryImportError(f"item {i}: {exc}", file=path)


def _read_array(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The items of a top-level JSON array, decoded one at a time from a sliding buffer."""
    with open(path, encoding="utf-8-sig") as f:
        buf = _ArrayBuffer(path, f)
        buf.expect("[")
        i = 0
        while buf.peek() != "]":
            if i:
                buf.expect(",")
            i += 1
            try:
                obj = buf.decode()
            except RecursionError:
                buf.skip_value()
                yield HistoryImportError(f"item {i}: nested too deeply", file=path)
                continue
            yield _item(obj, i, path)
        buf.pos += 1
        buf.expect_end()


class _ArrayBuffer:
    """A window on a JSON file: decodes the value at :attr:`pos`, reading more as needed and
    dropping what was decoded, so memory follows the largest item, not the file."""

    def __init__(self, path: str | os.PathLike[str], file: TextIO):
        self.path = path
        self.file = file
        self.text = ""
        self.pos = 0
        self.line = 1  # of text[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        if self.pos > READ_CHARS:
            self.line += self.text.count("\n", 0, self.pos)
            self.text, self.pos = self.text[self.pos :], 0
        if len(self.text) - self.pos > MAX_ITEM_CHARS:
            self._fail(f"one listen is larger than {MAX_ITEM_CHARS} characters")
        try:
            chunk = self.file.read(READ_CHARS)
        except UnicodeDecodeError:
            self._fail("not valid UTF-8")
        if not chunk:
            self.eof = True
            return False
        self.text += chunk
        return True

    def _fail(self, message: str, at: int | None = None) -> NoReturn:
        line = None if at is None else self.line + self.text.count("\n", 0, at)
        raise HistoryImportError(message, file=self.path, line=line)

    def peek(self) -> str:
        """The next character that is not white space (moves past the white space)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self._more():
                self._fail("invalid JSON: the array is not closed", len(self.text))

    def expect(self, char: str) -> None:
        if self.peek() != char:
            self._fail(f"invalid JSON: expected {char!r}", self.pos)
        self.pos += 1

    def expect_end(self) -> None:
        while True:
            rest = self.text[self.pos :].strip()
            if rest:
                self._fail("invalid JSON: extra data after the array", self.pos)
            self.pos = len(self.text)
            if not self._more():
                return

    def decode(self) -> object:
        self.peek()
        while True:
            try:
                obj, self.pos = self.decoder.raw_decode(self.text, self.pos)
                return obj
            except json.JSONDecodeError as exc:
                # an error before the end of what was read is real (an unterminated string is
                # reported where it starts); else the item may just go on in the next chunk
                cut = exc.pos >= len(self.text) - 1 or exc.msg.startswith("Unterminated string")
                if not cut or not self._more():
                    self._fail(f"invalid JSON: {exc.msg}", exc.pos)

    def skip_value(self) -> None:
        """Move past the value at :attr:`pos` without decoding it (for one nested too deeply)."""
        depth, i, in_string = 0, self.pos, False
        while True:
            if i >= len(self.text):
                start = self.pos
                if not self._more():
                    self._fail("invalid JSON: the array is not closed", len(self.text))
                i -= start - self.pos  # the buffer may have been shifted
                continue
            ch = self.text[i]
            if in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return
            i += 1
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
        except RecursionError:
            yield HistoryImportError("invalid JSON: nested too deeply", file=path, line=lineno)
        except ValueError as exc:
            yield HistoryImportError(str(exc), file=path, line=lineno)
