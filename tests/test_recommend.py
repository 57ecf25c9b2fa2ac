"""Personal recommendations: history, likes, dislikes and skips; strategies and explanations."""

from __future__ import annotations

import time

import pytest

from recengine.history import build_profile
from recengine.models import HistoryEvent
from recengine.recommend.ranking import Request


def ids_of(engine, style: str) -> list[int]:
    return [t.track_id for t in engine.catalog.tracks() if t.relpath.startswith(style + "/")]


def test_profile_weights_decay_likes_dislikes_and_skips():
    now = 1_000_000_000.0
    events = [
        HistoryEvent("u", 1, "play", at=now - 86400 * 120),
        HistoryEvent("u", 2, "play", at=now - 3600),
        HistoryEvent("u", 3, "like", at=now - 10),
        HistoryEvent("u", 4, "dislike", at=now - 10),
        HistoryEvent("u", 5, "skip", at=now - 10, listened_s=5),
        HistoryEvent("u", 6, "like", at=now - 20),
        HistoryEvent("u", 6, "unlike", at=now - 5),
        HistoryEvent("other", 7, "like", at=now),
    ]
    p = build_profile(events, "u", now=now)
    assert p.positives[2] > p.positives[1] > 0  # old plays fade
    assert p.positives[3] > p.positives[2]  # likes pull hardest
    assert 4 in p.disliked and 4 not in p.positives
    assert p.negatives[5] > 0
    assert 6 not in p.positives  # unliked
    assert 7 not in p.positives  # someone else's
    assert p.play_counts == {1: 1, 2: 1}


def test_taste_follows_likes_and_never_returns_dislikes(styled):
    drums = ids_of(styled, "drums")
    noise = ids_of(styled, "noise")
    for t in drums[:2]:
        styled.record("alice", t, "like")
    styled.record("alice", noise[0], "dislike")
    recs = styled.recommend("alice", 3, strategies={"taste": 1.0})
    assert {r.track.track_id for r in recs} <= set(drums[2:])
    assert all(r.why for r in recs) and "close to" in recs[0].why
    allrecs = styled.recommend("alice", 15, strategies={"taste": 1.0, "discovery": 0.3})
    assert noise[0] not in {r.track.track_id for r in allrecs}


def test_skips_push_their_neighbourhood_down(styled):
    tones, noise = ids_of(styled, "tones"), ids_of(styled, "noise")
    styled.record("bob", tones[0], "like")
    styled.record("bob", noise[0], "like")
    before = styled.recommend("bob", 6, strategies={"taste": 1.0})
    noise_before = sum(r.track.track_id in noise for r in before)
    for t in noise[1:3]:
        styled.record("bob", t, "skip", listened_s=4)
    after = styled.recommend("bob", 6, strategies={"taste": 1.0})
    noise_after = sum(r.track.track_id in noise for r in after)
    assert noise_before >= 2
    assert noise_after <= noise_before / 2


def test_diversity_caps_artists_and_skips_recent_plays(styled):
    drums = ids_of(styled, "drums")
    styled.record("carol", drums[0], "like")
    styled.record("carol", drums[1], "play")
    req = Request(user="carol", n=6, strategies={"taste": 1.0, "diversity": 1.0},
                  diversity={"max_per_artist": 2, "artist_spacing": 1}, include_known=True)
    recs = styled.recommender.recommend(req)
    artists = [r.track.artist for r in recs]
    assert max(artists.count(a) for a in set(artists)) <= 2
    assert drums[1] not in {r.track.track_id for r in recs}  # played in the last 24 h
    assert len({r.track.content_sig for r in recs}) == len(recs)


def test_discovery_prefers_unplayed(styled):
    tones = ids_of(styled, "tones")
    now = time.time() - 7200
    for t in tones:
        styled.record("dave", t, "play", at=now)
    recs = styled.recommend("dave", 5, strategies={"discovery": 1.0}, include_known=True)
    assert not {r.track.track_id for r in recs} & set(tones)
    assert all(r.why == "new to you" for r in recs)


def test_unknown_strategy_is_a_clear_error(styled):
    with pytest.raises(LookupError, match="unknown strategy 'tast'"):
        styled.recommend("x", 3, strategies={"tast": 1.0})


def test_history_events_fire_the_hook(styled):
    import recengine

    seen = []

    class Listener:
        @recengine.hookimpl
        def history_recorded(self, event):
            seen.append(event)

    styled.pm.register(Listener())
    t = styled.catalog.tracks()[0]
    styled.record("erin", t.path, "like")
    assert [e.kind for e in seen] == ["like"] and seen[0].track_id == t.track_id
    assert styled.catalog.events("erin")[0].kind == "like"


def test_the_reason_names_skips_only_when_something_was_skipped(styled):
    """Issue 12 item 9: "nothing like what you skipped" appeared when nothing was skipped."""
    tracks = {t.relpath: t.track_id for t in styled.catalog.tracks()}
    styled.record("ivy", tracks["tones/tones0.flac"], "like")
    styled.record("ivy", tracks["noise/noise0.flac"], "dislike")
    whys = [r.why for r in styled.recommend("ivy", 10, strategies={"taste": 1.0})]
    assert whys and not any("skipped" in w for w in whys)
    assert any("disliked" in w for w in whys)
    styled.record("ivy", tracks["noise/noise1.ogg"], "skip", listened_s=3)
    whys = [r.why for r in styled.recommend("ivy", 10, strategies={"taste": 1.0})]
    assert any("skipped" in w for w in whys)
