"""The ``diversity`` strategy: variety in the final list.

Its ``score`` is neutral; its ``rerank`` rebuilds the ranked list greedily (maximal marginal
relevance): each next track trades its score against its similarity to what was already chosen,
with hard rules: at most ``max_per_artist`` / ``max_per_album`` tracks, at least ``artist_spacing``
other tracks between two by the same artist, no exact duplicates (same content), nothing played
in the last ``exclude_played_hours``. A track without an album tag counts toward its folder's
album (``folder_as_album``; not for files directly in a library folder), so an untagged library
sorted into one folder per album or soundtrack is varied too.
"""

from __future__ import annotations

import time
from pathlib import PurePath

import numpy as np

from recengine.hookspecs import hookimpl
from recengine.similarity import closeness, distance

DEFAULTS = {
    "max_per_artist": 2,
    "max_per_album": 2,
    "artist_spacing": 3,
    "exclude_played_hours": 24.0,
    "lambda": 0.85,
    "folder_as_album": True,
}
#: Only this many of the best-ranked tracks (per track asked for, at least POOL_MIN) are reordered.
POOL_PER_TRACK = 10
POOL_MIN = 200


def album_key(track, folder_as_album: bool = True) -> str:
    """What ``max_per_album`` counts: the album tag, else (optionally) the track's folder."""
    if track.album:
        return track.album.casefold()
    parent = PurePath(track.relpath).parent
    if folder_as_album and str(parent) not in ("", "."):
        return f"folder:{track.root}/{parent.as_posix()}"
    return ""


class DiversityScorer:
    name = "diversity"

    def score(self, candidates, profile, context):
        return [(1.0, "") for _ in candidates]

    def rerank(self, ranked, profile, context):
        """``ranked``: Recommendations best first; returns a new, varied list of at most context['n']."""
        opts = {**DEFAULTS, **(context.get("diversity") or {})}
        n = context.get("n", len(ranked))
        now = context.get("now", time.time())
        horizon = now - float(opts["exclude_played_hours"]) * 3600
        vectors, metric = context["vectors"], context["metric"]
        pool = [r for r in ranked if profile.recent.get(r.track.track_id, 0.0) < horizon]
        pool = pool[: max(POOL_MIN, POOL_PER_TRACK * n)]
        folders = bool(opts["folder_as_album"])
        chosen: list = []
        per_artist: dict[str, int] = {}
        per_album: dict[str, int] = {}
        sigs: set[str] = set()
        lam = float(opts["lambda"])
        while pool and len(chosen) < n:
            best, best_value = None, -np.inf
            recent_artists = {
                (c.track.artist or "").casefold() for c in chosen[-int(opts["artist_spacing"]) :]
            }
            chosen_m = (
                np.stack([vectors[c.track.track_id] for c in chosen if c.track.track_id in vectors])
                if chosen
                else None
            )
            for i, rec in enumerate(pool):
                t = rec.track
                artist, album = (t.artist or "").casefold(), album_key(t, folders)
                if t.content_sig in sigs:
                    continue
                if artist and per_artist.get(artist, 0) >= opts["max_per_artist"]:
                    continue
                if album and per_album.get(album, 0) >= opts["max_per_album"]:
                    continue
                if artist and artist in recent_artists:
                    continue
                redundancy = 0.0
                vec = vectors.get(t.track_id)
                if chosen_m is not None and vec is not None and len(chosen_m):
                    redundancy = max(closeness(d, metric) for d in distance(vec, chosen_m, metric))
                value = lam * rec.score - (1 - lam) * redundancy
                if value > best_value:
                    best, best_value = i, value
            if best is None:
                break
            rec = pool.pop(best)
            t = rec.track
            chosen.append(rec)
            sigs.add(t.content_sig)
            if t.artist:
                per_artist[t.artist.casefold()] = per_artist.get(t.artist.casefold(), 0) + 1
            if album := album_key(t, folders):
                per_album[album] = per_album.get(album, 0) + 1
        return chosen


@hookimpl
def register_scorers(register):
    register(DiversityScorer())
