"""The ListenBrainz user-data export: the ZIP that *Settings > Export your data* gives.

It holds ``user.json``, the listens as JSON lines per month (``listens/<year>/<month>.jsonl``,
each listen with ``track_metadata.mbid_mapping`` where ListenBrainz mapped it), ``feedback.jsonl``
(loves and hates: ``recording_mbid``, ``recording_msid``, ``score``, ``created``) and
``pinned_recording.jsonl``. The listens are read month by month, then the feedback; a love that
names only an MSID (a recording ListenBrainz could not map) is matched through the listens of the
same recording in the export. Members are streamed out of the ZIP, never unpacked to disk or read
whole. Other ``.jsonl``/``.json`` members (converters write ``listens.jsonl`` at the top) are
read as listens too; ``user.json`` and ``pinned_recording.jsonl`` are left out.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Iterator

from recengine.importers.listenbrainz import Recordings, array_items, is_feedback, jsonl_items
from recengine.importers.records import HistoryImportError, Item, stream_lines

ZIP_MAGIC = b"PK\x03\x04"
FEEDBACK = "feedback.jsonl"
LEFT_OUT = {"user.json", "pinned_recording.jsonl"}


def is_zip(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a ZIP file."""
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def _order(name: str) -> list[tuple[int, int | str]]:
    """Natural order of member names: ``listens/2023/2.jsonl`` before ``listens/2023/11.jsonl``."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]


def read_export_zip(path: str | os.PathLike[str]) -> Iterator[Item]:
    """The listens, then the loves and hates, of a ListenBrainz export ZIP; a
    :class:`HistoryImportError` per bad record (named ``<zip>/<member>`` and its line)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HistoryImportError(f"not a readable ZIP file ({exc})", file=path) from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        feedback = [m for m in members if os.path.basename(m.filename) == FEEDBACK]
        listens = sorted((m for m in members if m.filename.endswith((".jsonl", ".json")) and m not in feedback
                          and os.path.basename(m.filename) not in LEFT_OUT), key=lambda m: _order(m.filename))
        if not listens and not feedback:
            raise HistoryImportError("a ZIP without listens/*.jsonl or feedback.jsonl: not a ListenBrainz export",
                                     file=path)
        recordings = Recordings(wanted=_msids_wanted(archive, feedback, path))
        for member in listens + feedback:
            yield from _member(archive, member, path, recordings)


def _open(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: str | os.PathLike[str]):
    try:
        return archive.open(member)
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:  # encrypted, unknown compression
        raise HistoryImportError(f"cannot read {member.filename} ({exc})", file=path) from None


def _member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: str | os.PathLike[str],
            recordings: Recordings) -> Iterator[Item]:
    name = f"{os.fspath(path)}/{member.filename}"
    try:
        with _open(archive, member, path) as raw:
            first = raw.peek(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] if hasattr(raw, "peek") else b""
            if first == b"[":
                yield from array_items(io.TextIOWrapper(raw, encoding="utf-8-sig"), name, recordings)
            else:
                yield from jsonl_items(raw, name, recordings)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # a CRC error, a ZIP cut short
        raise HistoryImportError(f"the ZIP is damaged ({exc})", file=name) from None


def _msids_wanted(archive: zipfile.ZipFile, feedback: list[zipfile.ZipInfo], path: str | os.PathLike[str]
                  ) -> set[str]:
    """The MSIDs of the loves and hates that name no MBID (the listens are searched for them)."""
    wanted: set[str] = set()
    for member in feedback:
        try:
            with _open(archive, member, path) as raw:
                for _, text in stream_lines(raw, member.filename, set()):
                    try:
                        obj = json.loads(text)
                    except (ValueError, RecursionError):
                        continue  # reported when the member is read
                    if is_feedback(obj) and not obj.get("recording_mbid") and isinstance(obj.get("recording_msid"),
                                                                                         str):
                        wanted.add(obj["recording_msid"])
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise HistoryImportError(f"the ZIP is damaged ({exc})", file=f"{os.fspath(path)}/{member.filename}") from None
    return wanted
