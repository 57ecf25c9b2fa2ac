"""Playback: backends play tracks and report plays and skips (tracker: the scrobble rules;
process_queue: one player process per track; player: recipes through a backend; mpd_client)."""
