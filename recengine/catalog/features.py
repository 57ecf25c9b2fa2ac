"""Feature rows: one vector per ``(track, extractor, version)``, valid for one content signature.

A row computed from content that has since changed no longer counts (its ``content_sig`` differs
from the track's), and a late result for old content is refused at commit.
"""

from __future__ import annotations

import time

import numpy as np

from recengine.catalog.db import Database
from recengine.catalog.tracks import PRESENT, TRACK_COLS, track_of
from recengine.faults import faultpoint
from recengine.models import Tags, Track

#: Seconds before a transient failure (permission, timeout) is tried again without a file change.
TRANSIENT_RETRY_S = 600.0


class FeatureStore(Database):
    """What is featurised, and the vectors."""

    def needs_features(self, versions: dict[str, int], *, retry_failed: bool = False,
                       having: dict[str, int] | None = None) -> list[Track]:
        """Present tracks lacking a feature row for some ``(extractor, version)`` of their content,
        leaving out recorded failures of unchanged files unless ``retry_failed``. ``having``: only
        tracks that have every one of these already (the deep pass: tracks through the fast one)."""
        if not versions:
            return []
        out = []
        have: dict[int, set[tuple[str, int]]] = {}
        for tid, ext, ver in self.query(
                "SELECT f.track_id, f.extractor, f.version FROM features f JOIN tracks t USING(track_id) "
                "WHERE f.content_sig = t.content_sig"):
            have.setdefault(tid, set()).add((ext, ver))
        # permanent failures wait for the file to change; transient ones are retried after a while
        retry_before = time.time() - TRANSIENT_RETRY_S
        failed = {r[0]: (r[1], r[2]) for r in self.query(
            "SELECT track_id, size, mtime_ns FROM failures WHERE reason NOT IN ('permission', 'timeout') OR at > ?",
            (retry_before,))}
        wanted = set(versions.items())
        rows = self.query(f"SELECT {TRACK_COLS} FROM tracks t JOIN roots r USING(root_id) "
                          f"WHERE {PRESENT} ORDER BY t.track_id")
        for row in rows:
            track = track_of(row)
            got = have.get(track.track_id, set())
            if wanted <= got or (having and not set(having.items()) <= got):
                continue
            if not retry_failed and failed.get(track.track_id) == (track.size, track.mtime_ns):
                continue
            out.append(track)
        return out

    def missing_extractors(self, track_id: int, versions: dict[str, int]) -> dict[str, int]:
        have = {(e, v) for e, v in self.query(
            "SELECT f.extractor, f.version FROM features f JOIN tracks t USING(track_id) "
            "WHERE f.track_id=? AND f.content_sig=t.content_sig", (track_id,))}
        return {e: v for e, v in versions.items() if (e, v) not in have}

    def save_features(self, track_id: int, content_sig: str, blocks: dict[str, tuple[int, np.ndarray]],
                      tags: Tags | None = None, duration: float | None = None) -> bool:
        """Store feature rows of one track in one transaction; returns False if the file changed meanwhile
        (its content_sig is no longer ``content_sig``), in which case nothing is stored."""
        now = time.time()
        faultpoint("before_feature_commit")
        with self.write() as db:
            row = db.execute("SELECT content_sig FROM tracks WHERE track_id=?", (track_id,)).fetchone()
            if row is None or row[0] != content_sig:
                return False
            for name, (version, vec) in blocks.items():
                vec = np.asarray(vec, dtype=np.float32)
                db.execute("DELETE FROM features WHERE track_id=? AND extractor=? AND version<>?",
                           (track_id, name, version))
                db.execute("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (track_id, name, version, content_sig, vec.size, vec.tobytes(), now))
            sets, params = ["status='ok'", "updated_at=?"], [now]
            if tags is not None:
                sets += ["artist=?", "album=?", "title=?", "genre=?", "tracknumber=?", "mbid=?"]
                params += [tags.artist, tags.album, tags.title, tags.genre, tags.tracknumber, tags.mbid]
            if duration is not None:
                sets.append("duration=?")
                params.append(duration)
            db.execute(f"UPDATE tracks SET {', '.join(sets)} WHERE track_id=?", (*params, track_id))
            db.execute("DELETE FROM failures WHERE track_id=?", (track_id,))
        faultpoint("after_feature_commit")
        return True

    def feature_matrix(self, versions: dict[str, int]) -> tuple[list[int], dict[str, np.ndarray]]:
        """Present, featurised tracks that have every ``(extractor, version)``: ids and one
        ``(n, dim)`` matrix per extractor, rows aligned with the ids."""
        ids, rows = self._complete(self._feature_rows(None, versions, {}), versions)
        mats = {n: np.stack([rows[t][n] for t in ids]) if ids else np.zeros((0, 0), np.float32)
                for n in sorted(versions)}
        return ids, mats

    def feature_blocks(self, versions: dict[str, int], optional: dict[str, int] | None = None,
                       ) -> tuple[list[int], list[dict[str, np.ndarray]]]:
        """Like :meth:`feature_matrix`, one ``{extractor: vector}`` per track, with the ``optional``
        blocks (the deep extractors') of the tracks that have them: a track lacking one is still in."""
        ids, rows = self._complete(self._feature_rows(None, versions, optional or {}), versions)
        return ids, [rows[t] for t in ids]

    def featurised_since(self, since: float, versions: dict[str, int], optional: dict[str, int] | None = None,
                         ) -> dict[int, dict[str, np.ndarray]]:
        """Present tracks with every ``(extractor, version)`` for their content, at least one row of
        which (``optional`` ones included) was committed after ``since``: ``{track_id: {extractor:
        vector}}``, with the ``optional`` blocks the track has."""
        ids, rows = self._complete(self._feature_rows(since, versions, optional or {}), versions)
        return {t: rows[t] for t in ids}

    def _feature_rows(self, since: float | None, versions: dict[str, int], optional: dict[str, int], *,
                      vectors: bool = True) -> dict[int, dict[str, np.ndarray]]:
        wanted = {**optional, **versions}
        column = "f.vector" if vectors else "NULL"
        fresh = "AND f.track_id IN (SELECT track_id FROM features WHERE created_at > ?)" if since is not None else ""
        out: dict[int, dict[str, np.ndarray]] = {}
        for tid, ext, ver, blob in self.query(
                f"SELECT f.track_id, f.extractor, f.version, {column} FROM features f "
                "JOIN tracks t USING(track_id) JOIN roots r USING(root_id) "
                f"WHERE f.content_sig=t.content_sig AND {PRESENT} {fresh}", (since,) if fresh else ()):
            if wanted.get(ext) == ver:
                out.setdefault(tid, {})[ext] = np.frombuffer(blob, dtype=np.float32) if vectors else blob
        return out

    @staticmethod
    def _complete(rows: dict[int, dict[str, np.ndarray]], versions: dict[str, int],
                  ) -> tuple[list[int], dict[int, dict[str, np.ndarray]]]:
        """The sorted ids whose rows hold every one of ``versions``, and the rows."""
        return sorted(t for t, b in rows.items() if all(n in b for n in versions)), rows

    def coverage(self, versions: dict[str, int], optional: dict[str, int]) -> tuple[int, dict[str, int]]:
        """How far the fast and deep passes are: the present tracks with every one of ``versions``
        for their content, and per ``optional`` extractor how many of those have it too."""
        ids, rows = self._complete(self._feature_rows(None, versions, optional, vectors=False), versions)
        return len(ids), {n: sum(1 for t in ids if n in rows[t]) for n in optional}

    def present_ids(self) -> set[int]:
        """Tracks that may be recommended: present on an available root and featurised."""
        return {r[0] for r in self.query(
            f"SELECT t.track_id FROM tracks t JOIN roots r USING(root_id) WHERE {PRESENT} AND t.status='ok'")}

    def features_of(self, track_id: int, versions: dict[str, int]) -> dict[str, np.ndarray] | None:
        out = {}
        for ext, ver, blob in self.query(
                "SELECT f.extractor, f.version, f.vector FROM features f JOIN tracks t USING(track_id) "
                "WHERE f.track_id=? AND f.content_sig=t.content_sig", (track_id,)):
            if versions.get(ext) == ver:
                out[ext] = np.frombuffer(blob, dtype=np.float32)
        return out if len(out) == len(versions) else None
