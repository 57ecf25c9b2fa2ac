"""History imports: ListenBrainz, Last.fm CSV, .scrobbler.log, normalisation and matching.

Policy under test: a bad record is skipped and counted (``ImportResult.problems``, each with its
line); ``strict=True`` raises on the first; a file that is not the format at all always raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recengine.importers import (
    HistoryImportError,
    Listen,
    detect_format,
    load_history,
    match_listens,
    match_rate,
    normalise,
    parse_time,
)
from recengine.models import Track

T0 = 1_700_000_000


def lb(artist, title, at, album=None, **info):
    tm = {"artist_name": artist, "track_name": title}
    if album:
        tm["release_name"] = album
    if info:
        tm["additional_info"] = info
    return {"listened_at": at, "track_metadata": tm, "recording_msid": "x"}


# --- ListenBrainz -------------------------------------------------------------------------------


def test_listenbrainz_array(tmp_path):
    f = tmp_path / "listens.json"
    f.write_text(
        json.dumps([lb("Daft Punk", "One More Time", T0, "Discovery"), lb("名前", "歌", T0 + 1)], indent=2),
        encoding="utf-8",
    )
    result = load_history(f, "listenbrainz")
    assert result.format == "listenbrainz" and result.skipped == 0
    assert result.listens == [
        Listen("Daft Punk", "One More Time", "Discovery", float(T0)),
        Listen("名前", "歌", None, float(T0 + 1)),
    ]


def test_listenbrainz_jsonl_with_bad_lines(tmp_path):
    f = tmp_path / "listens.jsonl"
    lines = [
        json.dumps(lb("A", "One", T0, file_path="/home/u/Music/A/One.flac")),
        "",
        "{not json",
        json.dumps({"track_metadata": {"artist_name": "A"}, "listened_at": T0}),  # no track_name
        json.dumps(lb("B", "Two", "2023-11-14T22:13:20Z", location="file:///mnt/m/B/Two%20x.mp3")),
        json.dumps({"track_metadata": {"artist_name": "C", "track_name": "Now"}}),  # playing_now: no time
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_history(f, "listenbrainz")
    assert [(x.artist, x.title, x.at, x.path) for x in result.listens] == [
        ("A", "One", float(T0), "/home/u/Music/A/One.flac"),
        ("B", "Two", float(T0), "/mnt/m/B/Two x.mp3"),
    ]
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [
        (3, "invalid JSON"),
        (4, "missing track_metadata.artist_name or track_name"),
        (6, "missing listened_at"),
    ]
    assert str(result.problems[0]).startswith(f"{f}:3: invalid JSON")
    with pytest.raises(HistoryImportError) as info:
        load_history(f, "listenbrainz", strict=True)
    assert info.value.line == 3 and info.value.file == str(f)


def test_listenbrainz_array_errors(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('[\n  {"listened_at": 1,\n  oops\n]', encoding="utf-8")
    with pytest.raises(HistoryImportError, match=r"broken.json:3: invalid JSON") as info:
        load_history(f, "listenbrainz")
    assert info.value.line == 3
    f.write_text(json.dumps([lb("A", "B", T0), {"foo": 1}]), encoding="utf-8")
    result = load_history(f, "listenbrainz")
    assert len(result.listens) == 1 and "item 2" in result.problems[0].reason
    f.write_text('"just a string"', encoding="utf-8")
    with pytest.raises(HistoryImportError, match="expected a JSON array"):
        load_history(f, "listenbrainz")
    f.write_text(json.dumps({"payload": {"listens": [lb("A", "B", T0)]}}), encoding="utf-8")
    assert len(load_history(f, "listenbrainz").listens) == 1  # API response form


def test_all_bad_records_is_a_file_error(tmp_path):
    f = tmp_path / "listens.jsonl"
    f.write_text('{"a": 1}\n{"b": 2}\n', encoding="utf-8")
    with pytest.raises(HistoryImportError, match="no valid listenbrainz record") as info:
        load_history(f, "listenbrainz")
    assert info.value.line == 1


# --- Last.fm CSV --------------------------------------------------------------------------------


def test_lastfm_csv_without_header(tmp_path):
    f = tmp_path / "scrobbles.csv"
    f.write_bytes(
        "\ufeffBeyoncé,Lemonade,Formation,23 Apr 2016 18:05\n"
        '"Simon & Garfunkel","Bookends","Mrs. Robinson (Remastered)",1461434700\n'
        "Artist,,Title without album,1461434800000\n"  # milliseconds
        "Now,Playing,Song,\n"  # now-playing row: no date
        "Only,Two\n"
        '"Multi\nLine",Album,Title,24 Apr 2016 10:00\n'
        "Bad,Date,Here,31 Foo 2016 10:00\n".encode()
    )
    result = load_history(f, "lastfm")
    assert [(x.artist, x.album, x.title, x.at) for x in result.listens] == [
        ("Beyoncé", "Lemonade", "Formation", datetime(2016, 4, 23, 18, 5, tzinfo=UTC).timestamp()),
        ("Simon & Garfunkel", "Bookends", "Mrs. Robinson (Remastered)", 1461434700.0),
        ("Artist", None, "Title without album", 1461434800.0),
        ("Multi\nLine", "Album", "Title", datetime(2016, 4, 24, 10, 0, tzinfo=UTC).timestamp()),
    ]
    assert [p.line for p in result.problems] == [4, 5, 8]
    assert "no timestamp" in result.problems[0].reason or "unreadable" in result.problems[0].reason
    assert "at least 4 columns" in result.problems[1].reason
    assert "unknown month" in result.problems[2].reason


def test_lastfm_csv_with_header(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text(
        "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n"
        f'{T0},"14 Nov 2023, 22:13",Radiohead,,OK Computer,,Karma Police,\n'
        f',"14 Nov 2023, 22:13",Radiohead,,OK Computer,,No Surprises,\n',
        encoding="utf-8",
    )
    result = load_history(f, "lastfm")
    assert [(x.artist, x.album, x.title, x.at) for x in result.listens] == [
        ("Radiohead", "OK Computer", "Karma Police", float(T0))
    ]
    assert [p.line for p in result.problems] == [3]
    f.write_text("Artist,Title,Album\nA,B,C\n", encoding="utf-8")
    with pytest.raises(HistoryImportError, match=r":1: header has no date column"):
        load_history(f, "lastfm")


def test_lastfm_invalid_utf8_line(tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes(b"A,B,C,1461434700\n\xff\xfe,B,C,1461434700\nD,E,F,1461434701\n")
    result = load_history(f, "lastfm")
    assert [x.artist for x in result.listens] == ["A", "D"]
    assert [(p.line, p.reason) for p in result.problems] == [(2, "not valid UTF-8")]


# --- .scrobbler.log -----------------------------------------------------------------------------

SCROBBLER_LOG = (
    "#AUDIOSCROBBLER/1.1\n"
    "#TZ/UTC\n"
    "#CLIENT/Rockbox sansaclipplus $Revision$\n"
    f"Massive Attack\tMezzanine\tTeardrop\t3\t330\tL\t{T0}\t10000730-e5a3-4a4c-a1c8-1f8ed1a2e5f6\n"
    f"Massive Attack\tMezzanine\tAngel\t1\t379\tS\t{T0 + 400}\t\n"
    f"Broken line without tabs {T0}\n"
    f"Portishead\tDummy\tRoads\t5\t305\tX\t{T0 + 800}\n"
    "Portishead\tDummy\tGlory Box\t11\t306\tL\tyesterday\n"
    f"Portishead\t\tSour Times\t4\t254\tL\t{T0 + 900}\n"
)


def test_scrobbler_log(tmp_path):
    f = tmp_path / ".scrobbler.log"
    f.write_text(SCROBBLER_LOG, encoding="utf-8")
    result = load_history(f, "scrobbler")
    assert result.listens == [
        Listen("Massive Attack", "Teardrop", "Mezzanine", float(T0), mbid="10000730-e5a3-4a4c-a1c8-1f8ed1a2e5f6"),
        Listen("Massive Attack", "Angel", "Mezzanine", float(T0 + 400), skipped=True),
        Listen("Portishead", "Sour Times", None, float(T0 + 900)),
    ]
    assert [p.line for p in result.problems] == [6, 7, 8]
    assert "7 or 8 TAB-separated fields" in result.problems[0].reason
    assert "rating must be L or S" in result.problems[1].reason
    assert "timestamp must be unix seconds" in result.problems[2].reason
    with pytest.raises(HistoryImportError, match=r"\.scrobbler\.log:6: expected 7 or 8"):
        load_history(f, "scrobbler", strict=True)


def test_scrobbler_log_needs_header(tmp_path):
    f = tmp_path / "x.log"
    f.write_text(f"A\tB\tC\t1\t100\tL\t{T0}\n", encoding="utf-8")
    with pytest.raises(HistoryImportError, match=r"x.log:1: not a .scrobbler.log"):
        load_history(f, "scrobbler")
    f.write_text("", encoding="utf-8")
    with pytest.raises(HistoryImportError, match="no #AUDIOSCROBBLER header"):
        load_history(f, "scrobbler")


def test_detect_and_load(tmp_path):
    files = {
        "a.log": SCROBBLER_LOG,
        "b.json": json.dumps([lb("A", "B", T0)]),
        "c.jsonl": json.dumps(lb("A", "B", T0)) + "\n",
        "d.csv": "A,B,C,1461434700\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert [detect_format(tmp_path / n) for n in files] == [
        "scrobbler",
        "listenbrainz",
        "listenbrainz",
        "lastfm",
    ]
    assert load_history(tmp_path / "a.log").format == "scrobbler"
    assert len(load_history(tmp_path / "d.csv", "lastfm").listens) == 1
    with pytest.raises(ValueError, match="unknown history format"):
        load_history(tmp_path / "d.csv", "itunes")


def test_parse_time():
    assert parse_time(T0) == T0
    assert parse_time(f"{T0}") == T0
    assert parse_time(T0 * 1000) == T0
    assert parse_time("14 Nov 2023 22:13") == datetime(2023, 11, 14, 22, 13, tzinfo=UTC).timestamp()
    assert parse_time("2023-11-14T22:13:20+00:00") == T0
    for bad in ("", "soon", None, True, float("nan"), 0, -5, "31 Foo 2020 10:00"):
        with pytest.raises(ValueError):
            parse_time(bad)


# --- normalise and match ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("The Beatles", "Beatles, The"),
        ("The Beatles", "beatles"),
        ("Beyoncé", "BEYONCE"),
        ("Sigur Rós", "Sigur Ros"),
        ("Simon & Garfunkel", "Simon and Garfunkel"),
        ("Here Comes the Sun (Remastered 2009)", "Here Comes The Sun"),
        ("Here Comes the Sun - 2009 Remaster", "Here comes the sun"),
        ("Get Lucky (feat. Pharrell Williams)", "Get Lucky"),
        ("Daft Punk feat. Pharrell Williams", "Daft Punk"),
        ("Daft Punk ft. Pharrell", "Daft Punk"),
        ("R.E.M.", "REM"),
        ("Don't Stop Me Now", "Dont Stop Me Now"),
        ("Song [Live] {Bonus}", "song"),
        ("Mötley Crüe", "Motley Crue"),
        ("Røyksopp", "Royksopp"),
        ("名前", "名前"),
    ],
)
def test_normalise_equal(a, b):
    assert normalise(a) == normalise(b)


def test_normalise_keeps_what_matters():
    assert normalise("Song One") != normalise("Song Two")
    assert normalise("The The") == "the"
    assert normalise("!!!") == "!!!"  # nothing left: the casefolded text, not ""
    assert normalise("(Intro)") == "(intro)"
    assert normalise(None) == normalise("") == ""
    assert normalise("Love - Live Forever") == "love"  # the cost of dropping "- Live ..." suffixes


def track(track_id, relpath, artist=None, title=None, album=None, root="/srv/music"):
    return Track(track_id, root, relpath, artist=artist, title=title, album=album)


LIBRARY = [
    track(1, "Massive Attack/Mezzanine/01 Angel.flac", "Massive Attack", "Angel", "Mezzanine"),
    track(2, "Massive Attack/Mezzanine/03 Teardrop.flac", "Massive Attack", "Teardrop", "Mezzanine"),
    track(
        3, "Beatles/Abbey Road/07 Here Comes the Sun.flac", "The Beatles", "Here Comes the Sun", "Abbey Road"
    ),
    track(4, "Beatles/1/25 Here Comes the Sun.flac", "The Beatles", "Here Comes the Sun", "1"),
    track(5, "Daft Punk/RAM/08 Get Lucky.flac", "Daft Punk", "Get Lucky", "Random Access Memories"),
    track(6, "A/X/01.flac", "A", "One", "X"),
    track(7, "B/Y/01.flac", "B", "One", "Y"),
    track(8, "Untagged/track.flac"),
]


def test_match_by_path_then_tags():
    listens = [
        # path from another machine: the longest trailing match wins, tags are not needed
        Listen("?", "?", None, T0, path="/home/u/Music/A/X/01.flac"),
        Listen("?", "?", None, T0, path="D:\\Music\\b\\y\\01.FLAC"),  # Windows, other case
        Listen("?", "?", None, T0, path="file:///mnt/phone/Untagged/track.flac"),
        # only "01.flac" agrees and two tracks have it: ambiguous, tags decide
        Listen("A", "One", None, T0, path="/elsewhere/01.flac"),
        Listen("?", "?", None, T0, path="/elsewhere/01.flac"),  # and no tags match: unmatched
        Listen("Massive Attack", "Teardrop", "Mezzanine", T0),
        Listen("massive attack", "ANGEL", None, T0, skipped=True),
        Listen("Beatles", "Here Comes The Sun - 2009 Remaster", "1", T0),  # album disambiguates
        Listen("The Beatles", "Here Comes the Sun", "Unknown Best Of", T0),  # album no help: lowest id
        Listen("Daft Punk feat. Pharrell Williams", "Get Lucky (Radio Edit)", None, T0),
        Listen("Nobody", "Nothing", None, T0),
    ]
    matches, unmatched = match_listens(listens, LIBRARY)
    assert [tid for _, tid in matches] == [6, 7, 8, 6, 2, 1, 4, 3, 5]
    assert [x.title for x in unmatched] == ["?", "Nothing"]
    assert match_rate(len(matches), len(unmatched)) == pytest.approx(9 / 11)
    assert matches[5][0].skipped is True


def test_match_rate_of_an_import(tmp_path):
    """End to end: a scrobbler log against a library, with the rate a user would be shown."""
    f = tmp_path / ".scrobbler.log"
    f.write_text(SCROBBLER_LOG, encoding="utf-8")
    result = load_history(f, "scrobbler")
    matches, unmatched = match_listens(result.listens, LIBRARY)
    assert [(x.title, tid) for x, tid in matches] == [("Teardrop", 2), ("Angel", 1)]
    assert [x.title for x in unmatched] == ["Sour Times"]
    assert match_rate(len(matches), len(unmatched)) == pytest.approx(2 / 3)
    assert match_rate(0, 0) == 0.0


# --- issue 12 item 16: bad records never stop an import, timestamps bounded, files streamed --------


def test_a_deeply_nested_record_is_skipped_and_counted(tmp_path):
    deep = '{"listened_at": 1700000000, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    f = tmp_path / "listens.jsonl"
    f.write_text("\n".join([json.dumps(lb("A", "One", T0)), deep, json.dumps(lb("B", "Two", T0 + 1))]) + "\n")
    result = load_history(f)
    assert [x.title for x in result.listens] == ["One", "Two"]
    assert result.skipped == 1 and (result.problems[0].line, result.problems[0].reason) == (2, "invalid JSON: nested too deeply")
    f = tmp_path / "listens.json"  # the same inside an array: the item is stepped over
    f.write_text("[" + ",\n".join([json.dumps(lb("A", "One", T0)), deep, json.dumps(lb("B", "Two", T0 + 1))]) + "]")
    result = load_history(f)
    assert [x.title for x in result.listens] == ["One", "Two"] and "item 2: nested too deeply" in str(result.problems[0])
    f.write_text('{"payload": {"listens": [' + "[" * 100_000 + "]" * 100_000 + "]}}")  # a whole document
    with pytest.raises(HistoryImportError, match="nested too deeply"):
        load_history(f)


def test_timestamps_are_bounded(tmp_path):
    for bad in (1e308, "99999999999999", 10 ** 15 * 1000, "2999-01-01T00:00:00Z"):
        with pytest.raises(ValueError, match="in the future"):
            parse_time(bad)
    assert parse_time(T0 + 3600, now=T0) == T0 + 3600  # a fast device clock is forgiven a day
    with pytest.raises(ValueError, match="in the future"):
        parse_time(T0 + 2 * 86400, now=T0)
    f = tmp_path / "listens.jsonl"
    f.write_text(json.dumps(lb("A", "One", T0)) + "\n" + json.dumps(lb("A", "Two", 1e308)) + "\n")
    result = load_history(f)
    assert [x.title for x in result.listens] == ["One"] and "in the future" in result.problems[0].reason


def test_an_array_is_read_item_by_item_with_lines_for_its_errors(tmp_path, monkeypatch):
    from recengine.importers import listenbrainz

    monkeypatch.setattr(listenbrainz, "READ_CHARS", 64)  # items cross chunk boundaries
    items = [lb(f"Artist {i}", f'Title "{i}" é', T0 + i) for i in range(50)] + [{"foo": 1}]
    f = tmp_path / "listens.json"
    f.write_text(json.dumps(items, indent=2, ensure_ascii=False))
    result = load_history(f)
    assert [x.artist for x in result.listens] == [f"Artist {i}" for i in range(50)]
    assert result.listens[7].title == 'Title "7" é' and "item 51" in result.problems[0].reason
    text = f.read_text()
    f.write_text(text[: text.index('"Artist 30"')] + "oops" + text[text.index('"Artist 30"'):])
    with pytest.raises(HistoryImportError, match="invalid JSON") as info:
        load_history(f)
    assert info.value.line == text[: text.index('"Artist 30"')].count("\n") + 1
    f.write_text(text[:-5])
    with pytest.raises(HistoryImportError, match="invalid JSON"):
        load_history(f)
    f.write_text(text + " [")
    with pytest.raises(HistoryImportError, match="extra data"):
        load_history(f)


def test_import_history_records_in_batches_and_only_whole_files(tmp_path):
    from recengine.importers import Matcher, import_history

    f = tmp_path / "listens.jsonl"
    f.write_text("".join(json.dumps(lb("Massive Attack", "Teardrop", T0 + i)) + "\n" for i in range(25))
                 + "{bad\n" + json.dumps(lb("Nobody", "Nothing", T0)) + "\n")
    batches: list[list] = []
    report = import_history(f, user="ann", matcher=Matcher(LIBRARY), record_events=batches.append, batch=10)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert {(e.user, e.track_id, e.kind, e.source) for b in batches for e in b} == {("ann", 2, "play", "import:listenbrainz")}
    assert (report.listens, report.matched, report.unmatched, report.skipped) == (26, 25, 1, 1)
    assert report.match_rate == pytest.approx(25 / 26)
    broken = tmp_path / "cut.json"  # a download cut short: nothing is recorded, not half of it
    broken.write_text(json.dumps([lb("Massive Attack", "Teardrop", T0 + i) for i in range(25)])[:-30])
    batches.clear()
    with pytest.raises(HistoryImportError):
        import_history(broken, user="ann", matcher=Matcher(LIBRARY), record_events=batches.append, batch=10)
    assert batches == []


def test_a_long_history_is_streamed(tmp_path):
    """1,000,000 lines took 592 MB; memory must not follow the file's length (200,000 lines here)."""
    import subprocess
    import sys

    f = tmp_path / "listens.jsonl"
    line = json.dumps(lb("Massive Attack", "Teardrop", T0, "Mezzanine", media_player="x" * 100))
    f.write_text((line + "\n") * 200_000)
    script = (
        "import resource, sys\n"
        "from recengine.importers import Matcher, import_history\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "n = []\n"
        "r = import_history(sys.argv[1], user='u', matcher=Matcher([]), record_events=n.append)\n"
        "print(r.listens, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(f)], capture_output=True, text=True, check=True).stdout
    listens, grown_mb = map(int, out.split())
    assert listens == 200_000 and grown_mb < 40, f"RSS grew by {grown_mb} MB"
