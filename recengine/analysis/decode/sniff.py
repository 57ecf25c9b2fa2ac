"""What a file is before and after ffmpeg has seen it: a regular readable file, not an image,
document or playlist in disguise, and what ffmpeg's complaint about it means."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from recengine.analysis.decode.errors import DecodeFailure


def check_file(path: Path) -> os.stat_result:
    """A regular, readable, non-empty file, else a DecodeFailure of the right class."""
    try:
        st = os.stat(path)  # follows symlinks: a link to /dev/zero is a character device
    except FileNotFoundError:
        raise DecodeFailure("vanished", "the file disappeared before it could be read") from None
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    if not stat.S_ISREG(st.st_mode):
        raise DecodeFailure("not_audio", "not a regular file")
    if st.st_size == 0:
        raise DecodeFailure("empty", "the file is empty (0 bytes)")
    try:
        # non-blocking: if the path became a FIFO since the stat, opening it must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except PermissionError:
        raise DecodeFailure("permission", "permission denied") from None
    except FileNotFoundError:
        raise DecodeFailure("vanished", "the file disappeared before it could be read") from None
    except OSError as exc:
        raise DecodeFailure("not_audio", f"cannot be opened as a file ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise DecodeFailure("not_audio", "not a regular file")
    if st.st_size == 0:
        raise DecodeFailure("empty", "the file is empty (0 bytes)")
    return st


# Signatures of files that are certainly not audio. Playlists and concat lists are among them: they
# make ffmpeg's demuxers open other files (an HLS list can point anywhere), so they never reach it.
_NOT_AUDIO_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF",
    b"PK\x03\x04",
    b"\x7fELF",
    b"<?xml",
    b"<!DOCTYPE",
    b"<html",
    b"#EXTM3U",
    b"[playlist]",
    b"ffconcat",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"SQLite format 3",
)
_BOM = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def head_bytes(path: Path, n: int = 512) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def has_not_audio_magic(head: bytes) -> bool:
    if head.startswith(b"BM"):  # a Windows bitmap: "BM", file size, two reserved zero words
        return len(head) >= 10 and head[6:10] == b"\0\0\0\0"
    return head.startswith(_NOT_AUDIO_MAGIC)


def looks_like_text(head: bytes) -> bool:
    """The first bytes are printable text (UTF-8, a multi-byte character possibly cut at the end)."""
    for bom in _BOM:
        if head.startswith(bom):
            return True
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(c.isprintable() or c in "\r\n\t\f" for c in text)
    return False


# ffmpeg's words for "there is no audio stream to map" (they vary between versions)
_NO_STREAM = (
    "does not contain any stream",
    "matches no streams",
    "no audio stream",
    "output file is empty, nothing was encoded",
    "could not find any audio stream",
)
# generic last lines that say nothing about the file
_GENERIC = (
    "error marking filters as finished",
    "conversion failed!",
    "exiting normally",
    "error while filtering: end of file",
    "nothing was written into output file",
)


def _message(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(g in ln.lower() for g in _GENERIC)]
    return ((useful or lines or ["ffmpeg failed"])[0])[:200]


def classify_ffmpeg_error(path: Path, stderr: str) -> DecodeFailure:
    """The failure class of a file ffmpeg could not decode, from its stderr and the file's first bytes."""
    low = stderr.lower()
    last = _message(stderr)
    head = head_bytes(path)
    if has_not_audio_magic(head):  # an image has "no audio stream" too, but it is no audio file
        return DecodeFailure("not_audio", f"not an audio file ({last})")
    if any(marker in low for marker in _NO_STREAM):
        return DecodeFailure("no_audio_stream", "the file has no audio stream")
    if "permission denied" in low:
        return DecodeFailure("permission", "permission denied")
    if "no such file" in low or not os.path.exists(path):
        return DecodeFailure("vanished", "the file disappeared while it was read")
    if looks_like_text(head):
        return DecodeFailure("not_audio", f"not an audio file ({last})")
    return DecodeFailure("decode_error", last)
