"""``.scrobbler.log`` files of Rockbox and other portable players (Audioscrobbler portable
format 1.1)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from recengine.importers.records import HistoryImportError, Item, Listen, lines, mbid_of, parse_time, text_of


def read_scrobbler_log(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The listens of a ``.scrobbler.log``, and a :class:`HistoryImportError` per bad record.

    Header lines start with ``#``; the first must be ``#AUDIOSCROBBLER/<version>``. Records are
    TAB-separated: artist, album, title, track number, length (s), rating (``L`` listened, ``S``
    skipped), unix timestamp, optional MusicBrainz recording id (used for matching). ``S`` gives
    ``skipped=True``. A log marked
    ``#TZ/UNKNOWN`` holds device-local times, which are taken as they are.
    """
    bad: set[int] = set()
    seen_header = False
    for lineno, text in lines(path, bad):
        line = text.rstrip("\r\n")
        if not seen_header:
            if not line.startswith("#AUDIOSCROBBLER/"):
                raise HistoryImportError("not a .scrobbler.log: the first line must be #AUDIOSCROBBLER/<version>",
                                         file=path, line=lineno)
            seen_header = True
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if lineno in bad:
            bad.discard(lineno)
            yield HistoryImportError("not valid UTF-8", file=path, line=lineno)
            continue
        yield _listen(line.split("\t"), path, lineno)
    if not seen_header:
        raise HistoryImportError("empty file: no #AUDIOSCROBBLER header", file=path, line=1)


def _listen(fields: list[str], path: str | os.PathLike[str], line: int) -> Item:
    if len(fields) < 7:
        return HistoryImportError(f"expected 7 or 8 TAB-separated fields, found {len(fields)}", file=path, line=line)
    artist, album, title = text_of(fields[0]), text_of(fields[1]), text_of(fields[2])
    rating = fields[5].strip()
    if artist is None or title is None:
        return HistoryImportError("empty artist or title", file=path, line=line)
    if rating not in ("L", "S"):
        return HistoryImportError(f"rating must be L or S, found {rating!r}", file=path, line=line)
    if not fields[6].strip().isdigit():
        return HistoryImportError(f"timestamp must be unix seconds, found {fields[6]!r}", file=path, line=line)
    try:
        at = parse_time(fields[6])
    except ValueError as exc:
        return HistoryImportError(str(exc), file=path, line=line)
    mbid = mbid_of(fields[7]) if len(fields) > 7 else None
    return Listen(artist, title, album, at, skipped=rating == "S", mbid=mbid)
