"""Listens matched to library tracks: by file path when the export has one, then by MusicBrainz
recording id when the export names one that a file's tags carry, else by normalised artist and
title, with the album breaking ties. File imports and the scrobble endpoint use this one matcher."""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlparse

from recengine.importers.records import Listen
from recengine.models import Track

#: Normalised names remembered per matcher (exports repeat artists and titles a lot).
NAME_CACHE = 65536

_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
_BRACKETED = re.compile(r"[(\[{][^()\[\]{}]*[)\]}]")
_VERSION_SUFFIX = re.compile(
    r"\s+[-–—]\s+[^-–—]*\b(?:remaster(?:ed)?|live|version|edit|mix|mono|stereo|demo|bonus|"
    r"single|radio|acoustic|explicit|deluxe|instrumental)\b[^-–—]*$"
)
_FEAT = re.compile(r"(?:^|\s)(?:feat|ft|featuring)\b\.?\s.*$")
_DELETE = re.compile(r"['’‘`´.]")
_NON_WORD = re.compile(r"[\W_]+")


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


class Matcher:
    """Finds the library track of a listen; built once per library, used for every listen.

    1. By path, when the listen has one: tracks with the same file name (case-insensitive, NFC)
       are ranked by how many trailing path components agree; a single best match wins, so
       ``/mnt/player/Music/A/B/01.flac`` finds ``<root>/A/B/01.flac``. A tie falls through to 2.
    2. By recording MBID, when the listen has one and ``mbids`` (the catalog's
       :meth:`~recengine.catalog.Catalog.track_ids_by_mbid`: the ``MUSICBRAINZ_TRACKID`` tags)
       knows it. An MBID that no file carries falls through to 3.
    3. By ``normalise(artist)`` and ``normalise(title)``. Several candidates: those whose album
       also matches are kept when there are any; of what remains the lowest ``track_id`` is taken
       (the same recording in two places; the choice is stable across imports).
    """

    def __init__(self, tracks: Iterable[Track], mbids: Mapping[str, int] | None = None):
        self.mbids = {m.strip().lower(): tid for m, tid in (mbids or {}).items()}
        self.key = functools.lru_cache(maxsize=NAME_CACHE)(normalise)
        self.by_name: dict[str, list[tuple[list[str], Track]]] = defaultdict(list)
        self.by_tags: dict[tuple[str, str], list[Track]] = defaultdict(list)
        for track in tracks:
            comps = _components(os.fspath(track.path))
            if comps:
                self.by_name[comps[-1]].append((comps, track))
            if track.artist and track.title:
                self.by_tags[(self.key(track.artist), self.key(track.title))].append(track)

    def match(self, listen: Listen) -> int | None:
        """The track id of ``listen``, or None when it is not in the library."""
        track_id = self._by_path(listen) if listen.path else None
        if track_id is None and listen.mbid:
            track_id = self.mbids.get(listen.mbid.strip().lower())
        return track_id if track_id is not None else self._by_tags(listen)

    def _by_path(self, listen: Listen) -> int | None:
        comps = _components(listen.path or "")
        if not comps:
            return None
        scored = sorted(
            ((_trailing_common(comps, tcomps), track.track_id) for tcomps, track in self.by_name.get(comps[-1], ())),
            reverse=True,
        )
        if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
            return None
        return scored[0][1]

    def _by_tags(self, listen: Listen) -> int | None:
        candidates = self.by_tags.get((self.key(listen.artist), self.key(listen.title)))
        if not candidates:
            return None
        if len(candidates) > 1 and listen.album:
            album = self.key(listen.album)
            same_album = [t for t in candidates if self.key(t.album) == album]
            candidates = same_album or candidates
        return min(t.track_id for t in candidates)


def match_listens(listens: Iterable[Listen], tracks: Iterable[Track] | Matcher
                  ) -> tuple[list[tuple[Listen, int]], list[Listen]]:
    """Pair listens with library tracks (see :class:`Matcher`); returns ``(matches, unmatched)``."""
    matcher = tracks if isinstance(tracks, Matcher) else Matcher(tracks)
    matches: list[tuple[Listen, int]] = []
    unmatched: list[Listen] = []
    for listen in listens:
        track_id = matcher.match(listen)
        if track_id is None:
            unmatched.append(listen)
        else:
            matches.append((listen, track_id))
    return matches, unmatched


def match_rate(matched: int, unmatched: int) -> float:
    """Share of listens matched, 0.0 to 1.0 (0.0 when there were none)."""
    total = matched + unmatched
    return matched / total if total else 0.0
