"""Where a playlist entry points: the path string a media server should see for a library file.

Shared by the playlist writers (M3U8 writes it raw, XSPF as a percent-encoded URI). A
:class:`~recengine.models.PathProfile` says how: ``relative`` to the playlist file's folder, or
``absolute`` with a prefix map (a container mount: ``{/srv/music: /data/music}``; MPD:
``{<music_directory>: ""}``).
"""

from __future__ import annotations

import os
from pathlib import Path

from recengine.models import PathProfile


def _without_trailing_slashes(prefix: str) -> str:
    """A prefix without its trailing slashes ("/" stays "/")."""
    stripped = prefix.rstrip("/")
    return stripped or "/"


def apply_prefix_map(path: str, prefix_map: tuple[tuple[str, str], ...]) -> str:
    """Rewrite the longest matching prefix of ``path``; prefixes match whole path components.

    ``/srv/music`` matches ``/srv/music`` and ``/srv/music/a.flac`` but not ``/srv/music2/a.flac``.
    A target of ``""`` makes the rest relative to that prefix (MPD: paths relative to its
    ``music_directory``). Unmatched paths are returned unchanged.
    """
    best: tuple[int, str, str] | None = None
    for src, dst in prefix_map:
        src = _without_trailing_slashes(src)
        if src == "/":
            matched = path.startswith("/")
            rest = path[1:]
        elif path == src or path.startswith(src + "/"):
            matched = True
            rest = path[len(src) + 1 :]
        else:
            matched = False
            rest = ""
        if matched and (best is None or len(src) > best[0]):
            best = (len(src), dst, rest)
    if best is None:
        return path
    _, dst, rest = best
    dst = dst.rstrip("/") if dst not in ("", "/") else dst
    if dst == "":
        return rest
    if not rest:
        return dst
    return dst + rest if dst.endswith("/") else f"{dst}/{rest}"


def map_path(path: Path | str, profile: PathProfile, playlist_path: Path | str | None) -> str:
    """The path string a media server should see for the file at absolute ``path``.

    ``relative``: relative to the playlist file's folder (``os.path.relpath``), ``/``-separated.
    ``absolute``: the path with ``profile.prefix_map`` applied (longest prefix wins). A file name
    that is not valid UTF-8 stays as Python holds it (lone surrogates, ``surrogateescape``), so
    ``os.fsencode`` gives back its bytes; each writer decides how to write such a path.
    """
    p = os.fspath(path)
    if profile.mode == "relative":
        if playlist_path is None:
            raise ValueError("relative path profile needs the playlist's own path")
        rel = os.path.relpath(p, os.path.dirname(os.path.abspath(os.fspath(playlist_path))))
        return rel.replace(os.sep, "/")
    if profile.mode == "absolute":
        return apply_prefix_map(p, profile.prefix_map)
    raise ValueError(f"unknown path profile mode {profile.mode!r} (expected 'relative' or 'absolute')")


#: Control characters as escapes in messages (a file name may hold a line break).
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in range(32)}


def shown(path: Path | str) -> str:
    """A file name for messages, on one line: bytes that are not valid UTF-8 and control
    characters as ``\\xff`` escapes (not as the lone surrogates Python holds such bytes in)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace").translate(_CONTROL_ESCAPES)
