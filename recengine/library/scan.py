"""``recengine scan``: reconcile the library folders with the catalog, then featurise.

Reconcile finds new, changed (size/mtime), removed and moved files (a new path whose content
fingerprint matches a vanished track keeps that track's id and history). A folder that is missing,
unreadable, or suddenly empty is UNAVAILABLE: nothing under it is deleted. Removal is soft
(``missing_since``) and a scan that would remove more than ``scan.mass_delete_ratio`` of a folder
asks for ``--confirm-mass-delete``. Featurising runs in worker processes; every result is committed
as it arrives, so an interrupted scan loses nothing and the next one continues.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import stat
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recengine.analysis.featurise import FeatureJob, FeaturePool, FeatureResult, WorkerSettings
from recengine.catalog import TrackFile

log = logging.getLogger(__name__)

SENTINEL = ".recengine-root"
SIG_CHUNK = 64 * 1024


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


@dataclass
class RootState:
    path: Path
    available: bool
    reason: str = ""
    files: dict[str, FoundFile] = field(default_factory=dict)


@dataclass
class ScanReport:
    """What a scan did, for the summary line and for tests."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    featurised: int = 0
    failed: Counter = field(default_factory=Counter)
    unavailable: list[tuple[str, str]] = field(default_factory=list)
    mass_delete_blocked: list[tuple[str, int, int]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    changed_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.moved} moved",
                 f"{self.removed} removed", f"{self.featurised} featurised"]
        failed = sum(self.failed.values())
        if failed:
            parts.append(f"{failed} failed (" + ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) + ")")
        else:
            parts.append("0 failed")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


def walk_root(root: Path, extensions: frozenset[str], exclude: list[str], skip_dirs: list[Path]) -> dict[str, FoundFile]:
    """Audio files under ``root``: regular files only, directory symlinks not followed, file
    symlinks only when they point inside the root."""
    found: dict[str, FoundFile] = {}
    real_root = os.path.realpath(root)
    skip = {os.path.realpath(d) for d in skip_dirs}
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot read folder %s: %s", folder, exc.strerror)
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith(".") and os.path.realpath(entry.path) not in skip:
                        stack.append(entry.path)
                    continue
                if os.path.splitext(entry.name)[1].lower() not in extensions:
                    continue
                rel = os.path.relpath(entry.path, root)
                if any(fnmatch.fnmatch(rel, pat) for pat in exclude):
                    continue
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not target.startswith(real_root + os.sep):
                        continue
                st = entry.stat(follow_symlinks=True)
                if not stat.S_ISREG(st.st_mode):
                    continue
                found[rel] = FoundFile(rel, st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                continue  # vanished or unreadable entry: the next reconcile sees it again
    return found


class Scanner:
    """Reconcile + featurise for one engine."""

    def __init__(self, engine, *, progress: bool | None = None, out=None):
        self.engine = engine
        self.catalog = engine.catalog
        self.config = engine.config
        self.out = out if out is not None else sys.stderr
        self.progress = self.out.isatty() if progress is None else progress

    # reconcile ----------------------------------------------------------------------------------

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
        if state.available and not state.files and known_present:
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

    def reconcile(self, report: ScanReport, *, confirm_mass_delete: bool = False) -> None:
        cfg = self.config
        extensions = frozenset(e.lower() for e in cfg["library.extensions"])
        skip_dirs = [Path(d) for d in self._output_dirs()]
        for root in cfg.library_folders:
            root = Path(os.path.abspath(root))
            state = self.check_root(root)
            root_id = self.catalog.root_id(str(root))
            known = self.catalog.files_under(root_id)
            present = {k: v for k, v in known.items() if v.missing_since is None}
            if state.available:
                state.files = walk_root(root, extensions, cfg["library.exclude"], skip_dirs)
            self._finish_root(root_id, state, len(present))
            if not state.available:
                report.unavailable.append((str(root), state.reason))
                log.warning("%s is unavailable: %s; nothing under it is changed", root, state.reason)
                continue
            self._diff_root(root_id, root, state.files, known, report, confirm_mass_delete)

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
                track = self.catalog.track(moved.track_id)
                if track is not None:
                    self.engine.emit("track_changed", track=track)
                continue
            self.catalog.add_track(root_id, rel, f.size, f.mtime_ns, f.inode, sig)
            report.added += 1
        really_gone = [t for t in gone if t.track_id not in moved_ids] if removals else []
        ratio = self.config["scan.mass_delete_ratio"]
        if really_gone and len(really_gone) > max(10, ratio * len(present)) and not confirm:
            report.mass_delete_blocked.append((str(root), len(really_gone), len(present)))
            log.warning("%s: %d of %d tracks are gone; not removing them without --confirm-mass-delete",
                        root, len(really_gone), len(present))
            return
        if really_gone:
            self.catalog.mark_missing(t.track_id for t in really_gone)
            report.removed += len(really_gone)
            for t in really_gone:
                track = self.catalog.track(t.track_id)
                if track is not None:
                    self.engine.emit("track_removed", track=track)

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

    def _root_of(self, path: Path) -> tuple[Path, str] | None:
        for root in self.config.library_folders:
            root = Path(os.path.abspath(root))
            try:
                return root, str(Path(os.path.abspath(path)).relative_to(root))
            except ValueError:
                continue
        return None

    def reconcile_paths(self, report: ScanReport, settled: list[Path] = (), removed: list[Path] = ()) -> None:
        """Apply watcher hints for single files: removals first (so a move is seen as one), then
        new or changed files. A removal under a root that is not confirmed present is ignored."""
        extensions = frozenset(e.lower() for e in self.config["library.extensions"])
        by_root: dict[Path, tuple[dict[str, FoundFile], set[str]]] = {}
        for path in removed:
            hit = self._root_of(path)
            if hit is None or os.path.lexists(path):
                continue
            by_root.setdefault(hit[0], ({}, set()))[1].add(hit[1])
        for path in settled:
            hit = self._root_of(path)
            if hit is None or os.path.splitext(str(path))[1].lower() not in extensions:
                continue
            try:
                st = os.stat(path)
            except OSError:
                by_root.setdefault(hit[0], ({}, set()))[1].add(hit[1])
                continue
            if stat.S_ISREG(st.st_mode):
                by_root.setdefault(hit[0], ({}, set()))[0][hit[1]] = FoundFile(hit[1], st.st_size, st.st_mtime_ns,
                                                                              st.st_ino)
        for root, (files, gone) in by_root.items():
            state = self.check_root(root)
            if not state.available:
                report.unavailable.append((str(root), state.reason))
                continue
            root_id = self.catalog.root_id(str(root))
            known = self.catalog.files_under(root_id)
            for rel in gone:  # soft delete, one by one (the mass-delete guard is for full scans)
                old = known.get(rel)
                if old is not None and old.missing_since is None:
                    self.catalog.mark_missing([old.track_id])
                    report.removed += 1
                    track = self.catalog.track(old.track_id)
                    if track is not None:
                        self.engine.emit("track_removed", track=track)
            if files:
                known = self.catalog.files_under(root_id)
                subset = {rel: t for rel, t in known.items() if rel in files}
                self._diff_root(root_id, root, files, subset, report, confirm=True, removals=False)

    def _output_dirs(self) -> list[str]:
        outputs = self.config.get("outputs") or {}
        return [str(o.get("dir")) for o in outputs.values() if isinstance(o, dict) and o.get("dir")]

    # featurise ----------------------------------------------------------------------------------

    def jobs(self, *, retry_failed: bool = False) -> list[FeatureJob]:
        versions = self.engine.extractor_versions()
        out = []
        for track in self.catalog.needs_features(versions, retry_failed=retry_failed):
            missing = self.catalog.missing_extractors(track.track_id, versions)
            rows = self.catalog.query("SELECT mtime_ns FROM tracks WHERE track_id=?", (track.track_id,))
            out.append(FeatureJob(track.track_id, str(track.path), track.content_sig, track.size, rows[0][0],
                                  tuple(sorted(missing.items()))))
        return out

    def new_pool(self, workers: int | None = None) -> FeaturePool:
        settings = WorkerSettings(
            None if self.config.source == "<defaults>" else self.config.source,
            self.config.raw, dict(os.environ))
        return FeaturePool(settings, self.config["scan.workers"] if workers is None else workers)

    def featurise(self, report: ScanReport, *, retry_failed: bool = False, workers: int | None = None,
                  stop: Callable[[], bool] = lambda: False, pool: FeaturePool | None = None) -> None:
        """Featurise every track that lacks features, committing each result as it arrives.
        ``pool``: a long-lived pool (the daemon's); else one is made for this call."""
        jobs = self.jobs(retry_failed=retry_failed)
        if not jobs:
            return
        own = pool is None
        pool = pool or self.new_pool(workers)
        bar = Progress(len(jobs), self.out, enabled=self.progress)
        try:
            for result in pool.map(jobs, stop=stop):
                self.commit(result, report)
                bar.step()
            if stop():
                report.interrupted = True
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        finally:
            bar.close()
            if own:
                pool.close()

    def commit(self, result: FeatureResult, report: ScanReport) -> None:
        job = result.job
        for err in result.extractor_errors:
            log.warning("%s: extractor %s", job.path, err)
        if result.failure is not None:
            reason, message = result.failure
            if reason == "vanished":
                return  # not a property of the file: the next reconcile decides
            self.catalog.record_failure(job.track_id, reason, message, job.size, job.mtime_ns)
            report.failed[reason] += 1
            return
        if not result.blocks:
            self.catalog.record_failure(job.track_id, "decode_error",
                                        "every extractor failed: " + "; ".join(result.extractor_errors)[:300],
                                        job.size, job.mtime_ns)
            report.failed["decode_error"] += 1
            return
        before = self.catalog.track(job.track_id)
        was_ok = before is not None and before.status == "ok"
        if self.catalog.save_features(job.track_id, job.content_sig, result.blocks, result.tags, result.duration):
            report.featurised += 1
            track = self.catalog.track(job.track_id)
            if track is not None:
                self.engine.emit("track_changed" if was_ok or job.track_id in report.changed_ids else "track_added",
                                 track=track)

    # the whole scan -----------------------------------------------------------------------------

    def run(self, *, confirm_mass_delete: bool = False, retry_failed: bool = False, workers: int | None = None,
            featurise: bool = True) -> ScanReport:
        started = time.monotonic()
        report = ScanReport()
        try:
            self.reconcile(report, confirm_mass_delete=confirm_mass_delete)
            if featurise:
                self.featurise(report, retry_failed=retry_failed, workers=workers)
        finally:
            report.seconds = time.monotonic() - started
        return report


class Progress:
    """done/total, tracks/s and ETA on one terminal line (or a log line every 10 s otherwise)."""

    def __init__(self, total: int, out, *, enabled: bool):
        self.total, self.out, self.enabled = total, out, enabled
        self.done = 0
        self.started = self.last = time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.2 or self.done == self.total):
            self.last = now
            self.out.write("\r" + self.line(now))
            self.out.flush()
        elif not self.enabled and now - self.last > 10:
            self.last = now
            log.info("featurising: %s", self.line(now))

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f} tracks/s ETA {int(eta) // 60}:{int(eta) % 60:02d} ")

    def close(self) -> None:
        if self.enabled and self.done:
            self.out.write("\n")
            self.out.flush()


