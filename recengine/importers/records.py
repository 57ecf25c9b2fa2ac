"""What every history format shares: the :class:`Listen` record, the error type, reading lines,
timestamps, and :class:`ListenStream`, which counts the bad records a parser reports.

A parser is a generator of ``Listen`` or :class:`HistoryImportError` items (one per record, in
file order); it raises :class:`HistoryImportError` itself only when the file is not its format at
all. Nothing holds the whole file: a million-line export is read one line (or one array item) at
a time.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO
from urllib.parse import unquote, urlparse

#: At most this many bad records are kept with their line for the report; all are counted.
KEPT_PROBLEMS = 100
#: A listen may be this many seconds in the future (a device clock running fast), no more.
FUTURE_SLACK_S = 86400.0


#: What a feedback record is as a history event: ListenBrainz scores (1 love, -1 hate, 0 removed).
FEEDBACK_EVENTS = {1: "like", -1: "dislike", 0: "unlike"}


@dataclass(frozen=True)
class Listen:
    """One record of an export: a listen, or (``event`` set) a love or hate. ``at`` is unix
    seconds; ``skipped`` is True for a skip; ``mbid`` is the MusicBrainz recording id the export
    names (lower case), if any; ``event`` is ``like``, ``dislike`` or ``unlike`` for feedback
    (ListenBrainz feedback, Last.fm loved tracks), None for a play or skip."""

    artist: str
    title: str
    album: str | None
    at: float
    path: str | None = None
    listened_s: float | None = None
    skipped: bool = False
    mbid: str | None = None
    event: str | None = None

    @property
    def kind(self) -> str:
        """The history event it becomes: play, skip, like, dislike or unlike."""
        return self.event or ("skip" if self.skipped else "play")


class HistoryImportError(ValueError):
    """A malformed history file or record; ``file`` and ``line`` (1-based, or None) say where."""

    def __init__(self, message: str, *, file: str | os.PathLike[str], line: int | None = None):
        self.file = os.fspath(file)
        self.line = line
        self.reason = message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")


Item = Listen | HistoryImportError


@dataclass
class ImportResult:
    """A whole file read into memory: its listens, the bad records kept (with their lines) and
    how many were skipped in all."""

    format: str
    listens: list[Listen] = field(default_factory=list)
    problems: list[HistoryImportError] = field(default_factory=list)
    skipped: int = 0


class ListenStream:
    """The listens of one file, read as they are iterated.

    Bad records are counted in :attr:`skipped` (the first :data:`KEPT_PROBLEMS` kept in
    :attr:`problems`), or raised with ``strict``. A file with bad records and not one good one is
    not that format: iterating it to the end raises :class:`HistoryImportError`.
    """

    def __init__(self, fmt: str, path: str | os.PathLike[str], items: Iterator[Item], *, strict: bool = False):
        self.format = fmt
        self.path = path
        self.items = items
        self.strict = strict
        self.read = 0
        self.skipped = 0
        self.problems: list[HistoryImportError] = []

    def __iter__(self) -> Iterator[Listen]:
        for item in self.items:
            if isinstance(item, HistoryImportError):
                if self.strict:
                    raise item
                self.skipped += 1
                if len(self.problems) < KEPT_PROBLEMS:
                    self.problems.append(item)
                continue
            self.read += 1
            yield item
        if not self.read and self.skipped:
            first = self.problems[0]
            raise HistoryImportError(
                f"no valid {self.format} record ({self.skipped} bad); first: {first.reason}",
                file=self.path, line=first.line)

    def collect(self) -> ImportResult:
        listens = list(self)
        return ImportResult(self.format, listens, self.problems, self.skipped)


def lines(path: str | os.PathLike[str], bad: set[int] | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text with its line end) for each line; a UTF-8 BOM is dropped.

    A line that is not valid UTF-8 is decoded with replacement characters and its number added
    to ``bad`` (the caller removes it when done with that line); without ``bad`` it raises
    :class:`HistoryImportError` instead.
    """
    with open(path, "rb") as f:
        yield from stream_lines(f, path, bad)


def stream_lines(f: IO[bytes], name: str | os.PathLike[str], bad: set[int] | None = None
                 ) -> Iterator[tuple[int, str]]:
    """:func:`lines` of an open binary stream (a member of a ZIP file); ``name`` is what errors say."""
    for lineno, raw in enumerate(f, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            if bad is None:
                raise HistoryImportError("not valid UTF-8", file=name, line=lineno) from None
            bad.add(lineno)
            text = raw.decode("utf-8", errors="replace")
        yield lineno, text


# --- timestamps ---------------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_LASTFM_DATE = re.compile(
    r"(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
)
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def parse_time(value: object, *, now: float | None = None) -> float:
    """Unix seconds from a number, a numeric string, ``DD Mon YYYY[,] HH:MM[:SS]`` (UTC) or ISO 8601.

    Numbers above 10^11 are taken as milliseconds. Raises ValueError for anything else, for NaN
    or infinity, for a time not after 1970, and for one more than a day after ``now`` (default:
    the current time): ``listened_at: 1e308`` is not a listen.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"no timestamp: {value!r}")
    if isinstance(value, int | float):
        t = float(value)
    elif isinstance(value, str):
        s = value.strip()
        if _NUMBER.fullmatch(s):
            t = float(s)
        elif m := _LASTFM_DATE.fullmatch(s):
            day, mon, year, hh, mm, ss = m.groups()
            month = _MONTHS.get(mon.lower())
            if month is None:
                raise ValueError(f"unknown month in {value!r}")
            t = datetime(int(year), month, int(day), int(hh), int(mm), int(ss or 0), tzinfo=UTC).timestamp()
        else:
            try:
                dt = datetime.fromisoformat(s)
            except ValueError:
                raise ValueError(f"unreadable timestamp {value!r}") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            t = dt.timestamp()
    else:
        raise ValueError(f"unreadable timestamp {value!r}")
    if not math.isfinite(t):
        raise ValueError(f"unreadable timestamp {value!r}")
    if t > 1e11:
        t /= 1000.0
    if t <= 0:
        raise ValueError(f"timestamp {value!r} is not after 1970")
    if t > (time.time() if now is None else now) + FUTURE_SLACK_S:
        raise ValueError(f"timestamp {value!r} is in the future")
    return t


def text_of(value: object) -> str | None:
    """A field as stripped text, None when empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value or None


def mbid_of(value: object) -> str | None:
    """A MusicBrainz id field as the catalog keeps it for matching: stripped, lower case; None when
    empty."""
    s = text_of(value)
    return s.lower() if s else None


def path_of(value: object) -> str | None:
    """A file path field; ``file://`` URIs are decoded."""
    s = text_of(value)
    if s is None:
        return None
    if s.startswith("file:"):
        return unquote(urlparse(s).path) or None
    return s
