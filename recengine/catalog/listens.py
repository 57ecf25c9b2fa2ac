"""Scrobbling: per-user tokens, and listens that match no library track yet.

A token is stored as its sha256 only; a user has one token at a time (a new one replaces it).
Pending listens wait for their file: each time tracks are added, :meth:`ListenStore.pending_listens`
gives the matcher another chance, and matched ones move into the history.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from recengine.catalog.db import Database


@dataclass(frozen=True)
class PendingListen:
    listen_id: int
    user: str
    artist: str
    title: str
    album: str | None
    mbid: str | None
    duration: float | None
    at: float
    source: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ListenStore(Database):
    """Scrobble tokens and pending listens (needs :class:`~recengine.catalog.history.HistoryStore`)."""

    def set_scrobble_token(self, user: str, token: str) -> None:
        uid = self.user_id(user)
        with self.write() as db:
            db.execute("DELETE FROM scrobble_tokens WHERE user_id=?", (uid,))
            db.execute("INSERT INTO scrobble_tokens VALUES (?, ?, ?)", (token_hash(token), uid, time.time()))

    def user_of_token(self, token: str) -> str | None:
        rows = self.query("SELECT u.name FROM scrobble_tokens s JOIN users u USING(user_id) WHERE s.token_hash=?",
                          (token_hash(token),))
        return rows[0][0] if rows else None

    def add_pending_listens(self, listens: list[PendingListen]) -> int:
        """Keep listens that matched nothing (the same listen twice is kept once); returns how many were new."""
        users = {p.user: self.user_id(p.user) for p in listens}
        with self.write() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO pending_listens(user_id, artist, title, album, mbid, duration, at, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(users[p.user], p.artist, p.title, p.album, p.mbid, p.duration, p.at, p.source) for p in listens])
            return db.total_changes - before

    def pending_listens(self, limit: int = 100_000) -> list[PendingListen]:
        return [PendingListen(*r) for r in self.query(
            "SELECT p.listen_id, u.name, p.artist, p.title, p.album, p.mbid, p.duration, p.at, p.source "
            "FROM pending_listens p JOIN users u USING(user_id) ORDER BY p.at LIMIT ?", (limit,))]

    def drop_pending_listens(self, ids: list[int]) -> None:
        with self.write() as db:
            db.executemany("DELETE FROM pending_listens WHERE listen_id=?", [(i,) for i in ids])

    def pending_listen_count(self) -> int:
        return self.query("SELECT count(*) FROM pending_listens")[0][0]

    def track_ids_by_mbid(self) -> dict[str, int]:
        """Recording MBID (lower case) -> track, for present tracks whose tags carry one; of several
        files with the same MBID the lowest track id (the choice is stable)."""
        return {m: t for m, t in self.query(
            "SELECT lower(trim(mbid)) AS m, min(track_id) FROM tracks WHERE mbid IS NOT NULL AND trim(mbid) != '' "
            "AND missing_since IS NULL GROUP BY m")}

    def user_listens(self, user: str, *, after: float | None = None, before: float | None = None,
                     count: int = 25) -> list[tuple]:
        """``user``'s listens, newest first: plays (with their track's tags) and the listens kept
        for a file not in the library yet; ``after`` and ``before`` are exclusive bounds. Rows of
        (at, artist, title, album, mbid, duration, relpath or None)."""
        lo, hi = -1e18 if after is None else after, 1e18 if before is None else before
        return self.query(
            "SELECT e.at, t.artist, t.title, t.album, t.mbid, t.duration, t.relpath FROM events e "
            "JOIN users u USING(user_id) JOIN tracks t USING(track_id) "
            "WHERE u.name=? AND e.kind='play' AND e.at > ? AND e.at < ? "
            "UNION ALL "
            "SELECT p.at, p.artist, p.title, p.album, p.mbid, p.duration, NULL FROM pending_listens p "
            "JOIN users u USING(user_id) WHERE u.name=? AND p.at > ? AND p.at < ? "
            "ORDER BY 1 DESC LIMIT ?", (user, lo, hi, user, lo, hi, count))

    def user_listen_span(self, user: str) -> tuple[float | None, float | None]:
        """The times of ``user``'s oldest and newest listen (as :meth:`user_listens` counts them)."""
        row = self.query(
            "SELECT min(at), max(at) FROM (SELECT e.at FROM events e JOIN users u USING(user_id) "
            "WHERE u.name=? AND e.kind='play' UNION ALL SELECT p.at FROM pending_listens p "
            "JOIN users u USING(user_id) WHERE u.name=?)", (user, user))[0]
        return row[0], row[1]
