"""The SQLite catalog: pragmas, migrations with backups, integrity, feature rows, history."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from recengine.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog, CatalogError, CatalogFull, backup_if_due
from recengine.models import HistoryEvent, Tags


def test_new_catalog_has_wal_foreign_keys_and_latest_schema(tmp_path):
    with Catalog(tmp_path / "c.db") as cat:
        assert cat.schema_version() == SCHEMA_VERSION
        assert cat.pragma("journal_mode") == "wal"
        assert cat.pragma("foreign_keys") == 1
        assert cat.pragma("synchronous") == 2  # FULL


def test_migration_from_version_1_keeps_data_and_makes_a_backup(tmp_path):
    path = tmp_path / "c.db"
    old = sqlite3.connect(path)
    MIGRATIONS[0](old)
    old.execute("PRAGMA user_version=1")
    old.execute("INSERT INTO roots(path) VALUES ('/music')")
    old.execute("INSERT INTO tracks(root_id, relpath, size, mtime_ns, content_sig, added_at, updated_at) "
                "VALUES (1, 'a.flac', 10, 20, 'sig', 0, 0)")
    old.commit()
    old.close()

    with Catalog(path) as cat:
        assert cat.schema_version() == SCHEMA_VERSION
        assert [t.relpath for t in cat.tracks(present=False)] == ["a.flac"]
        cat.add_events([HistoryEvent("alice", 1, "like", at=5.0)])  # a v2 table works
        assert cat.events("alice")[0].kind == "like"

    backup = tmp_path / "c.db.bak-v1"
    assert backup.exists()
    with sqlite3.connect(backup) as b:
        assert b.execute("PRAGMA user_version").fetchone()[0] == 1
        assert b.execute("SELECT relpath FROM tracks").fetchall() == [("a.flac",)]


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "c.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(CatalogError, match="newer recengine"):
        Catalog(path)


def test_corrupt_catalog_is_refused_with_advice(tmp_path):
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        root = cat.root_id("/music")
        for i in range(300):
            cat.add_track(root, f"t{i:04d}.flac", i, i, None, f"sig{i}")
        cat.checkpoint()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page:2 * page] = b"\xa5" * page  # overwrite page 2
    path.write_bytes(bytes(data))
    with pytest.raises(CatalogError, match="backup"):
        Catalog(path)


def test_features_are_stored_only_for_the_content_they_were_computed_from(tmp_path):
    with Catalog(tmp_path / "c.db") as cat:
        root = cat.root_id("/music")
        tid = cat.add_track(root, "a.flac", 10, 20, None, "sig1")
        vec = np.arange(4, dtype=np.float32)
        assert cat.save_features(tid, "sig1", {"timbre": (1, vec)}, Tags(artist="A"), 12.5)
        t = cat.track(tid)
        assert (t.status, t.artist, t.duration) == ("ok", "A", 12.5)
        ids, mats = cat.feature_matrix({"timbre": 1})
        assert ids == [tid] and np.array_equal(mats["timbre"][0], vec)
        # an extractor version bump makes only that extractor missing
        assert cat.missing_extractors(tid, {"timbre": 2, "rhythm": 1}) == {"timbre": 2, "rhythm": 1}
        assert cat.missing_extractors(tid, {"timbre": 1}) == {}
        # the file changed: stale rows no longer count, and a late result for old content is refused
        cat.update_file(tid, size=11, mtime_ns=30, inode=None, content_sig="sig2")
        assert cat.track(tid).status == "pending"
        assert cat.feature_matrix({"timbre": 1})[0] == []
        assert not cat.save_features(tid, "sig1", {"timbre": (1, vec)})


def test_failures_are_not_retried_until_the_file_changes(tmp_path):
    with Catalog(tmp_path / "c.db") as cat:
        root = cat.root_id("/music")
        tid = cat.add_track(root, "bad.mp3", 10, 20, None, "sig")
        assert [t.track_id for t in cat.needs_features({"x": 1})] == [tid]
        cat.record_failure(tid, "decode_error", "boom", 10, 20)
        assert cat.needs_features({"x": 1}) == []
        assert [t.track_id for t in cat.needs_features({"x": 1}, retry_failed=True)] == [tid]
        cat.update_file(tid, size=12, mtime_ns=40, inode=None, content_sig="sig2")
        assert [t.track_id for t in cat.needs_features({"x": 1})] == [tid]
        assert cat.failures()[0].reason == "decode_error"


def test_history_events_survive_reopening(tmp_path):
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        root = cat.root_id("/music")
        tid = cat.add_track(root, "a.flac", 1, 1, None, "s")
        cat.add_events([HistoryEvent("bob", tid, k, at=float(i)) for i, k in enumerate(["play", "skip", "like"] * 50)])
    with Catalog(path) as cat:
        events = cat.events("bob")
        assert len(events) == 150
        assert [e.kind for e in events[:3]] == ["play", "skip", "like"]


def test_backup_is_a_consistent_copy(tmp_path):
    with Catalog(tmp_path / "c.db") as cat:
        root = cat.root_id("/music")
        cat.add_track(root, "a.flac", 1, 1, None, "s")
        cat.backup(tmp_path / "copy.db")
    with sqlite3.connect(tmp_path / "copy.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM tracks").fetchone()[0] == 1


def test_disk_full_names_the_catalog_and_what_to_do(tmp_path):
    """issue 12 item 11: "database or disk is full" comes with the path and the way out; the
    change is rolled back and the catalog stays usable."""
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        root = cat.root_id("/music")
        with cat.write() as db:  # the file may not grow: SQLite answers SQLITE_FULL, as on a full disk
            db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0] + 1}")
        stored = 0
        with pytest.raises(CatalogFull) as raised:
            for i in range(5000):
                cat.add_track(root, f"{'x' * 200}{i:05d}.flac", i, i, None, f"sig{i}")
                stored += 1
        message = str(raised.value)
        assert str(path) in message and "database or disk is full" in message
        assert "free some space" in message and str(tmp_path) in message
        assert len(cat.tracks(present=False)) == stored  # the failed insert left nothing behind
        assert cat.pragma("quick_check") == "ok"


def _damage(path):
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xa5" * 4096  # overwrite page 2
    path.write_bytes(bytes(data))


def _fill(cat):
    root = cat.root_id("/music")
    for i in range(300):
        cat.add_track(root, f"t{i:04d}.flac", i, i, None, f"sig{i}")


def test_corrupt_catalog_message_says_which_backups_exist(tmp_path):
    """issue 12 item 10: the advice names the backups on disk, or says there is none."""
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        _fill(cat)
        cat.checkpoint()
    _damage(path)
    with pytest.raises(CatalogError) as raised:
        Catalog(path)
    assert "there is no backup" in str(raised.value) and "*.bak-*" not in str(raised.value)


def test_scheduled_backups_are_consistent_copies_and_only_the_newest_are_kept(tmp_path):
    path = tmp_path / "c.db"
    with Catalog(path) as cat:
        _fill(cat)
        first = backup_if_due(cat, keep=2, every_s=86400)
        assert first is not None and first.parent == tmp_path / "backups"
        assert backup_if_due(cat, keep=2, every_s=86400) is None  # the day is not over
        later = [backup_if_due(cat, keep=2, every_s=86400, now=time.time() + d * 86400) for d in (2, 4)]
        assert all(later) and sorted((tmp_path / "backups").iterdir()) == sorted(later)
        cat.checkpoint()
    with sqlite3.connect(later[-1]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM tracks").fetchone()[0] == 300
    _damage(path)
    with pytest.raises(CatalogError) as raised:
        Catalog(path)
    assert f"cp '{later[-1]}' '{path}'" in str(raised.value)
