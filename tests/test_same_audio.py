"""Issue 12 item 9: a byte-identical copy is the same track for radio's "recently played" and for dislikes."""

import shutil

from .conftest import make_engine


def test_radio_never_offers_a_copy_of_what_was_just_played_or_disliked(tmp_path, styled_library):
    lib = tmp_path / "lib"
    shutil.copytree(styled_library, lib)
    shutil.copy(lib / "drums" / "drums0.flac", lib / "drums" / "copy of drums0.flac")
    shutil.copy(lib / "tones" / "tones1.ogg", lib / "tones" / "copy of tones1.ogg")
    engine = make_engine(tmp_path, [lib])
    try:
        engine.scan()
        engine.record("default", str(lib / "drums" / "drums0.flac"), "play")
        engine.record("default", str(lib / "tones" / "tones1.ogg"), "dislike")
        recs = engine.recommend("default", 20, strategies={"similar": 1.0, "diversity": 0.5},
                                seeds=[str(lib / "drums" / "drums1.ogg")])
        names = [r.track.relpath for r in recs]
        assert "drums/copy of drums0.flac" not in names
        assert "tones/copy of tones1.ogg" not in names
    finally:
        engine.close()
