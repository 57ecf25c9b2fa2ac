"""atomic_write and temp sweeping (RELIABILITY rule 1 and 8; T39, T41, T5 for playlists)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recengine import fileio
from recengine.fileio import atomic_write, is_our_temp, read_head, sweep_stale_temps


def temps(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_creates_new_file(tmp_path):
    target = tmp_path / "Mix.m3u8"
    assert atomic_write(target, b"#EXTM3U\n") is True
    assert target.read_bytes() == b"#EXTM3U\n"
    assert temps(tmp_path) == []


def test_replaces_with_new_inode_and_keeps_mode(tmp_path):
    target = tmp_path / "Mix.m3u8"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    old_inode = target.stat().st_ino
    assert atomic_write(target, b"new content\n") is True
    assert target.read_bytes() == b"new content\n"
    assert target.stat().st_ino != old_inode  # replaced by rename, not rewritten in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert temps(tmp_path) == []


def test_new_file_is_readable_by_others_under_default_umask(tmp_path):
    # mkstemp makes 0600 files; a media server running as another user must still read ours.
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.xspf", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.xspf").stat().st_mode) == 0o644


def test_explicit_mode(tmp_path):
    atomic_write(tmp_path / "a", b"x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o600


def test_unchanged_content_is_not_rewritten(tmp_path):
    """T41: same bytes -> no write at all: inode and mtime unchanged."""
    target = tmp_path / "Mix.m3u8"
    atomic_write(target, b"#EXTM3U\nsame\n")
    past = time.time_ns() - 10_000_000_000
    os.utime(target, ns=(past, past))
    before = target.stat()
    assert atomic_write(target, b"#EXTM3U\nsame\n") is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert temps(tmp_path) == []


def test_same_size_different_bytes_is_rewritten(tmp_path):
    target = tmp_path / "a"
    atomic_write(target, b"abcd")
    assert atomic_write(target, b"abce") is True
    assert target.read_bytes() == b"abce"


def test_symlink_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    link = tmp_path / "Mix.m3u8"
    link.symlink_to(outside)
    assert atomic_write(link, b"ours") is True
    assert not link.is_symlink()
    assert link.read_bytes() == b"ours"
    assert outside.read_bytes() == b"keep me"


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_failure_keeps_old_file_and_removes_temp(tmp_path, monkeypatch, where):
    """ENOSPC (or any OSError) at any step: old file byte-identical, no temp, error propagates."""
    target = tmp_path / "Mix.m3u8"
    target.write_bytes(b"#EXTM3U\nold\n")
    before = target.stat()

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "write":
        real_fdopen = os.fdopen

        class FullFile:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])  # a partial write, then the disk is full
                boom()

            def __getattr__(self, name):
                return getattr(self.f, name)

        monkeypatch.setattr(fileio.os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    elif where == "fsync":
        monkeypatch.setattr(fileio.os, "fsync", boom)
    else:
        monkeypatch.setattr(fileio.os, "replace", boom)

    with pytest.raises(OSError) as info:
        atomic_write(target, b"#EXTM3U\nnew and longer content\n")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert target.read_bytes() == b"#EXTM3U\nold\n"
    assert target.stat().st_ino == before.st_ino
    assert temps(tmp_path) == []


def test_long_name_temp_stays_under_name_max(tmp_path):
    target = tmp_path / ("名" * 80 + ".m3u8")  # 245 bytes: a temp named after all of it is too long
    assert atomic_write(target, b"x") is True
    assert target.read_bytes() == b"x"


def test_torn_reads_never_seen(tmp_path, monkeypatch):
    """T39: while 1,000 rewrites alternate two contents, every read is wholly old or wholly new.

    Readers see whole files because of the rename, not the fsyncs; those (about 2 ms each here)
    are skipped to keep the test short. The real fsync path runs in every other test.
    """
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: None)
    target = tmp_path / "Mix.m3u8"
    versions = [
        "#EXTM3U\n#RECENGINE:a\n"
        + "".join(f"#EXTINF:-1,A - {i}\n/srv/music/a{i}.flac\n" for i in range(300)),
        "#EXTM3U\n#RECENGINE:b\n" + "".join(f"#EXTINF:-1,B - {i}\n/srv/music/b{i}.flac\n" for i in range(40)),
    ]
    expected = {v.encode() for v in versions}
    atomic_write(target, versions[0].encode())
    stop = threading.Event()
    reads, bad, errors = [0], [], []

    def reader():
        try:
            while not stop.is_set():
                data = target.read_bytes()
                lines = data.decode("utf-8").splitlines()  # parse, as a media server would
                paths = [line for line in lines if not line.startswith("#")]
                if data not in expected or len(paths) not in (300, 40):
                    bad.append(data[:80])
                reads[0] += 1
        except Exception as exc:  # e.g. FileNotFoundError between unlink and rename
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 4.0
    writes = 0
    try:
        for i in range(1000):
            assert atomic_write(target, versions[(i + 1) % 2].encode()) is True
            writes += 1
            if time.monotonic() > deadline:  # a very slow machine: stop early, still checked
                break
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert bad == []
    assert writes >= 200
    assert reads[0] >= 2000
    assert temps(tmp_path) == []


def test_sweep_removes_only_our_stale_temps(tmp_path):
    ours = [tmp_path / ".Mix.m3u8.ab12cd_9.tmp", tmp_path / ".index.ann.zz99zz99.tmp"]
    for p in ours:
        p.write_bytes(b"partial")
    keep = [
        tmp_path / "Mix.m3u8",
        tmp_path / "notes.tmp",  # not dot-prefixed: not ours
        tmp_path / ".Mix.m3u8.tmp",  # no random part
        tmp_path / ".Mix.m3u8.ABCDEFGH.tmp",  # mkstemp never uses capitals
    ]
    for p in keep:
        p.write_bytes(b"user")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()  # a directory with our name shape: left alone
    removed = sweep_stale_temps(tmp_path)
    assert sorted(removed) == sorted(ours)
    assert all(not p.exists() for p in ours)
    assert all(p.exists() for p in keep)
    assert (tmp_path / ".dir.abcdefgh.tmp").is_dir()


def test_sweep_min_age_and_missing_dir(tmp_path):
    fresh = tmp_path / ".a.m3u8.abcdefgh.tmp"
    fresh.write_bytes(b"x")
    assert sweep_stale_temps(tmp_path, min_age_s=60) == []
    assert fresh.exists()
    assert sweep_stale_temps(tmp_path / "missing") == []


def test_temp_names_match_the_sweep_pattern(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", spy)
    atomic_write(tmp_path / "For You.m3u8", b"x")
    assert len(seen) == 1 and seen[0].startswith(".For You.m3u8.")
    assert is_our_temp(seen[0])


def test_read_head(tmp_path):
    f = tmp_path / "a"
    f.write_bytes(b"0123456789")
    assert read_head(f, 4) == b"0123"
    assert read_head(tmp_path / "missing") is None
    assert read_head(tmp_path) is None
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_head(fifo) is None  # returns at once, never blocks on a FIFO


def test_fault_point_mid_write_leaves_old_file(tmp_path):
    """A kill -9 half-way through the temp file (fault point): the old file is intact; the temp
    it leaves is swept at the next start."""
    target = tmp_path / "Mix.m3u8"
    target.write_bytes(b"#EXTM3U\nold\n")
    code = (
        "import sys; from recengine.fileio import atomic_write;"
        "atomic_write(sys.argv[1], b'#EXTM3U\\n' + b'new\\n' * 1000, fault='mid_playlist_write')"
    )
    env = dict(os.environ, RECENGINE_FAULTPOINT="mid_playlist_write")
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], env=env, timeout=30)
    assert proc.returncode == 137
    assert target.read_bytes() == b"#EXTM3U\nold\n"
    assert len(temps(tmp_path)) == 1
    assert len(sweep_stale_temps(tmp_path)) == 1
    assert temps(tmp_path) == []
