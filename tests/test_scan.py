"""`recengine scan`: incremental reconcile, moves, unavailable roots, version bumps, resuming."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import recengine
from recengine.engine import Engine
from recengine.library import SENTINEL, ScanReport
from recengine.models import HistoryEvent
from recengine.testing import encode, noise, tone, write_counting_plugin

from .bad_inputs import non_utf8_name, special_entries


@pytest.fixture
def counting(tmp_path, monkeypatch):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    log = tmp_path / "count.log"
    log.touch()
    monkeypatch.setenv("COUNT_LOG", str(log))

    def set_version(v: int) -> None:
        write_counting_plugin(plugin_dir, version=v)

    set_version(1)

    class Counter:
        dir = plugin_dir
        version = staticmethod(set_version)

        @staticmethod
        def calls() -> int:
            return len(log.read_text().splitlines())

    return Counter


def open_engine(tmp_path, folders, plugin_dir, **scan):
    raw = {"library": {"folders": [str(f) for f in folders]}, "data_dir": str(tmp_path / "data"),
           "plugin_dirs": [str(plugin_dir)], "scan": {"workers": 2, **scan},
           "analysis": {"windows": 2, "window_s": 1.0}}
    return Engine.open(None, raw=raw, entrypoints=False)


def make_library(root: Path, n: int = 6) -> list[Path]:
    paths = []
    for i in range(n):
        fmt = (".flac", ".ogg", ".mp3")[i % 3]
        paths.append(encode(tone(200 + 50 * i, 2.0) + noise(2.0, amp=0.05, seed=i), root / f"album{i % 2}" / f"t{i}{fmt}",
                            tags={"artist": f"A{i % 2}", "title": f"T{i}"}))
    return paths


class Events:
    def __init__(self):
        self.seen: list[tuple[str, int]] = []

    @recengine.hookimpl
    def track_added(self, track):
        self.seen.append(("added", track.track_id))

    @recengine.hookimpl
    def track_changed(self, track):
        self.seen.append(("changed", track.track_id))

    @recengine.hookimpl
    def track_removed(self, track):
        self.seen.append(("removed", track.track_id))


def test_scan_is_incremental_and_fires_events(tmp_path, counting):
    lib = tmp_path / "lib"
    make_library(lib)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        events = Events()
        engine.pm.register(events)
        report = engine.scan()
        assert (report.added, report.featurised, sum(report.failed.values())) == (6, 6, 0)
        assert counting.calls() == 6
        assert sorted(k for k, _ in events.seen) == ["added"] * 6
        tracks = engine.catalog.tracks(status="ok")
        assert {t.artist for t in tracks} == {"A0", "A1"}
        assert all(t.duration and 1.9 < t.duration < 2.2 for t in tracks)

        report = engine.scan()
        assert (report.added, report.featurised, report.unchanged) == (0, 0, 6)
        assert counting.calls() == 6  # nothing decoded again


def test_changed_file_is_refeaturised_and_touch_is_not(tmp_path, counting):
    lib = tmp_path / "lib"
    paths = make_library(lib)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        before = {t.relpath: t.track_id for t in engine.catalog.tracks()}
        os.utime(paths[0], ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # touch only
        encode(tone(1000, 2.5), paths[1])  # new content, same path
        report = engine.scan()
        assert report.updated == 1 and report.featurised == 1
        assert counting.calls() == 7
        after = {t.relpath: t.track_id for t in engine.catalog.tracks()}
        assert after == before  # same ids


def test_moves_and_renames_keep_track_id_and_history(tmp_path, counting):
    lib = tmp_path / "lib"
    make_library(lib)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        old = engine.catalog.track_by_path(lib / "album0" / "t0.flac")
        engine.catalog.add_events([HistoryEvent("alice", old.track_id, "like")])
        (lib / "album0").rename(lib / "Album Zero")  # folder rename
        (lib / "album1" / "t1.ogg").rename(lib / "album1" / "renamed.ogg")
        events = Events()
        engine.pm.register(events)
        report = engine.scan()
        assert (report.moved, report.added, report.removed, report.featurised) == (4, 0, 0, 0)
        assert counting.calls() == 6  # no new decodes
        moved = engine.catalog.track_by_path(lib / "Album Zero" / "t0.flac")
        assert moved.track_id == old.track_id
        assert [e.kind for e in engine.catalog.events("alice")] == ["like"]
        assert engine.catalog.track_by_path(lib / "album1" / "renamed.ogg") is not None
        assert ("changed", old.track_id) in events.seen


def test_extractor_version_bump_reruns_only_that_extractor(tmp_path, counting):
    lib = tmp_path / "lib"
    make_library(lib, n=3)
    (counting.dir / "steady.py").write_text(textwrap.dedent('''
        import os, numpy as np, recengine
        class Steady:
            name = "steady"; version = 1; dim = 1
            def extract(self, samples, sr):
                with open(os.environ["COUNT_LOG"] + ".steady", "a") as fh:
                    fh.write("x\\n")
                return np.array([samples.size], dtype=np.float32)
        @recengine.hookimpl
        def register_extractors(register):
            register(Steady())
    '''))
    steady_log = Path(os.environ["COUNT_LOG"] + ".steady")
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
    assert counting.calls() == 3 and len(steady_log.read_text().splitlines()) == 3
    counting.version(2)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert report.featurised == 3
        ids, blocks = engine.catalog.feature_matrix({"counting": 2, "steady": 1})
        assert len(ids) == 3
    assert counting.calls() == 6
    assert len(steady_log.read_text().splitlines()) == 3  # the unchanged extractor did not re-run


def test_unavailable_root_deletes_nothing(tmp_path, counting):
    """T23: a root swapped for an empty folder, then missing: nothing removed, no re-decode after."""
    lib = tmp_path / "lib"
    make_library(lib)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        assert (lib / SENTINEL).exists()
        tid = engine.catalog.tracks()[0].track_id
        engine.catalog.add_events([HistoryEvent("alice", tid, "like")])
    shutil.move(lib, tmp_path / "away")
    lib.mkdir()  # empty mount point
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert report.unavailable and report.removed == 0
        assert engine.catalog.counts()["missing"] == 0
        assert engine.catalog.tracks() == []  # unavailable tracks are not offered
    lib.rmdir()
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert report.unavailable and report.removed == 0
    shutil.move(tmp_path / "away", lib)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert not report.unavailable and report.featurised == 0 and report.unchanged == 6
        assert len(engine.catalog.tracks()) == 6
        assert len(engine.catalog.events("alice")) == 1
    assert counting.calls() == 6


def test_mass_delete_needs_confirmation_and_small_deletes_are_soft(tmp_path, counting):
    """T24 at CI size: 20 of 24 gone is held back; 1 gone is a soft delete, purged later."""
    lib = tmp_path / "lib"
    paths = [encode(tone(100 + 20 * i, 1.2), lib / f"t{i:02d}.wav") for i in range(24)]
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        for p in paths[:20]:
            p.unlink()
        report = engine.scan()
        assert report.removed == 0 and report.mass_delete_blocked == [(str(lib), 20, 24)]
        assert len(engine.catalog.tracks()) == 24
        report = engine.scan(confirm_mass_delete=True)
        assert report.removed == 20 and len(engine.catalog.tracks()) == 4
        paths[20].unlink()
        assert engine.scan().removed == 1
        assert engine.catalog.counts()["missing"] == 21
        assert engine.catalog.purge_missing(older_than=time.time() + 1) == 21
        assert engine.catalog.counts()["missing"] == 0


def test_offline_changes_are_caught_up(tmp_path, counting):
    """T25 (small): while stopped, add, delete, modify and rename files."""
    lib = tmp_path / "lib"
    paths = [encode(tone(100 + 30 * i, 1.5), lib / f"t{i:02d}.flac") for i in range(12)]
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        ids = {t.relpath: t.track_id for t in engine.catalog.tracks()}
    for i in range(3):
        encode(noise(1.5, seed=50 + i), lib / f"new{i}.ogg")
    paths[3].unlink()
    encode(tone(3000, 1.7), paths[4])
    paths[5].rename(lib / "renamed.flac")
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert (report.added, report.removed, report.updated, report.moved) == (3, 1, 1, 1)
        now = {t.relpath: t.track_id for t in engine.catalog.tracks()}
        assert now["renamed.flac"] == ids["t05.flac"]
        assert now["t04.flac"] == ids["t04.flac"]
        assert "t03.flac" not in now and len(now) == 14
        assert report.featurised == 4


def test_killed_scan_loses_nothing_and_resumes(tmp_path, counting):
    """T1 (small): kill -9 during a scan (fault point after the 5th commit); the next scan finishes
    the rest; each file featurised once, at most the in-flight ones twice."""
    lib = tmp_path / "lib"
    for i in range(16):
        encode(tone(100 + 25 * i, 1.2), lib / f"t{i:02d}.wav")
    config = tmp_path / "config.yaml"
    config.write_text(f"library: {{folders: ['{lib}']}}\ndata_dir: '{tmp_path / 'data'}'\n"
                      f"plugin_dirs: ['{counting.dir}']\nscan: {{workers: 2}}\n"
                      "analysis: {windows: 1, window_s: 1.0}\n")
    env = dict(os.environ, RECENGINE_FAULTPOINT="after_feature_commit:5")
    proc = subprocess.run([sys.executable, "-m", "recengine", "--config", str(config), "scan"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    time.sleep(0.5)  # let orphaned workers notice their parent is gone
    with Engine.open(config, entrypoints=False) as engine:
        assert len(engine.catalog.tracks(status="ok")) == 5
        report = engine.scan()
        assert report.featurised == 11
        assert len(engine.catalog.tracks(status="ok")) == 16
        ok = engine.catalog.query("PRAGMA integrity_check")[0][0]
        assert ok == "ok"
    assert 16 <= counting.calls() <= 16 + 8  # only files in flight at the kill were decoded twice


def test_file_changed_during_analysis_is_not_stored_with_stale_features(tmp_path, counting):
    lib = tmp_path / "lib"
    path = encode(tone(300, 1.5), lib / "a.wav")
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        from recengine.library import ScanReport

        scanner = engine.scanner(progress=False)
        report = ScanReport()
        scanner.reconcile(report)
        jobs = scanner.jobs()
        encode(tone(900, 2.0), path)  # the file changes after it was listed
        from recengine.analysis import Worker, WorkerSettings

        worker = Worker(WorkerSettings(None, engine.config.raw, dict(os.environ)))
        result = worker.featurise_one(jobs[0])
        assert result.failure and result.failure[0] == "vanished"  # "changed since it was scanned"
        scanner.commit(result, report)
        assert engine.catalog.failures() == []
        report = engine.scan()
        assert report.updated == 1 and report.featurised == 1


def test_features_are_finite_vectors_of_declared_size(tmp_path, counting):
    lib = tmp_path / "lib"
    make_library(lib, n=3)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        versions = engine.extractor_versions()
        ids, blocks = engine.catalog.feature_matrix(versions)
        assert len(ids) == 3
        for name, matrix in blocks.items():
            assert matrix.shape == (3, engine.extractors[name].dim)
            assert np.all(np.isfinite(matrix))


def test_tracks_missing_longer_than_purge_after_days_are_forgotten(tmp_path, counting):
    """scan.purge_after_days: a track missing for longer is forgotten at the end of a scan, with
    its features and history; one missing for less keeps its id and history and comes back."""
    lib = tmp_path / "lib"
    paths = [encode(tone(200 + 40 * i, 1.2), lib / f"t{i}.wav") for i in range(4)]
    with open_engine(tmp_path, [lib], counting.dir, purge_after_days=30) as engine:
        engine.scan()
        old = engine.catalog.track_by_path(paths[0]).track_id
        recent = engine.catalog.track_by_path(paths[1]).track_id
        engine.catalog.add_events([HistoryEvent("alice", old, "like"), HistoryEvent("alice", recent, "like")])
        away = tmp_path / "t1.wav"
        paths[0].unlink()
        paths[1].rename(away)
        engine.catalog.mark_missing([old], when=time.time() - 31 * 86400)  # gone for a month already
        report = engine.scan()
        assert report.removed == 1 and report.purged == 1
        assert engine.catalog.track(old) is None
        assert engine.catalog.features_of(old, engine.extractor_versions()) is None
        assert [e.track_id for e in engine.catalog.events("alice")] == [recent]
        assert engine.catalog.counts()["missing"] == 1
        away.rename(paths[1])  # back within the window: same track, history kept, no new decode
        report = engine.scan()
        assert report.purged == 0 and engine.catalog.track_by_path(paths[1]).track_id == recent
        assert [e.track_id for e in engine.catalog.events("alice")] == [recent]
    assert counting.calls() == 4


def test_file_name_not_valid_utf8_is_stored_losslessly(tmp_path, counting):
    """issue 12 item 1: a name that is not UTF-8 (b'\\xff.wav') is scanned like any other, the files
    after it too; the catalog gives the exact name back, a rescan finds it unchanged, a rename is a move."""
    lib = tmp_path / "lib"
    encode(tone(300, 1.2), lib / "a.wav")
    raw = os.fsencode(non_utf8_name(lib))
    encode(tone(700, 1.2), lib / "z.wav")
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert (report.added, report.featurised, sum(report.failed.values())) == (3, 3, 0)
        track = engine.catalog.track_by_path(Path(os.fsdecode(raw)))
        assert track is not None and os.fsencode(track.path) == raw and track.status == "ok"
        assert engine.scan().unchanged == 3
        renamed = os.fsencode(lib) + b"/\xfe\xff.wav"
        os.rename(raw, renamed)
        report = engine.scan()
        assert (report.moved, report.added, report.removed) == (1, 0, 0)
        assert engine.catalog.track_by_path(Path(os.fsdecode(renamed))).track_id == track.track_id
        assert sorted(os.fsencode(t.path) for t in engine.catalog.tracks()) == sorted(
            [os.fsencode(lib / "a.wav"), renamed, os.fsencode(lib / "z.wav")])
    assert counting.calls() == 3


def test_watcher_removals_follow_the_mass_delete_and_empty_folder_rules(tmp_path, counting):
    """issue 12 item 6: removals the watcher reports are counted over a window: past the mass-delete
    limit they are held back; a folder left empty is unavailable, nothing under it removed."""
    lib, small = tmp_path / "lib", tmp_path / "small"
    paths = [encode(tone(100 + 20 * i, 1.2), lib / f"t{i:02d}.wav") for i in range(30)]
    few = [encode(tone(900 + 30 * i, 1.2), small / f"s{i}.wav") for i in range(4)]
    with open_engine(tmp_path, [lib, small], counting.dir) as engine:
        engine.scan()
        scanner = engine.scanner(progress=False)
        for p in paths[:20] + few:
            p.unlink()
        report = ScanReport()
        scanner.reconcile_paths(report, removed=paths[:6])  # rm in progress: the first events
        assert report.removed == 6
        report = ScanReport()
        scanner.reconcile_paths(report, removed=paths[6:20])
        assert report.removed == 0 and report.mass_delete_blocked == [(str(lib), 20, 30)]
        report = ScanReport()
        scanner.reconcile_paths(report, removed=few)
        assert report.removed == 0 and [r for r, _ in report.unavailable] == [str(small)]
        assert engine.catalog.counts()["missing"] == 6
        assert engine.scan(confirm_mass_delete=True).removed == 14  # what a confirmed scan then does


def _as_nobody():
    """Reads as another user: root reads a mode-000 folder anyway, so when the tests run as root
    the reconcile runs with the effective uid of nobody (its files are read in this process)."""
    import contextlib

    @contextlib.contextmanager
    def dropped():
        if os.geteuid() != 0:
            yield
            return
        os.seteuid(65534)
        try:
            yield
        finally:
            os.seteuid(0)

    return dropped()


def test_subfolder_unreadable_during_a_scan_keeps_its_tracks(tmp_path, counting):
    """issue 12 item 6: a folder that cannot be read (EACCES) is not a folder whose files are gone."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="recengine-eacces-"))  # outside tmp_path (0700): nobody reaches it
    try:
        base.chmod(0o755)
        lib = base / "lib"
        for album in ("open", "closed"):
            for i in range(3):
                encode(tone(200 + 90 * i + (50 if album == "closed" else 0), 1.2), lib / album / f"{i}.wav")
        lib.chmod(0o755)
        with open_engine(tmp_path, [lib], counting.dir) as engine:
            engine.scan()
            scanner = engine.scanner(progress=False)
            (lib / "closed").chmod(0)
            report = ScanReport()
            with _as_nobody():
                scanner.reconcile(report)
            (lib / "closed").chmod(0o755)
            assert report.removed == 0 and not report.mass_delete_blocked
            assert [folder for folder, _ in report.unreadable] == [str(lib / "closed")]
            assert engine.catalog.counts()["missing"] == 0 and len(engine.catalog.tracks()) == 6
    finally:
        (base / "lib" / "closed").chmod(0o755)
        shutil.rmtree(base)


def test_special_files_are_listed_as_skipped_with_a_reason(tmp_path, counting):
    """issue 12 item 17: FIFOs, devices, symlink loops, dangling symlinks and symlinks out of the
    library are not silently left out: the scan reports each with a reason class and the catalog
    keeps the list (recengine status --json: catalog.skipped)."""
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    encode(tone(440, 1.2), lib / "good.wav")
    expected = special_entries(lib, outside)
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        report = engine.scan()
        assert report.added == 1 and report.featurised == 1
        assert {Path(p).name: r for p, r in report.skipped} == expected
        assert f"{len(expected)} skipped (" in report.summary() and "fifo 1" in report.summary()
        listed = {Path(k.path).name: k.reason for k in engine.catalog.skipped()}
        assert listed == expected and engine.catalog.counts()["skipped"] == len(expected)
        assert dict((k.path.rsplit("/", 1)[1], k.detail) for k in engine.catalog.skipped())["out.wav"] == str(outside / "x.wav")
        (lib / "pipe.wav").unlink()
        engine.scan()
        assert {Path(k.path).name for k in engine.catalog.skipped()} == set(expected) - {"pipe.wav"}
    assert counting.calls() == 1


def test_watcher_hints_for_links_list_them_as_skipped(tmp_path, counting):
    """Issue 12 item 17, the daemon's way: a settled hint for a symlink to nothing or to a folder
    (any name) is listed as skipped, as a full reconcile lists it."""
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    encode(tone(440, 1.2), lib / "good.wav")
    outside.mkdir()
    with open_engine(tmp_path, [lib], counting.dir) as engine:
        engine.scan()
        os.symlink("missing.wav", lib / "dangling.wav")
        os.symlink(outside, lib / "albums")
        report = ScanReport()
        engine.scanner(progress=False).reconcile_paths(report, settled=[lib / "dangling.wav", lib / "albums"])
        assert sorted((Path(p).name, r) for p, r in report.skipped) == [
            ("albums", "directory_symlink"), ("dangling.wav", "broken_symlink")]
        assert {Path(k.path).name for k in engine.catalog.skipped()} == {"albums", "dangling.wav"}
