"""Small named values kept with the catalog (``meta`` table: key -> text)."""

from __future__ import annotations

from recengine.catalog.db import Database


class MetaStore(Database):
    """Key/value settings stored in the catalog."""

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return row[0][0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
