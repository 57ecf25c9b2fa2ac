"""Reconcile the library folders with the catalog: new, changed, moved and removed files.

A changed file is one whose size or mtime differs; a new path whose content fingerprint matches a
vanished track is a move and keeps that track's id and history. A folder that is missing,
unreadable, or suddenly empty is UNAVAILABLE: nothing under it is deleted. Removal is soft
(``missing_since``) and a reconcile that would remove more than ``scan.mass_delete_ratio`` of a
folder asks for ``--confirm-mass-delete``; tracks missing for longer than ``scan.purge_after_days``
are forgotten at the end of a full reconcile. The watcher's hints for single files
(:meth:`Reconciler.reconcile_paths`) go through the same diff.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import logging
import os
import stat
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recengine.catalog import Catalog, TrackFile
from recengine.library.report import ScanReport
from recengine.library.settings import ScanSettings

log = logging.getLogger(__name__)

SENTINEL = ".recengine-root"
SIG_CHUNK = 64 * 1024
#: A reconcile may remove up to this many tracks of a folder whatever its size.
MASS_DELETE_MIN = 10
#: Removals the watcher reports are counted over this many seconds for the mass-delete rule.
REMOVAL_WINDOW_S = 600.0


def content_sig(path: Path, size: int) -> str:
    """A fingerprint of the file's content: size plus hashed head, middle and tail."""
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO swapped in cannot block us
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        for offset in sorted({0, max(0, size // 2 - SIG_CHUNK // 2), max(0, size - SIG_CHUNK)}):
            fh.seek(offset)
            h.update(fh.read(SIG_CHUNK))
    return h.hexdigest()


@dataclass(frozen=True)
class FoundFile:
    relpath: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class Skip:
    """A file left out on purpose: ``reason`` is a class (see :mod:`recengine.catalog.skipped`)."""

    relpath: str
    reason: str
    detail: str = ""


@dataclass
class Walk:
    """What a walk of one root found: audio files, files left out and why, and folders it could
    not read (relative path -> why): nothing under those is taken for gone."""

    files: dict[str, FoundFile] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    def skip_rows(self) -> list[tuple[str, str, str]]:
        """``(relpath, reason, detail)`` of everything left out, unreadable folders included."""
        return [*((k.relpath, k.reason, k.detail) for k in self.skipped),
                *((folder, "unreadable_folder", why) for folder, why in self.unreadable.items())]

    def hidden(self, relpath: str) -> bool:
        """True when ``relpath`` lies under a folder that could not be read."""
        return any(relpath.startswith(folder + os.sep) for folder in self.unreadable)


@dataclass
class RootState:
    path: Path
    available: bool
    reason: str = ""
    walk: Walk = field(default_factory=Walk)


def is_folder_link(path: str | os.PathLike[str]) -> bool:
    """A symbolic link to a folder, whatever its name: never followed, but listed as skipped
    (``directory_symlink``) by the walk and by the watcher's hints alike."""
    return not os.path.basename(path).startswith(".") and os.path.islink(path) and os.path.isdir(path)


def examine(root: Path, rel: str, *, symlink: bool) -> FoundFile | Skip:
    """The audio file at ``root/rel`` if it may be analysed: a regular file, or a symlink to one
    inside the root; else why it is left out. OSError: it vanished or cannot be read."""
    path = os.path.join(root, rel)
    try:
        st = os.stat(path)
    except OSError as exc:
        if symlink and exc.errno == errno.ELOOP:
            return Skip(rel, "symlink_loop", os.readlink(path))
        if symlink and exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return Skip(rel, "broken_symlink", os.readlink(path))
        raise
    if symlink:
        target = os.path.realpath(path)
        if stat.S_ISDIR(st.st_mode):
            return Skip(rel, "directory_symlink", target)
        if not target.startswith(os.path.realpath(root) + os.sep):
            return Skip(rel, "symlink_outside", target)
    if stat.S_ISREG(st.st_mode):
        return FoundFile(rel, st.st_size, st.st_mtime_ns, st.st_ino)
    kind = "fifo" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "device"
    return Skip(rel, kind)


def walk_root(root: Path, extensions: frozenset[str], exclude: Iterable[str], skip_dirs: Iterable[Path]) -> Walk:
    """Audio files under ``root``: regular files only, directory symlinks not followed, file
    symlinks only when they point inside the root; what was left out and why; and the folders
    that could not be read."""
    walk = Walk()
    skip = {os.path.realpath(d) for d in skip_dirs}
    exclude = list(exclude)
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot read folder %s: %s; its tracks are kept as they are", folder, exc.strerror)
            if folder != str(root):
                walk.unreadable[os.path.relpath(folder, root)] = exc.strerror or str(exc)
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith(".") and os.path.realpath(entry.path) not in skip:
                        stack.append(entry.path)
                    continue
                symlink = entry.is_symlink()
                if os.path.splitext(entry.name)[1].lower() not in extensions and not (
                        symlink and not entry.name.startswith(".") and entry.is_dir()):
                    continue
                rel = os.path.relpath(entry.path, root)
                if any(fnmatch.fnmatch(rel, pat) for pat in exclude):
                    continue
                found = examine(root, rel, symlink=symlink)
            except OSError:
                continue  # vanished or unreadable entry: the next reconcile sees it again
            if isinstance(found, Skip):
                walk.skipped.append(found)
            else:
                walk.files[rel] = found
    return walk


class Reconciler:
    """Brings the catalog's tracks in line with the files under the library folders.

    ``emit(hook, **kwargs)`` announces ``track_changed`` (moves) and ``track_removed``;
    ``ignore_dirs`` (playlist output folders) are never walked.
    """

    def __init__(self, catalog: Catalog, settings: ScanSettings, emit: Callable[..., None], *,
                 ignore_dirs: Iterable[Path] = ()):  # fmt: skip
        self.catalog = catalog
        self.settings = settings
        self.emit = emit
        self.ignore_dirs = [Path(d) for d in ignore_dirs]
        self._removals: dict[Path, deque[tuple[float, int]]] = {}  # root -> (when, how many) the watcher removed

    # roots --------------------------------------------------------------------------------------

    def check_root(self, root: Path) -> RootState:
        state = RootState(root, available=False)
        root_id = self.catalog.root_id(str(root))
        info = self.catalog.root_info(root_id)
        if not root.is_dir():
            state.reason = "folder not found (unplugged or unmounted?)"
        elif not os.access(root, os.R_OK | os.X_OK):
            state.reason = "folder not readable (permission denied)"
        else:
            sentinel = root / SENTINEL
            recorded = info["sentinel"]
            if recorded and not sentinel.exists():
                state.reason = f"its marker file {SENTINEL} is gone (a different or unmounted disk?)"
            else:
                state.available = True
        return state

    def _finish_root(self, root_id: int, state: RootState, known_present: int) -> None:
        info = self.catalog.root_info(root_id)
        if state.available and not state.walk.files and not state.walk.unreadable and known_present:
            state.available = False
            state.reason = f"folder is empty but {known_present} tracks were here (unmounted?)"
        if not state.available:
            self.catalog.set_root(root_id, state="unavailable")
            return
        fields: dict[str, object] = {"state": "available", "last_seen": time.time()}
        try:
            fields["device"] = os.stat(state.path).st_dev
        except OSError:
            pass
        if not info["sentinel"]:
            marker = state.path / SENTINEL
            try:
                if marker.exists():
                    fields["sentinel"] = marker.read_text().strip() or "present"
                else:
                    token = str(uuid.uuid4())
                    marker.write_text(token + "\n")
                    fields["sentinel"] = token
            except OSError:
                pass  # read-only library: availability rests on presence and non-emptiness
        self.catalog.set_root(root_id, **fields)

    # the full reconcile -------------------------------------------------------------------------

    def reconcile(self, report: ScanReport, *, confirm_mass_delete: bool = False) -> None:
        library = self.settings.library
        for root in library.folders:
            state = self.check_root(root)
            root_id = self.catalog.root_id(str(root))
            known = self.catalog.files_under(root_id)
            present = {k: v for k, v in known.items() if v.missing_since is None}
            if state.available:
                state.walk = walk_root(root, library.extensions, library.exclude, self.ignore_dirs)
            self._finish_root(root_id, state, len(present))
            if not state.available:
                report.unavailable.append((str(root), state.reason))
                log.warning("%s is unavailable: %s; nothing under it is changed", root, state.reason)
                continue
            report.unreadable += [(str(root / folder), why) for folder, why in state.walk.unreadable.items()]
            report.skipped += [(str(root / k.relpath), k.reason) for k in state.walk.skipped]
            self.catalog.replace_skipped(root_id, state.walk.skip_rows())
            known = {rel: t for rel, t in known.items() if not state.walk.hidden(rel)}
            self._diff_root(root_id, root, state.walk.files, known, report, confirm_mass_delete)
        self._purge(report)

    def _purge(self, report: ScanReport) -> None:
        """Forget tracks missing for longer than ``scan.purge_after_days`` (with their features
        and history); a track missing for less keeps everything and comes back as it was."""
        days = self.settings.purge_after_days
        if days > 0:
            report.purged = self.catalog.purge_missing(older_than=time.time() - days * 86400)
            if report.purged:
                log.info("forgot %d tracks missing for more than %g days", report.purged, days)

    def _diff_root(self, root_id: int, root: Path, files: dict[str, FoundFile], known: dict[str, TrackFile],
                   report: ScanReport, confirm: bool, removals: bool = True) -> None:
        present = {k: v for k, v in known.items() if v.missing_since is None}
        gone = [t for rel, t in present.items() if rel not in files]
        gone_by_sig: dict[str, list[TrackFile]] = {}
        for t in gone:
            gone_by_sig.setdefault(t.content_sig, []).append(t)
        moved_ids: set[int] = set()
        for rel, f in sorted(files.items()):
            old = known.get(rel)
            if old is not None and old.missing_since is None and (old.size, old.mtime_ns) == (f.size, f.mtime_ns):
                report.unchanged += 1
                continue
            try:
                sig = content_sig(root / rel, f.size)
            except PermissionError:
                self._unreadable(root_id, rel, f, old, report)
                continue
            except OSError:
                continue
            if old is not None:  # changed in place, or back after being missing
                self.catalog.update_file(old.track_id, size=f.size, mtime_ns=f.mtime_ns, inode=f.inode, content_sig=sig)
                if sig != old.content_sig:
                    report.updated += 1
                    report.changed_ids.append(old.track_id)
                else:
                    report.unchanged += 1
                continue
            source = gone_by_sig.get(sig) or [t for t in self.catalog.tracks_with_sig(sig) if self._vanished(t)]
            source = [t for t in source if t.track_id not in moved_ids]
            if source:
                moved = source[0]
                moved_ids.add(moved.track_id)
                self.catalog.update_file(moved.track_id, size=f.size, mtime_ns=f.mtime_ns, inode=f.inode,
                                         content_sig=sig, root_id=root_id, relpath=rel)
                report.moved += 1
                self._announce("track_changed", moved.track_id)
                continue
            self.catalog.add_track(root_id, rel, f.size, f.mtime_ns, f.inode, sig)
            report.added += 1
        really_gone = [t for t in gone if t.track_id not in moved_ids] if removals else []
        if really_gone and len(really_gone) > self._mass_delete_limit(len(present)) and not confirm:
            report.mass_delete_blocked.append((str(root), len(really_gone), len(present)))
            log.warning("%s: %d of %d tracks are gone; not removing them without --confirm-mass-delete",
                        root, len(really_gone), len(present))
            return
        if really_gone:
            self.catalog.mark_missing(t.track_id for t in really_gone)
            report.removed += len(really_gone)
            for t in really_gone:
                self._announce("track_removed", t.track_id)

    def _mass_delete_limit(self, present: int) -> float:
        """More removals than this from a folder of ``present`` tracks need a confirmation."""
        return max(MASS_DELETE_MIN, self.settings.mass_delete_ratio * present)

    def _announce(self, hook: str, track_id: int) -> None:
        track = self.catalog.track(track_id)
        if track is not None:
            self.emit(hook, track=track)

    def _unreadable(self, root_id: int, rel: str, f: FoundFile, old: TrackFile | None, report: ScanReport) -> None:
        """A file we may not read: in the ledger as ``permission`` (retried later), never silent."""
        if old is None:
            track_id = self.catalog.add_track(root_id, rel, f.size, f.mtime_ns, f.inode, "")
            report.added += 1
        else:
            track_id = old.track_id
            self.catalog.update_file(track_id, size=f.size, mtime_ns=f.mtime_ns, inode=f.inode, content_sig="")
        self.catalog.record_failure(track_id, "permission", "permission denied", f.size, f.mtime_ns)
        report.failed["permission"] += 1

    def _vanished(self, t: TrackFile) -> bool:
        """A catalog track whose file is gone: missing already, or not at its path any more."""
        if t.missing_since:
            return True
        track = self.catalog.track(t.track_id)
        return track is not None and not os.path.lexists(track.path)

    # watcher hints ------------------------------------------------------------------------------

    def _remove_hinted(self, root_id: int, root: Path, gone: list[TrackFile], known: dict[str, TrackFile],
                       report: ScanReport) -> None:  # fmt: skip
        """Removals the watcher saw, under the rules of a full reconcile: a root left empty is
        unavailable, and more removals than the mass-delete limit within REMOVAL_WINDOW_S are held
        back (``recengine scan --confirm-mass-delete`` applies them)."""
        gone = [t for t in gone if t.missing_since is None]
        if not gone:
            return
        present = sum(1 for t in known.values() if t.missing_since is None)
        if _empty(root):
            self.catalog.set_root(root_id, state="unavailable")
            report.unavailable.append((str(root), f"folder is empty but {present} tracks were here (unmounted?)"))
            log.warning("%s is empty but %d tracks were here (unmounted?); nothing under it is changed", root, present)
            return
        now = time.monotonic()
        window = self._removals.setdefault(root, deque())
        while window and now - window[0][0] > REMOVAL_WINDOW_S:
            window.popleft()
        recent = sum(n for _, n in window)
        if recent + len(gone) > self._mass_delete_limit(present + recent):
            report.mass_delete_blocked.append((str(root), recent + len(gone), present + recent))
            log.warning("%s: %d of %d tracks gone within %.0f s; not removing them (run `recengine scan "
                        "--confirm-mass-delete` to remove them)", root, recent + len(gone), present + recent,
                        REMOVAL_WINDOW_S)
            return
        window.append((now, len(gone)))
        self.catalog.mark_missing(t.track_id for t in gone)
        report.removed += len(gone)
        for t in gone:
            self._announce("track_removed", t.track_id)

    def _root_of(self, path: Path) -> tuple[Path, str] | None:
        for root in self.settings.library.folders:
            try:
                return root, str(Path(os.path.abspath(path)).relative_to(root))
            except ValueError:
                continue
        return None

    def reconcile_paths(self, report: ScanReport, settled: Iterable[Path] = (), removed: Iterable[Path] = ()) -> None:
        """Apply watcher hints for single files: removals first (so a move is seen as one), then
        new or changed files. A removal under a root that is not confirmed present is ignored."""
        extensions = self.settings.library.extensions
        by_root: dict[Path, tuple[dict[str, FoundFile], set[str]]] = {}
        for path in removed:
            hit = self._root_of(path)
            if hit is None or not _gone(path):
                continue
            by_root.setdefault(hit[0], ({}, set()))[1].add(hit[1])
        skipped: dict[Path, list[Skip]] = {}
        for path in settled:
            hit = self._root_of(path)
            if hit is None or not (os.path.splitext(str(path))[1].lower() in extensions or is_folder_link(path)):
                continue
            try:
                found = examine(hit[0], hit[1], symlink=os.path.islink(path))
            except OSError:
                by_root.setdefault(hit[0], ({}, set()))[1].add(hit[1])
                continue
            if isinstance(found, Skip):
                skipped.setdefault(hit[0], []).append(found)
            else:
                by_root.setdefault(hit[0], ({}, set()))[0][hit[1]] = found
        for root, skips in skipped.items():
            root_id = self.catalog.root_id(str(root))
            for k in skips:
                self.catalog.note_skipped(root_id, k.relpath, k.reason, k.detail)
                report.skipped.append((str(root / k.relpath), k.reason))
        for root, (files, gone) in by_root.items():
            state = self.check_root(root)
            if not state.available:
                report.unavailable.append((str(root), state.reason))
                continue
            root_id = self.catalog.root_id(str(root))
            known = self.catalog.files_under(root_id)
            self.catalog.forget_skipped(root_id, [*gone, *files])
            self._remove_hinted(root_id, root, [known[rel] for rel in gone if rel in known], known, report)
            if files:
                known = self.catalog.files_under(root_id)
                subset = {rel: t for rel, t in known.items() if rel in files}
                self._diff_root(root_id, root, files, subset, report, confirm=True, removals=False)


def _gone(path: Path) -> bool:
    """True when ``path`` is really not there (not: its folder cannot be read)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError as exc:
        return exc.errno == errno.ENOENT
    return False


def _empty(root: Path) -> bool:
    """True when ``root`` holds nothing but our marker file (an unmounted disk's mount point)."""
    try:
        with os.scandir(root) as entries:
            return all(entry.name == SENTINEL for entry in entries)
    except OSError:
        return False
