"""Listening-history imports: ListenBrainz, Last.fm CSV and ``.scrobbler.log`` files to listens.

Parsers turn an export into plain :class:`Listen` records; :func:`match_listens` then finds the
library track of each listen (by file path when the export has one, else by normalised artist and
title, with the album breaking ties). Recording the matches as history events is the caller's job.

Malformed input. A file that is not the expected format at all (bad header, JSON that does not
parse as a whole, no valid record) raises :class:`HistoryImportError` naming the file and line. A
single bad record (missing field, bad timestamp, bad JSON line, invalid UTF-8) is skipped and
counted in :attr:`ImportResult.problems`, each a :class:`HistoryImportError` with its line; pass
``strict=True`` to raise on the first one instead. Real exports are large and usually have a few
odd lines (Last.fm "now playing" rows without a date), so skipping is the default.

Timestamps are unix seconds (UTC). Last.fm dates (``31 Jan 2021 14:05``) are UTC; a
``.scrobbler.log`` marked ``#TZ/UNKNOWN`` holds device-local times, which are taken as they are.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from recengine.models import Track

FORMATS = ("listenbrainz", "lastfm", "scrobbler")


@dataclass(frozen=True)
class Listen:
    """One listen from an export. ``at`` is unix seconds; ``skipped`` is True for a skip."""

    artist: str
    title: str
    album: str | None
    at: float
    path: str | None = None
    listened_s: float | None = None
    skipped: bool = False


class HistoryImportError(ValueError):
    """A malformed history file or record; ``file`` and ``line`` (1-based, or None) say where."""

    def __init__(self, message: str, *, file: str | os.PathLike[str], line: int | None = None):
        self.file = os.fspath(file)
        self.line = line
        self.reason = message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")


@dataclass
class ImportResult:
    """What a parser read: the listens, and the records it skipped (with line numbers)."""

    format: str
    listens: list[Listen] = field(default_factory=list)
    problems: list[HistoryImportError] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)


class _Records:
    """Collects listens and per-record problems for one file, honouring ``strict``."""

    def __init__(self, fmt: str, path: str | os.PathLike[str], strict: bool):
        self.result = ImportResult(fmt)
        self.path = path
        self.strict = strict

    def problem(self, message: str, line: int | None) -> None:
        err = HistoryImportError(message, file=self.path, line=line)
        if self.strict:
            raise err
        self.result.problems.append(err)

    def finish(self) -> ImportResult:
        if not self.result.listens and self.result.problems:
            first = self.result.problems[0]
            raise HistoryImportError(
                f"no valid {self.result.format} record ({len(self.result.problems)} bad); first: "
                f"{first.reason}",
                file=self.path,
                line=first.line,
            )
        return self.result


def _lines(path: str | os.PathLike[str], bad: set[int] | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text with its line end) for each line; a UTF-8 BOM is dropped.

    A line that is not valid UTF-8 is decoded with replacement characters and its number added
    to ``bad``; without ``bad`` it raises :class:`HistoryImportError` instead.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                if bad is None:
                    raise HistoryImportError("not valid UTF-8", file=path, line=lineno) from None
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


def parse_time(value: object) -> float:
    """Unix seconds from a number, a numeric string, ``DD Mon YYYY[,] HH:MM[:SS]`` (UTC) or ISO 8601.

    Numbers above 10^11 are taken as milliseconds. Raises ValueError for anything else, for a
    time not after 1970 and for NaN or infinity.
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
    return t


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value or None


def _path_from(value: object) -> str | None:
    s = _text(value)
    if s is None:
        return None
    if s.startswith("file:"):
        return unquote(urlparse(s).path) or None
    return s


# --- ListenBrainz -------------------------------------------------------------------------------

_LB_PATH_KEYS = ("file_path", "filepath", "path", "location", "file")


def _listenbrainz_listen(obj: object) -> Listen:
    if not isinstance(obj, dict):
        raise ValueError("a listen must be a JSON object")
    tm = obj.get("track_metadata")
    if not isinstance(tm, dict):
        raise ValueError("missing track_metadata")
    artist, title = _text(tm.get("artist_name")), _text(tm.get("track_name"))
    if artist is None or title is None:
        raise ValueError("missing track_metadata.artist_name or track_name")
    if "listened_at" not in obj:
        raise ValueError("missing listened_at")
    at = parse_time(obj["listened_at"])
    info = tm.get("additional_info")
    path = None
    if isinstance(info, dict):
        path = next((p for k in _LB_PATH_KEYS if (p := _path_from(info.get(k)))), None)
    return Listen(artist, title, _text(tm.get("release_name")), at, path=path)


def parse_listenbrainz(path: str | os.PathLike[str], *, strict: bool = False) -> ImportResult:
    """A ListenBrainz export: a JSON array of listens, JSON lines (one listen per line), or an
    API response (``{"payload": {"listens": [...]}}``).

    A listen needs ``listened_at`` and ``track_metadata.artist_name`` / ``track_name``;
    ``release_name`` becomes the album and a path in ``additional_info`` (``file_path``,
    ``filepath``, ``path``, ``location`` or ``file``; ``file://`` URIs decoded) enables matching
    by path. In an array, bad items are reported as "item N" (the line is not known).
    """
    rec = _Records("listenbrainz", path, strict)
    first = None
    for _, text in _lines(path):
        if text.strip():
            first = text.strip()
            break
    if first is None:
        return rec.result
    jsonl = False
    if first.startswith("{"):
        try:
            obj = json.loads(first)
            jsonl = isinstance(obj, dict) and "payload" not in obj
        except json.JSONDecodeError:
            jsonl = False
    if jsonl:
        bad: set[int] = set()
        for lineno, text in _lines(path, bad):
            if not text.strip():
                continue
            if lineno in bad:
                rec.problem("not valid UTF-8", lineno)
                continue
            try:
                rec.result.listens.append(_listenbrainz_listen(json.loads(text)))
            except json.JSONDecodeError as exc:
                rec.problem(f"invalid JSON: {exc.msg}", lineno)
            except ValueError as exc:
                rec.problem(str(exc), lineno)
        return rec.finish()
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
            rec.result.listens.append(_listenbrainz_listen(item))
        except ValueError as exc:
            rec.problem(f"item {i}: {exc}", None)
    return rec.finish()


# --- Last.fm CSV --------------------------------------------------------------------------------

_ARTIST_COLS = ("artist", "artist_name", "artist name", "artistname")
_ALBUM_COLS = ("album", "album_name", "album name", "release", "release_name")
_TITLE_COLS = ("track", "title", "track_name", "track name", "name", "song")
# Unix columns first: they carry no timezone doubt.
_DATE_COLS = ("uts", "date_uts", "timestamp", "utc_time", "date", "time", "played_at", "datetime")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def parse_lastfm_csv(path: str | os.PathLike[str], *, strict: bool = False) -> ImportResult:
    """A Last.fm scrobbles CSV.

    With a header row (any order; columns ``artist``, ``album``, ``track``/``title``/``name`` and
    ``uts`` or ``date``/``utc_time``/``timestamp``, case-insensitive) or without one, in which case
    the columns are ``artist, album, track, date`` (the common "Last.fm to CSV" export). Dates are
    unix seconds (or milliseconds) or ``DD Mon YYYY HH:MM`` in UTC. Rows without a date (a "now
    playing" row) are problems like any other bad row.
    """
    rec = _Records("lastfm", path, strict)
    bad: set[int] = set()
    numbered = _lines(path, bad)
    reader = csv.reader(text for _, text in numbered)
    cols: tuple[int, int | None, int, int] | None = None
    first_row = True
    last_line = 0
    try:
        for row in reader:
            start, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if any(n in bad for n in range(start, last_line + 1)):
                rec.problem("not valid UTF-8", start)
                continue
            if first_row:
                first_row = False
                header = [cell.strip().lower() for cell in row]
                a, t = _column(header, _ARTIST_COLS), _column(header, _TITLE_COLS)
                if a is not None and t is not None:
                    d = _column(header, _DATE_COLS)
                    if d is None:
                        raise HistoryImportError(
                            "header has no date column (uts or date)", file=path, line=start
                        )
                    cols = (a, _column(header, _ALBUM_COLS), t, d)
                    continue
                cols = (0, 1, 2, 3)
            a, al, t, d = cols
            if len(row) <= max(a, t, d, al or 0):
                rec.problem(f"expected at least {max(a, t, d, al or 0) + 1} columns, found {len(row)}", start)
                continue
            artist, title = _text(row[a]), _text(row[t])
            if artist is None or title is None:
                rec.problem("empty artist or track", start)
                continue
            try:
                at = parse_time(row[d])
            except ValueError as exc:
                rec.problem(str(exc), start)
                continue
            album = _text(row[al]) if al is not None else None
            rec.result.listens.append(Listen(artist, title, album, at))
    except csv.Error as exc:
        raise HistoryImportError(f"CSV: {exc}", file=path, line=reader.line_num) from None
    return rec.finish()


# --- .scrobbler.log -----------------------------------------------------------------------------


def parse_scrobbler_log(path: str | os.PathLike[str], *, strict: bool = False) -> ImportResult:
    """A Rockbox/portable player ``.scrobbler.log`` (Audioscrobbler portable format 1.1).

    Header lines start with ``#``; the first must be ``#AUDIOSCROBBLER/<version>``. Records are
    TAB-separated: artist, album, title, track number, length (s), rating (``L`` listened, ``S``
    skipped), unix timestamp, optional MusicBrainz id. ``S`` gives ``skipped=True``.
    """
    rec = _Records("scrobbler", path, strict)
    bad: set[int] = set()
    seen_header = False
    for lineno, text in _lines(path, bad):
        line = text.rstrip("\r\n")
        if not seen_header:
            if not line.startswith("#AUDIOSCROBBLER/"):
                raise HistoryImportError(
                    "not a .scrobbler.log: the first line must be #AUDIOSCROBBLER/<version>",
                    file=path,
                    line=lineno,
                )
            seen_header = True
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if lineno in bad:
            rec.problem("not valid UTF-8", lineno)
            continue
        fields = line.split("\t")
        if len(fields) < 7:
            rec.problem(f"expected 7 or 8 TAB-separated fields, found {len(fields)}", lineno)
            continue
        artist, album, title = _text(fields[0]), _text(fields[1]), _text(fields[2])
        rating = fields[5].strip()
        if artist is None or title is None:
            rec.problem("empty artist or title", lineno)
            continue
        if rating not in ("L", "S"):
            rec.problem(f"rating must be L or S, found {rating!r}", lineno)
            continue
        if not fields[6].strip().isdigit():
            rec.problem(f"timestamp must be unix seconds, found {fields[6]!r}", lineno)
            continue
        try:
            at = parse_time(fields[6])
        except ValueError as exc:
            rec.problem(str(exc), lineno)
            continue
        rec.result.listens.append(Listen(artist, title, album, at, skipped=rating == "S"))
    if not seen_header:
        raise HistoryImportError("empty file: no #AUDIOSCROBBLER header", file=path, line=1)
    return rec.finish()


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


def load_history(
    path: str | os.PathLike[str], fmt: str | None = None, *, strict: bool = False
) -> ImportResult:
    """Parse ``path`` as ``fmt`` (one of :data:`FORMATS`; detected from the content when None)."""
    fmt = fmt or detect_format(path)
    parsers = {
        "listenbrainz": parse_listenbrainz,
        "lastfm": parse_lastfm_csv,
        "scrobbler": parse_scrobbler_log,
    }
    if fmt not in parsers:
        raise ValueError(f"unknown history format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return parsers[fmt](path, strict=strict)


# --- matching -----------------------------------------------------------------------------------

_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
_BRACKETED = re.compile(r"[(\[{][^()\[\]{}]*[)\]}]")
_VERSION_SUFFIX = re.compile(
    r"\s+[-–—]\s+[^-–—]*\b(?:remaster(?:ed)?|live|version|edit|mix|mono|stereo|demo|bonus|"
    r"single|radio|acoustic|explicit|deluxe|instrumental)\b[^-–—]*$"
)
_FEAT = re.compile(r"(?:^|\s)(?:feat|ft|featuring)\b\.?\s.*$")
_DELETE = re.compile(r"['’‘`´.]")
_NON_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=65536)
def normalise(s: str | None) -> str:
    """A matching key for an artist, title or album name.

    Casefolded, accents stripped (``Beyoncé`` -> ``beyonce``), ``&`` read as ``and``, bracketed
    parts removed (``(Remastered 2011)``, ``[Live]``, ``(feat. X)``), a ``- 2011 Remaster``
    style suffix removed, ``feat.``/``ft.``/``featuring`` and what follows removed, apostrophes
    and dots dropped (``R.E.M.`` -> ``rem``), other punctuation turned into spaces, a leading
    ``the`` (or trailing ``, The``) removed. If nothing is left (``!!!``), the casefolded text.
    """
    if not s:
        return ""
    text = unicodedata.normalize("NFKD", s)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold().translate(_LETTERS)
    text = text.replace("&", " and ")
    while True:
        stripped = _BRACKETED.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = _VERSION_SUFFIX.sub("", text)
    text = _FEAT.sub("", text)
    text = re.sub(r",\s*the\s*$", "", text.strip())
    text = _DELETE.sub("", text)
    text = " ".join(_NON_WORD.sub(" ", text).split())
    if text.startswith("the "):
        text = text[4:]
    return text or " ".join(s.casefold().split())


def _components(path: str) -> list[str]:
    """Casefolded, NFC path components of a POSIX or Windows path or a ``file://`` URI."""
    if path.startswith("file:"):
        path = unquote(urlparse(path).path)
    path = unicodedata.normalize("NFC", path.replace("\\", "/")).casefold()
    return [c for c in path.split("/") if c and c != "."]


def _trailing_common(a: list[str], b: list[str]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def match_listens(
    listens: Iterable[Listen], tracks: Iterable[Track]
) -> tuple[list[tuple[Listen, int]], list[Listen]]:
    """Pair listens with library tracks; returns ``(matches, unmatched)``.

    1. By path, when the listen has one: tracks with the same file name (case-insensitive, NFC)
       are ranked by how many trailing path components agree; a single best match wins, so
       ``/mnt/player/Music/A/B/01.flac`` finds ``<root>/A/B/01.flac``. A tie falls through to 2.
    2. By ``normalise(artist)`` and ``normalise(title)``. Several candidates: those whose album
       also matches are kept when there are any; of what remains the lowest ``track_id`` is taken
       (the same recording in two places; the choice is stable across imports).
    """
    tracks = list(tracks)
    by_name: dict[str, list[tuple[list[str], Track]]] = defaultdict(list)
    by_tags: dict[tuple[str, str], list[Track]] = defaultdict(list)
    for track in tracks:
        comps = _components(os.fspath(track.path))
        if comps:
            by_name[comps[-1]].append((comps, track))
        if track.artist and track.title:
            by_tags[(normalise(track.artist), normalise(track.title))].append(track)

    matches: list[tuple[Listen, int]] = []
    unmatched: list[Listen] = []
    for listen in listens:
        track_id = _match_path(listen, by_name) if listen.path else None
        if track_id is None:
            track_id = _match_tags(listen, by_tags)
        if track_id is None:
            unmatched.append(listen)
        else:
            matches.append((listen, track_id))
    return matches, unmatched


def _match_path(listen: Listen, by_name: dict[str, list[tuple[list[str], Track]]]) -> int | None:
    comps = _components(listen.path or "")
    if not comps:
        return None
    scored = sorted(
        ((_trailing_common(comps, tcomps), track.track_id) for tcomps, track in by_name.get(comps[-1], ())),
        reverse=True,
    )
    if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    return scored[0][1]


def _match_tags(listen: Listen, by_tags: dict[tuple[str, str], list[Track]]) -> int | None:
    candidates = by_tags.get((normalise(listen.artist), normalise(listen.title)))
    if not candidates:
        return None
    if len(candidates) > 1 and listen.album:
        album = normalise(listen.album)
        same_album = [t for t in candidates if normalise(t.album) == album]
        candidates = same_album or candidates
    return min(t.track_id for t in candidates)


def match_rate(matches: list, unmatched: list) -> float:
    """Share of listens matched, 0.0 to 1.0 (0.0 when there were none)."""
    total = len(matches) + len(unmatched)
    return len(matches) / total if total else 0.0
