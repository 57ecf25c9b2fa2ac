"""Users and their listening history (plays, skips, likes, dislikes, unlikes).

Events are committed durably (``synchronous=FULL``) in batches of at most 100, so a crash loses
no acknowledged event and leaves none half-applied.
"""

from __future__ import annotations

import time

from recengine.catalog.db import Database
from recengine.faults import faultpoint
from recengine.models import HistoryEvent

_BATCH = 100


class HistoryStore(Database):
    """Users and events."""

    def user_id(self, name: str) -> int:
        row = self.query("SELECT user_id FROM users WHERE name=?", (name,))
        if row:
            return row[0][0]
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO users(name, created_at) VALUES (?, ?)", (name, time.time()))
            return db.execute("SELECT user_id FROM users WHERE name=?", (name,)).fetchone()[0]

    def add_events(self, events: list[HistoryEvent]) -> int:
        """Commit history events durably (synchronous=FULL), at most 100 per transaction. An event
        already stored (same user, track, time and kind) is not stored again: returns how many
        were new."""
        users = {e.user: self.user_id(e.user) for e in events}
        added = 0
        for start in range(0, len(events), _BATCH):
            with self.write() as db:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO events(user_id, track_id, kind, at, listened_s, source) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(users[e.user], e.track_id, e.kind, e.at, e.listened_s, e.source)
                     for e in events[start:start + _BATCH]])
                added += db.total_changes - before
                faultpoint("mid_history_batch")
        return added

    def events(self, user: str | None = None, since: float = 0.0) -> list[HistoryEvent]:
        sql = ("SELECT u.name, e.track_id, e.kind, e.at, e.listened_s, e.source FROM events e "
               "JOIN users u USING(user_id) WHERE e.at >= ?")
        params: list[object] = [since]
        if user is not None:
            sql += " AND u.name=?"
            params.append(user)
        return [HistoryEvent(*r) for r in self.query(sql + " ORDER BY e.at, e.event_id", params)]

    def last_event_id(self) -> int:
        """The id of the newest event (0 when there is none): changes whenever history is recorded."""
        return self.query("SELECT coalesce(max(event_id), 0) FROM events")[0][0]
