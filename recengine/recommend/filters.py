"""What a query may return: tracks, artists, albums, genres, durations and tag matches left out."""

from __future__ import annotations

from dataclasses import dataclass, field

from recengine.models import Track


@dataclass
class Filters:
    """What a query may return."""

    exclude_tracks: set[int] = field(default_factory=set)
    exclude_artists: set[str] = field(default_factory=set)
    exclude_albums: set[str] = field(default_factory=set)
    exclude_genres: set[str] = field(default_factory=set)
    min_duration: float | None = None
    max_duration: float | None = None
    tags: dict[str, str] = field(default_factory=dict)  # field -> case-insensitive substring

    def allows(self, track: Track) -> bool:
        if track.track_id in self.exclude_tracks:
            return False
        if track.artist and track.artist.casefold() in {a.casefold() for a in self.exclude_artists}:
            return False
        if track.album and track.album.casefold() in {a.casefold() for a in self.exclude_albums}:
            return False
        if track.genre and any(g.casefold() in track.genre.casefold() for g in self.exclude_genres):
            return False
        if self.min_duration is not None and (track.duration or 0) < self.min_duration:
            return False
        if self.max_duration is not None and (track.duration or 0) > self.max_duration:
            return False
        for name, needle in self.tags.items():
            value = getattr(track, name, None)
            if value is None or str(needle).casefold() not in str(value).casefold():
                return False
        return True
