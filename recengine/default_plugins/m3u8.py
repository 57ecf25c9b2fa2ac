"""Built-in M3U8 playlist writer (extended M3U, UTF-8).

Format, one line each, LF line ends, UTF-8 without BOM::

    #EXTM3U
    #RECENGINE:<marker uuid>          ownership marker: only files carrying it are replaced
    #PLAYLIST:<name>
    #EXTINF:<whole seconds or -1>,<artist - title>
    # why: <explanation>              only when the entry has one
    <path>                            raw (never percent-encoded), see :mod:`recengine.playlists.paths`

Display text is made single-line: CR, LF, TAB and other line breaks become spaces, control and
format characters are removed. A relative path starting with ``#`` or a space is written as ``./<path>``
so that it cannot read as a comment or lose its space. A path that cannot be written on one line (it contains CR, LF or
NUL) or is not valid UTF-8 (an undecodable file name) is left out with a warning; such files
still appear in XSPF playlists, whose locations are percent-encoded.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from recengine.fileio import read_head
from recengine.models import PathProfile, Playlist, PlaylistEntry
from recengine.playlists.paths import map_path, shown
from recengine.playlists.text import MARKER_SCAN_BYTES, clean_text, known_duration
from recengine.plugin.spec import hookimpl

log = logging.getLogger(__name__)

MARKER_PREFIX = "#RECENGINE:"


def display_of(entry: PlaylistEntry) -> str:
    """``artist - title`` when both are known, else the title, else the file name without suffix."""
    artist, title = clean_text(entry.artist), clean_text(entry.title)
    if artist and title:
        return f"{artist} - {title}"
    return title or clean_text(PurePosixPath(str(entry.path)).stem)


def whole_seconds(duration: float | None) -> int:
    """Duration for ``#EXTINF``: rounded seconds, or -1 when unknown, negative or not finite."""
    d = known_duration(duration)
    return -1 if d is None else int(round(d))


def path_line(text: str) -> str:
    """``text`` as one raw UTF-8 line of an M3U8 file; ValueError says why it cannot be one.

    A relative path starting with ``#`` (it would read as a comment) or with whitespace (which
    readers strip) gets a ``./`` in front.
    """
    if not text or any(ch in text for ch in "\r\n\x00\x85\u2028\u2029"):
        raise ValueError("it is empty or holds a line break or NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: an undecodable file name
        raise ValueError("its name is not valid UTF-8 (M3U8 files are UTF-8; an XSPF playlist can "
                         "hold it, percent-encoded)") from None
    if text[0] == "#" or text[0].isspace():
        return "./" + text
    return text


class M3U8Writer:
    """Extended M3U, UTF-8, raw paths; see the module docstring for the exact format."""

    name = "m3u8"
    suffix = ".m3u8"

    def render(self, playlist: Playlist, profile: PathProfile, playlist_path: Path | None = None) -> bytes:
        lines = ["#EXTM3U", f"{MARKER_PREFIX}{clean_text(playlist.marker)}"]
        name = clean_text(playlist.name)
        if name:
            lines.append(f"#PLAYLIST:{name}")
        for entry in playlist.entries:
            mapped = map_path(entry.path, profile, playlist_path)
            try:
                target = path_line(mapped)
            except ValueError as exc:
                log.warning("m3u8 playlist %r: left out %s: %s", playlist.name, shown(entry.path), exc)
                continue
            lines.append(f"#EXTINF:{whole_seconds(entry.duration)},{display_of(entry)}")
            why = clean_text(entry.why)
            if why:
                lines.append(f"# why: {why}")
            lines.append(target)
        return ("\n".join(lines) + "\n").encode("utf-8")

    def marker_of(self, path: Path | str) -> str | None:
        return marker_of(path)


def marker_of(path: Path | str) -> str | None:
    """The ``#RECENGINE:`` marker in the header of an M3U/M3U8 file, or None.

    Only the comment lines before the first entry are searched (within the first 64 KiB); a BOM
    and CRLF line ends are tolerated, so a user's file edited elsewhere is still recognised. A
    missing file or a non-regular file gives None.
    """
    head = read_head(path, MARKER_SCAN_BYTES)
    if not head:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return None
        if line.startswith(MARKER_PREFIX):
            value = line[len(MARKER_PREFIX) :].strip()
            return value or None
    return None


@hookimpl
def register_playlist_writers(register):
    register(M3U8Writer())
