"""The playlist files recengine wrote: name, path, marker and a sha256 of their bytes."""

from __future__ import annotations

from recengine.catalog.db import Database, fs_bytes


class PlaylistStore(Database):
    """Playlist files written."""

    def record_playlist_written(self, name: str, path: str, marker: str, content_hash: str,
                                written_at: float) -> None:
        """Remember that playlist ``name`` was written to ``path`` (``content_hash``: sha256 of its bytes)."""
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO playlists(name, path, marker, content_hash, written_at) "
                       "VALUES (?, CAST(? AS TEXT), ?, ?, ?)", (name, fs_bytes(path), marker, content_hash, written_at))

    def playlist_files(self) -> list[tuple[str, str, str, float]]:
        """``(name, path, content_hash, written_at)`` of every playlist file written, newest first."""
        return [tuple(r) for r in self.query(
            "SELECT name, path, content_hash, written_at FROM playlists ORDER BY written_at DESC")]
