"""playlists."""
