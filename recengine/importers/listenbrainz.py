"""ListenBrainz exports: a JSON array of listens, JSON lines (one listen per line), an API
response (``{"payload": {"listens": [...]}}``), the user-data ZIP (:mod:`.listenbrainz_zip`), and
feedback (``feedback.jsonl``, or ``{"feedback": [...]}``): loves and hates, as likes and dislikes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, NoReturn, TextIO

from recengine.importers.records import (
    FEEDBACK_EVENTS,
    HistoryImportError,
    Item,
    Listen,
    lines,
    mbid_of,
    parse_time,
    path_of,
    stream_lines,
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


@dataclass
class Recordings:
    """What the listens of an export say about the recordings its feedback names by MSID only
    (ListenBrainz keeps a love of an unmapped recording under its MSID): the listens whose
    ``recording_msid`` is ``wanted`` are remembered, so the love is matched by their MBID or names."""

    wanted: set[str] = field(default_factory=set)
    known: dict[str, Listen] = field(default_factory=dict)

    def note(self, obj: dict, listen: Listen) -> None:
        tm = obj.get("track_metadata")
        msid = obj.get("recording_msid") or (tm.get("recording_msid") if isinstance(tm, dict) else None)
        if isinstance(msid, str) and msid in self.wanted and (listen.mbid or msid not in self.known):
            self.known[msid] = listen


def feedback_of(obj: object, recordings: Recordings | None = None) -> Listen:
    """A love (score 1: like), hate (-1: dislike) or removal (0: unlike) from one ListenBrainz
    feedback object (``recording_mbid`` and/or ``recording_msid``, ``score``, ``created``);
    ValueError says what is wrong. One named by MSID only takes what ``recordings`` knows of it
    (else it has no names and matches nothing)."""
    if not isinstance(obj, dict):
        raise ValueError("a feedback record must be a JSON object")
    score = obj.get("score")
    if isinstance(score, bool) or score not in FEEDBACK_EVENTS:
        raise ValueError(f"score must be 1 (love), -1 (hate) or 0, got {score!r}")
    mbid, msid = mbid_of(obj.get("recording_mbid")), text_of(obj.get("recording_msid"))
    if mbid is None and msid is None:
        raise ValueError("missing recording_mbid and recording_msid")
    if obj.get("created") is None:
        raise ValueError("missing created")
    at = parse_time(obj["created"])
    known = recordings.known.get(msid) if recordings is not None and msid else None
    if known is None:
        return Listen("", "", None, at, mbid=mbid, event=FEEDBACK_EVENTS[score])
    return Listen(known.artist, known.title, known.album, at, mbid=mbid or known.mbid, event=FEEDBACK_EVENTS[score])


def is_feedback(obj: object) -> bool:
    return isinstance(obj, dict) and "score" in obj and "track_metadata" not in obj


def record_of(obj: object, recordings: Recordings | None = None) -> Listen:
    """A listen or a feedback record, whichever ``obj`` is; a listen is noted in ``recordings``."""
    if is_feedback(obj):
        return feedback_of(obj, recordings)
    listen = listen_of(obj)
    if recordings is not None and recordings.wanted:
        recordings.note(obj, listen)
    return listen


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
        return isinstance(obj, dict) and "payload" not in obj and "feedback" not in obj
    return False


def read_listenbrainz(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The listens (and loves and hates) of a ListenBrainz export file, and a
    :class:`HistoryImportError` per bad record.

    A listen needs ``listened_at`` and ``track_metadata.artist_name`` / ``track_name``;
    ``release_name`` becomes the album and a path in ``additional_info`` (``file_path``,
    ``filepath``, ``path``, ``location`` or ``file``; ``file://`` URIs decoded) enables matching
    by path; ``additional_info.recording_mbid``, else ``mbid_mapping.recording_mbid`` (what
    ListenBrainz mapped the listen to, in its exports), matching by MBID. A feedback record
    (``feedback.jsonl``: ``recording_mbid``, ``score``, ``created``; see :func:`feedback_of`)
    may stand where a listen does. JSON lines and arrays are read one record at a time; in an
    array, bad items are reported as "item N" (the line is not known). A record nested too deeply
    for the JSON reader is a bad record like any other.
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
    elif isinstance(doc, dict) and isinstance(doc.get("feedback"), list):  # the feedback API's answer
        doc = doc["feedback"]
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise HistoryImportError("expected a JSON array of listens", file=path, line=1)
    for i, item in enumerate(doc, 1):
        yield _item(item, i, path)


def _item(obj: object, i: int, path: str | os.PathLike[str], recordings: Recordings | None = None) -> Item:
    try:
        return record_of(obj, recordings)
    except ValueError as exc:
        return HistoryImportError(f"item {i}: {exc}", file=path)


def _read_array(path: str | os.PathLike[str]) -> Iterator[Item]:
    with open(path, encoding="utf-8-sig") as f:
        yield from array_items(f, path)


def array_items(f: TextIO, path: str | os.PathLike[str], recordings: Recordings | None = None) -> Iterator[Item]:
    """The items of a top-level JSON array, decoded one at a time from a sliding buffer."""
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
        yield _item(obj, i, path, recordings)
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
    with open(path, "rb") as f:
        yield from jsonl_items(f, path)


def jsonl_items(f: IO[bytes], path: str | os.PathLike[str], recordings: Recordings | None = None) -> Iterator[Item]:
    """The records of JSON lines (listens or feedback, one per line) from a binary stream."""
    bad: set[int] = set()
    for lineno, text in stream_lines(f, path, bad):
        if not text.strip():
            continue
        if lineno in bad:
            bad.discard(lineno)
            yield HistoryImportError("not valid UTF-8", file=path, line=lineno)
            continue
        try:
            yield record_of(json.loads(text), recordings)
        except json.JSONDecodeError as exc:
            yield HistoryImportError(f"invalid JSON: {exc.msg}", file=path, line=lineno)
        except RecursionError:
            yield HistoryImportError("invalid JSON: nested too deeply", file=path, line=lineno)
        except ValueError as exc:
            yield HistoryImportError(str(exc), file=path, line=lineno)
