"""Watcher tests (RELIABILITY.md T12-T22) with a real watchdog observer on tmp_path.

Assertions poll predicates (wait_for / wait_idle); sleeps only shape the writers' behaviour.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from recengine.library import observers as observers_mod
from recengine.library.watch import LibraryWatcher

EXT = frozenset({".wav", ".flac", ".mp3"})
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.batches: list[list[Path]] = []
        self.sizes: dict[Path, int] = {}
        self.removed: list[Path] = []
        self.reasons: list[str] = []
        self.threads: set[str] = set()

    def on_settled(self, paths):
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.batches.append(list(paths))
            for p in paths:
                self.sizes[p] = p.stat().st_size if p.exists() else -1

    def on_removed(self, paths):
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.removed.extend(paths)

    def on_reconcile(self, reason):
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.reasons.append(reason)

    @property
    def settled(self) -> list[Path]:
        with self.lock:
            return [p for b in self.batches for p in b]

    def count(self, path: Path) -> int:
        return self.settled.count(path)


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    return root


@pytest.fixture
def make_watcher(lib):
    made: list[LibraryWatcher] = []

    def make(roots=None, **kw):
        rec = Recorder()
        opts = {"settle_s": 0.2, "poll_settle_s": 1.0, "poll_interval_s": 0.2, **kw}
        w = LibraryWatcher(
            roots or [lib],
            on_settled=rec.on_settled,
            on_removed=rec.on_removed,
            on_reconcile=rec.on_reconcile,
            extensions=EXT,
            **opts,
        )
        w.start()
        made.append(w)
        return w, rec

    yield make
    for w in made:
        w.stop()


def test_t12_chunked_write_with_pause_reported_once_after_close(lib, make_watcher):
    w, rec = make_watcher(poll_settle_s=3.0)
    path = lib / "song.flac"
    with open(path, "wb") as fh:
        for _ in range(8):
            fh.write(os.urandom(64 * 1024))
            fh.flush()
        time.sleep(0.8)  # writer stalls mid-file, longer than settle_s
        assert rec.settled == [], "reported before close"
        for _ in range(8):
            fh.write(os.urandom(64 * 1024))
            fh.flush()
    assert wait_for(lambda: rec.count(path) == 1)
    assert w.wait_idle(3)
    assert rec.count(path) == 1
    assert rec.sizes[path] == 16 * 64 * 1024


def test_t13_partial_write_then_replace_reported_once_final(lib, tmp_path, make_watcher):
    w, rec = make_watcher()
    path, full = lib / "track.wav", WAV * 1000
    path.write_bytes(full[: len(full) * 4 // 10])  # writer killed at 40%: fd closed
    part = lib / "track.wav.part"
    part.write_bytes(full)
    os.replace(part, path)
    assert wait_for(lambda: rec.count(path) >= 1)
    assert w.wait_idle(3)
    assert rec.count(path) == 1
    assert rec.sizes[path] == len(full)
    assert part not in rec.settled


def test_t14_copy_of_300_files_each_once_coalesced(lib, tmp_path, make_watcher):
    src = tmp_path / "incoming" / "album"
    src.mkdir(parents=True)
    for i in range(300):
        (src / f"{i:03d}.mp3").write_bytes(WAV)
    w, rec = make_watcher()
    if shutil.which("cp"):
        subprocess.run(["cp", "-r", str(src), str(lib)], check=True)
    else:  # pragma: no cover
        shutil.copytree(src, lib / "album")
    expected = {lib / "album" / f"{i:03d}.mp3" for i in range(300)}
    assert wait_for(lambda: expected <= set(rec.settled), timeout=10)
    assert w.wait_idle(3)
    assert sorted(rec.settled) == sorted(expected)  # each exactly once
    assert len(rec.batches) <= 30, f"{len(rec.batches)} batches"
    assert w.health()["pending"] == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_t16_dead_emitter_restarted_and_reconciled(lib, make_watcher, caplog):
    w, rec = make_watcher()
    (emitter,) = w.observers.emitters()
    original = emitter.queue_events
    calls = {"n": 0}

    def queue_events(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("boom")
        return original(*args, **kwargs)

    emitter.queue_events = queue_events
    (lib / "wake.wav").write_bytes(WAV)  # unblocks the pending read; the next call raises
    with caplog.at_level(logging.CRITICAL, logger="recengine.library.observers"):
        assert wait_for(lambda: not emitter.is_alive())
        assert wait_for(lambda: "watcher restarted" in rec.reasons, timeout=4)
    assert w.health()["restarts"] == 1
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)
    later = lib / "later.wav"
    later.write_bytes(WAV)
    assert wait_for(lambda: rec.count(later) == 1)
    assert w.health()["roots"][str(lib)]["mode"] == "inotify"


@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")  # watchdog re-adding a raced watch
def test_t19_nested_mkdir_with_files_at_each_level(lib, make_watcher):
    w, rec = make_watcher()
    deep = lib / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    files = [lib / "a" / "1.wav", lib / "a" / "b" / "2.wav", lib / "a" / "b" / "c" / "3.wav", deep / "4.wav"]
    for f in files:
        f.write_bytes(WAV)
    assert wait_for(lambda: set(files) <= set(rec.settled), timeout=6)
    assert w.wait_idle(3)
    assert sorted(rec.settled) == sorted(files)


def test_t20_file_rename_and_dir_rename(lib, make_watcher):
    album = lib / "album"
    album.mkdir()
    old = album / "old.flac"
    old.write_bytes(WAV)
    w, rec = make_watcher()
    new = album / "new.flac"
    os.rename(old, new)
    assert wait_for(lambda: rec.count(new) == 1)
    assert old in rec.removed
    os.rename(album, lib / "renamed")
    assert wait_for(lambda: f"dir moved: {album} -> {lib / 'renamed'}" in rec.reasons)
    assert w.wait_idle(3)
    assert not any("renamed" in str(p) for p in rec.settled)  # the reconcile covers the contents


def test_moves_across_the_root_boundary(lib, tmp_path, make_watcher):
    outside = tmp_path / "downloads"
    outside.mkdir()
    (outside / "in.mp3").write_bytes(WAV)
    (lib / "out.mp3").write_bytes(WAV)
    w, rec = make_watcher(poll_settle_s=30.0)  # a completed move must not wait for the long bound
    os.rename(outside / "in.mp3", lib / "in.mp3")
    os.rename(lib / "out.mp3", outside / "out.mp3")
    assert wait_for(lambda: rec.count(lib / "in.mp3") == 1)
    assert wait_for(lambda: lib / "out.mp3" in rec.removed)
    os.rename(lib, tmp_path / "gone")  # the root itself moves away: no crash, no restart counted
    assert wait_for(lambda: w.health()["roots"][str(lib)]["mode"] == "unavailable", timeout=4)
    assert w.health()["restarts"] == 0


def test_detect_fs_type_longest_prefix_and_escapes(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /mnt/my\\040music rw shared:2 - nfs4 nas:/music rw\n"
        "41 40 0:51 / /mnt/my\\040music/local rw shared:3 - ext4 /dev/sdb1 rw\n"
    )
    assert observers_mod.detect_fs_type("/mnt/my music/a/b.flac", str(info)) == "nfs4"
    assert observers_mod.detect_fs_type("/mnt/my music/local/x", str(info)) == "ext4"
    assert observers_mod.detect_fs_type("/mnt/my musicals", str(info)) == "ext4"
    assert observers_mod.detect_fs_type("/", str(tmp_path / "nope")) == ""
    assert observers_mod.is_network_fs("cifs") and observers_mod.is_network_fs("fuse.sshfs")
    assert not observers_mod.is_network_fs("ext4")


def test_delete_before_settle_goes_to_removed(lib, make_watcher):
    w, rec = make_watcher(settle_s=0.5)
    path = lib / "gone.mp3"
    path.write_bytes(WAV)
    path.unlink()
    assert wait_for(lambda: path in rec.removed)
    assert w.wait_idle(3)
    assert path not in rec.settled


def test_t21_ignore_dirs_produce_nothing(lib, make_watcher):
    out = lib / "playlists"
    out.mkdir()
    w, rec = make_watcher(ignore_dirs=[out])
    for i in range(20):
        (out / f"mix{i}.m3u8").write_text("#EXTM3U\n")
        (out / f"copy{i}.wav").write_bytes(WAV)
        (out / f".mix{i}.m3u8.tmp").write_text("x")
    (lib / "X.FLAC").write_bytes(WAV)  # after the ignored writes; upper-case extension
    (lib / "notes.txt").write_text("x")
    assert wait_for(lambda: rec.count(lib / "X.FLAC") == 1)
    assert w.wait_idle(3)
    assert rec.settled == [lib / "X.FLAC"] and rec.removed == []


@pytest.mark.parametrize("force_polling", [False, True])
def test_t22_symlink_loops_no_hang_nothing_outside(lib, tmp_path, make_watcher, force_polling):
    (lib / "a").mkdir()
    (lib / "a" / "in.wav").write_bytes(WAV)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink("..", lib / "loop")
    os.symlink("self", lib / "self")
    os.symlink(outside, lib / "ext")
    os.symlink(lib / "a", lib / "dup")
    t0 = time.monotonic()
    w, rec = make_watcher(force_polling=force_polling, poll_settle_s=0.4)
    assert time.monotonic() - t0 < 5
    (outside / "out.wav").write_bytes(WAV)
    (lib / "a" / "x.wav").write_bytes(WAV)
    assert wait_for(lambda: rec.count(lib / "a" / "x.wav") == 1)
    assert w.wait_idle(3)
    assert rec.settled == [lib / "a" / "x.wav"]


def test_polling_forced_reports_files(lib, make_watcher):
    w, rec = make_watcher(force_polling=True, poll_settle_s=0.4)
    assert w.health()["roots"][str(lib)] == {"mode": "polling", "why": "forced"}
    path = lib / "p.wav"
    path.write_bytes(WAV)
    assert wait_for(lambda: rec.count(path) == 1)
    path.unlink()
    assert wait_for(lambda: path in rec.removed)


def test_network_fs_type_injected_uses_polling(lib, make_watcher, caplog):
    with caplog.at_level(logging.INFO, logger="recengine.library.observers"):
        w, rec = make_watcher(fs_type=lambda p: "cifs", poll_settle_s=0.4)
    root = w.health()["roots"][str(lib)]
    assert root["mode"] == "polling" and "cifs" in root["why"]
    assert any("cifs" in r.getMessage() for r in caplog.records)
    path = lib / "n.wav"
    path.write_bytes(WAV)
    assert wait_for(lambda: rec.count(path) == 1)


def test_watch_limit_falls_back_to_polling(lib, make_watcher, monkeypatch, caplog):
    monkeypatch.setattr(observers_mod, "watch_limit_reached", lambda path: True)
    with caplog.at_level(logging.WARNING, logger="recengine.library.observers"):
        w, rec = make_watcher(poll_settle_s=0.4)
    root = w.health()["roots"][str(lib)]
    assert root["mode"] == "polling" and "limit" in root["why"]
    assert any("max_user_watches" in r.getMessage() for r in caplog.records)
    path = lib / "l.wav"
    path.write_bytes(WAV)
    assert wait_for(lambda: rec.count(path) == 1)


def test_schedule_enospc_falls_back_to_polling(lib, make_watcher, monkeypatch):
    real = observers_mod.inotify_observer

    def observer(fd):
        obs = real(fd)

        def schedule(*args, **kwargs):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

        obs.schedule = schedule
        return obs

    monkeypatch.setattr(observers_mod, "inotify_observer", observer)
    w, _ = make_watcher()
    assert w.health()["roots"][str(lib)]["mode"] == "polling"


def test_overflow_requests_reconcile(lib, make_watcher):
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

    w, rec = make_watcher(max_pending=5)
    for i in range(20):
        (lib / f"{i}.wav").write_bytes(WAV)
    assert wait_for(lambda: "overflow" in rec.reasons)
    assert w.wait_idle(5)
    rec.reasons.clear()
    (fd,) = w.observers.inotify_fds()
    fd.handle_event(InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b""))  # kernel overflow
    assert wait_for(lambda: "overflow" in rec.reasons)


def test_never_settling_file_handed_over_after_max_delay(lib, make_watcher):
    w, rec = make_watcher(max_delay_s=0.6, poll_settle_s=5.0)
    path = lib / "growing.wav"
    with open(path, "wb") as fh:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not rec.count(path):
            fh.write(WAV)
            fh.flush()
            time.sleep(0.05)
    assert rec.count(path) >= 1


@pytest.mark.parametrize("force_polling", [False, True])
def test_callbacks_on_our_thread_and_stop_leaves_no_threads(lib, tmp_path, force_polling):
    before = set(threading.enumerate())
    rec = Recorder()
    w = LibraryWatcher(
        [lib, tmp_path / "missing"],
        on_settled=rec.on_settled,
        on_removed=rec.on_removed,
        on_reconcile=rec.on_reconcile,
        extensions=EXT,
        settle_s=0.1,
        poll_settle_s=0.3,
        poll_interval_s=0.1,
        force_polling=force_polling,
    )
    w.start()
    health = w.health()
    assert health["roots"][str(tmp_path / "missing")]["mode"] == "unavailable"
    (lib / "t.wav").write_bytes(WAV)
    assert wait_for(lambda: rec.count(lib / "t.wav") == 1)
    assert rec.threads == {"recengine-watcher-dispatch"}
    assert w.health()["last_event"] is not None
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 3
    assert wait_for(lambda: set(threading.enumerate()) <= before, timeout=3), threading.enumerate()
    assert not w.health()["running"]


def test_new_dangling_and_folder_symlinks_are_handed_over(lib, tmp_path, make_watcher):
    """Issue 12 item 17, live: a symlink to nothing and a symlink to a folder (whatever its name)
    made while the watcher runs reach the catalog, which lists them as skipped, as a scan does."""
    outside = tmp_path / "outside"
    outside.mkdir()
    w, rec = make_watcher()
    os.symlink("missing.wav", lib / "dangling.wav")
    os.symlink(outside, lib / "elsewhere")
    (lib / "cover.jpg").write_bytes(b"\xff\xd8")  # not audio, not a link: still nothing
    assert wait_for(lambda: len(rec.settled) == 2)
    assert w.wait_idle(3)
    assert sorted(rec.settled) == [lib / "dangling.wav", lib / "elsewhere"] and rec.removed == []
