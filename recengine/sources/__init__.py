"""Media servers recengine learns from (likes, plays) and pushes playlists to: the ``sources:`` section."""

from recengine.sources.settings import SourceSettings, parse_sources
from recengine.sources.subsonic import Song, SubsonicClient, SubsonicError
from recengine.sources.sync import SongMatcher, SubsonicSync, SyncReport

__all__ = ["Song", "SongMatcher", "SourceSettings", "SubsonicClient", "SubsonicError", "SubsonicSync", "SyncReport",
           "parse_sources"]
