"""Records passed between recengine's parts and to plugins.

Plain dataclasses: they carry data one way (watcher -> catalog -> featuriser -> index -> scorer ->
playlist writer / player) and hold no behaviour beyond small derived properties.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Reason classes of the failure ledger (a file that could not be featurised).
FAILURE_REASONS = (
    "empty",
    "not_audio",
    "decode_error",
    "no_audio_stream",
    "too_short",
    "silent",
    "timeout",
    "permission",
    "vanished",
)

#: Kinds of history events.
EVENT_KINDS = ("play", "skip", "like", "dislike", "unlike")


@dataclass(frozen=True)
class Track:
    """One audio file known to the catalog. ``track_id`` follows the content across moves."""

    track_id: int
    root: str
    relpath: str
    size: int = 0
    mtime_ns: int = 0
    content_sig: str = ""
    duration: float | None = None
    artist: str | None = None
    album: str | None = None
    title: str | None = None
    genre: str | None = None
    tracknumber: int | None = None
    status: str = "pending"

    @property
    def path(self) -> Path:
        return Path(self.root) / self.relpath

    @property
    def display(self) -> str:
        """``artist - title`` when both are known, else the file name without suffix."""
        if self.artist and self.title:
            return f"{self.artist} - {self.title}"
        return self.title or Path(self.relpath).stem


@dataclass
class DecodedAudio:
    """Mono float32 samples in [-1, 1] at the analysis rate, as handed to feature extractors.

    ``samples`` is the concatenation of the analysis windows (``windows`` holds their offsets
    in seconds within the file). ``duration`` is the whole file's length in seconds.
    """

    samples: np.ndarray
    sample_rate: int
    duration: float
    windows: list[tuple[float, float]] = field(default_factory=list)
    decoder: str = "ffmpeg"

    def segment(self):
        """The samples as a pydub ``AudioSegment`` (16-bit mono), for extractors written for pydub."""
        from pydub import AudioSegment

        pcm = (np.clip(self.samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return AudioSegment(data=pcm, sample_width=2, frame_rate=self.sample_rate, channels=1)


@dataclass(frozen=True)
class Tags:
    """Tags read from a file; any field may be missing."""

    artist: str | None = None
    album: str | None = None
    title: str | None = None
    genre: str | None = None
    tracknumber: int | None = None
    duration: float | None = None
    mbid: str | None = None  # MusicBrainz recording id (MUSICBRAINZ_TRACKID), for matching scrobbles


@dataclass(frozen=True)
class HistoryEvent:
    """A play, skip, like, dislike or unlike by a user, with its time (unix seconds)."""

    user: str
    track_id: int
    kind: str
    at: float = field(default_factory=time.time)
    listened_s: float | None = None
    source: str = "cli"


@dataclass
class Recommendation:
    """A ranked track with its score and a short human explanation of why it was chosen."""

    track: Track
    score: float
    why: str = ""
    distance: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Profile:
    """What the scorers know about a user: weighted positive and negative example tracks."""

    user: str
    positives: dict[int, float] = field(default_factory=dict)
    negatives: dict[int, float] = field(default_factory=dict)
    disliked: set[int] = field(default_factory=set)
    recent: dict[int, float] = field(default_factory=dict)  # track_id -> last played time
    play_counts: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaylistEntry:
    """One line of a playlist file: an absolute path plus what players display."""

    path: Path
    duration: float | None = None
    artist: str | None = None
    title: str | None = None
    album: str | None = None
    why: str = ""


@dataclass
class Playlist:
    """A rendered recipe: what a writer turns into file bytes."""

    name: str
    entries: list[PlaylistEntry]
    marker: str  # recengine's ownership marker (a UUID), written into every file it owns
    description: str = ""


@dataclass(frozen=True)
class PathProfile:
    """How a media server wants paths written.

    ``mode`` is ``"relative"`` (to the playlist file's folder) or ``"absolute"``; ``prefix_map``
    rewrites absolute path prefixes (``{"/srv/music": "/data/music"}``) for servers that see the
    library under another mount point.
    """

    mode: str = "absolute"
    prefix_map: tuple[tuple[str, str], ...] = ()


class TrackNotFound(LookupError):
    """A track reference (id or path) that is not in the catalog."""


class NotInIndex(LookupError):
    """A track in the catalog whose features are not in the index (not analysed yet, or failed)."""
