"""Built-in XSPF playlist writer (XML Shareable Playlist Format, version 1).

Output, UTF-8, LF line ends, two-space indent, deterministic bytes::

    <?xml version="1.0" encoding="UTF-8"?>
    <playlist version="1" xmlns="http://xspf.org/ns/0/">
      <title>name</title>
      <annotation>description</annotation>                      (when set)
      <meta rel="https://recengine.invalid/xspf/marker">uuid</meta>
      <trackList>
        <track>
          <location>file:///srv/music/A%20B/01.flac</location>
          <title>..</title><creator>artist</creator>               (each only when known)
          <annotation>why</annotation><album>..</album><duration>ms</duration>
        </track>
      </trackList>
    </playlist>

Locations are percent-encoded URIs of the path's bytes (RFC 3986: everything but unreserved
characters and ``/``): ``file://`` URIs for absolute paths, relative references for relative
paths (a ``:`` in the first segment is encoded too, so it cannot read as a scheme). Text is made
single-line like in M3U8, characters XML 1.0 forbids are removed and ``&``, ``<``, ``>`` escaped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote
from xml.etree.ElementTree import ParseError, XMLPullParser

from recengine.fileio import read_head
from recengine.models import PathProfile, Playlist
from recengine.playlists.paths import map_path
from recengine.playlists.text import MARKER_SCAN_BYTES, clean_text, known_duration
from recengine.plugin.spec import hookimpl

XSPF_NS = "http://xspf.org/ns/0/"
#: ``rel`` of the ``<meta>`` element that carries recengine's ownership marker.
MARKER_REL = "https://recengine.invalid/xspf/marker"

# Characters outside XML 1.0's Char production (after clean_text only U+FFFE/U+FFFF remain).
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


def xml_text(value: object) -> str:
    """One line of display text, safe as XML 1.0 character data."""
    text = _XML_FORBIDDEN.sub("", clean_text(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def location_uri(mapped: str) -> str:
    """A percent-encoded URI for a mapped path string (see :func:`recengine.playlists.paths.map_path`)."""
    if mapped.startswith("/"):
        return "file://" + quote(os.fsencode(mapped), safe="/")
    if _DRIVE.match(mapped):  # a prefix map onto a Windows server: file:///C:/Music/...
        rest = mapped[3:].replace("\\", "/")
        return f"file:///{mapped[0]}:/" + quote(os.fsencode(rest), safe="/")
    return quote(os.fsencode(mapped), safe="/")


class XSPFWriter:
    """XSPF version 1; see the module docstring for the exact output."""

    name = "xspf"
    suffix = ".xspf"

    def render(self, playlist: Playlist, profile: PathProfile, playlist_path: Path | None = None) -> bytes:
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<playlist version="1" xmlns="{XSPF_NS}">',
        ]
        title = xml_text(playlist.name)
        if title:
            out.append(f"  <title>{title}</title>")
        description = xml_text(playlist.description)
        if description:
            out.append(f"  <annotation>{description}</annotation>")
        out.append(f'  <meta rel="{MARKER_REL}">{xml_text(playlist.marker)}</meta>')
        out.append("  <trackList>")
        for entry in playlist.entries:
            out.append("    <track>")
            location = location_uri(map_path(entry.path, profile, playlist_path))
            out.append(f"      <location>{xml_text(location)}</location>")
            for tag, value in (
                ("title", entry.title),
                ("creator", entry.artist),
                ("annotation", entry.why),
                ("album", entry.album),
            ):
                text = xml_text(value)
                if text:
                    out.append(f"      <{tag}>{text}</{tag}>")
            seconds = known_duration(entry.duration)
            if seconds is not None:
                out.append(f"      <duration>{int(round(seconds * 1000))}</duration>")
            out.append("    </track>")
        out.append("  </trackList>")
        out.append("</playlist>")
        return ("\n".join(out) + "\n").encode("utf-8")

    def marker_of(self, path: Path | str) -> str | None:
        return marker_of(path)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def marker_of(path: Path | str) -> str | None:
    """The recengine marker of an XSPF file (``<meta rel=MARKER_REL>`` under ``<playlist>``), or None.

    Reads at most the first 64 KiB and stops at ``<trackList>``; a file that is missing, not a
    regular file or not XML gives None.
    """
    head = read_head(path, MARKER_SCAN_BYTES)
    if not head:
        return None
    parser = XMLPullParser(events=("start", "end"))
    depth = 0
    try:
        parser.feed(head)
        for event, elem in parser.read_events():
            if event == "start":
                depth += 1
                if depth == 1 and _local(elem.tag) != "playlist":
                    return None
                if depth == 2 and _local(elem.tag) == "trackList":
                    return None
                continue
            depth -= 1
            if depth == 1 and _local(elem.tag) == "meta" and elem.get("rel") == MARKER_REL:
                value = (elem.text or "").strip()
                return value or None
    except ParseError:
        return None
    return None


@hookimpl
def register_playlist_writers(register):
    register(XSPFWriter())
