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

from pathlib import PurePath

import numpy as np

from recengine.plugin.spec import hookimpl
from recengine.recommend.distance import distance

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
        """``ranked``: Recommendations best first; returns a new, varied list of at most context.n."""
        opts = {**DEFAULTS, **context.diversity}
        n = context.n
        now = context.now
        horizon = now - float(opts["exclude_played_hours"]) * 3600
        vectors, metric = context.vectors, context.metric
        pool = [r for r in ranked if profile.recent.get(r.track.track_id, 0.0) < horizon]
        pool = pool[: max(POOL_MIN, POOL_PER_TRACK * n)]
        folders = bool(opts["folder_as_album"])
        lam = float(opts["lambda"])
        spacing = int(opts["artist_spacing"])
        # per candidate, computed once: keys for the caps, and the running maximum similarity to
        # what was chosen (updated with one vectorised call per pick instead of one per pair)
        artists = [(r.track.artist or "").casefold() for r in pool]
        albums = [album_key(r.track, folders) for r in pool]
        scores = np.array([r.score for r in pool], dtype=float)
        has_vec = np.array([r.track.track_id in vectors for r in pool], dtype=bool)
        dim = next((len(v) for v in vectors.values()), 0)
        mat = np.stack([vectors[r.track.track_id] if h else np.zeros(dim, np.float32)
                        for r, h in zip(pool, has_vec, strict=True)]) if pool else np.zeros((0, dim))
        redundancy = np.zeros(len(pool))
        alive = np.ones(len(pool), dtype=bool)
        chosen: list = []
        chosen_artists: list[str] = []
        per_artist: dict[str, int] = {}
        per_album: dict[str, int] = {}
        sigs: set[str] = set()
        while alive.any() and len(chosen) < n:
            recent = set(chosen_artists[-spacing:]) if spacing > 0 else set()
            for i in np.flatnonzero(alive):
                t = pool[i].track
                artist, album = artists[i], albums[i]
                if (t.content_sig in sigs
                        or (artist and per_artist.get(artist, 0) >= opts["max_per_artist"])
                        or (album and per_album.get(album, 0) >= opts["max_per_album"])):
                    alive[i] = False  # can never become eligible again
            eligible = alive & ~np.array([bool(a) and a in recent for a in artists])
            if not eligible.any():
                break
            value = np.where(eligible, lam * scores - (1 - lam) * redundancy, -np.inf)
            best = int(np.argmax(value))
            rec = pool[best]
            alive[best] = False
            chosen.append(rec)
            chosen_artists.append(artists[best])
            sigs.add(rec.track.content_sig)
            if artists[best]:
                per_artist[artists[best]] = per_artist.get(artists[best], 0) + 1
            if albums[best]:
                per_album[albums[best]] = per_album.get(albums[best], 0) + 1
            if has_vec[best]:
                d = distance(mat[best], mat, metric)
                sims = np.maximum(0.0, 1.0 - d / 2.0) if metric == "angular" else 1.0 / (1.0 + d)  # = closeness()
                redundancy = np.where(has_vec, np.maximum(redundancy, sims), redundancy)
        return chosen


@hookimpl
def register_scorers(register):
    register(DiversityScorer())
