"""Unit tests of the bounded decoder (recengine.analysis.decode): window planning, the ffmpeg command line,
decoding of real encoded files, tags, and the process runner's limits (RELIABILITY rule 4)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from recengine.analysis.decode import (
    DecodeFailure,
    DecoderMissing,
    Output,
    check_file,
    classify_ffmpeg_error,
    ffmpeg_argv,
    find_ffmpeg,
    pid_alive,
    plan_windows,
    preflight,
    read_tags,
    run_bounded,
    sweep_batch_dirs,
)
from recengine.analysis.decode import decoder as decoder_module
from recengine.analysis.decode.scratch import scratch_dir
from recengine.models import DecodedAudio
from recengine.testing import encode, tone, wav_bytes

from .bad_inputs import HLS, flac_s32, has_demuxer, huge_id3_header, mpeg_noise, piped_wav, text_as_audio
from .fakes.decoding import decode, decoder

SR = 22050
FORMATS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


def dominant_hz(samples: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / sr)[int(np.argmax(spectrum))])


def magnitude_at(samples: np.ndarray, hz: float, sr: int = SR) -> float:
    """Amplitude of the sinusoid at ``hz`` (Hann window, so the peak is scaled by 1/2)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    freqs = np.fft.rfftfreq(samples.size, 1 / sr)
    near = np.abs(freqs - hz) < 3
    return float(spectrum[near].max() * 4 / samples.size)


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    return find_ffmpeg()


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    """A 2 s 440 Hz tone in each format, tagged."""
    folder = tmp_path_factory.mktemp("tones")
    out = {}
    for i, fmt in enumerate(FORMATS):
        tags = {"artist": "The Testers", "title": f"Tone {fmt}", "album": "Sines", "track": f"{i + 1}/9"}
        out[fmt] = encode(tone(440.0, 2.0), folder / f"tone{fmt}", tags=tags)
    return out


# --- plan_windows ----------------------------------------------------------------------------------


def test_plan_short_file_is_whole_file():
    assert plan_windows(10.0, 3, 30.0) == [(0.0, 10.0)]
    assert plan_windows(100.0, 3, 30.0) == [(0.0, 100.0)]  # within 1.2 x the windows: all of it


def test_plan_long_file_spreads_windows_inside_duration():
    for duration in (200.0, 3 * 3600.0, 95.0 * 1.2 + 1):
        plan = plan_windows(duration, 3, 30.0)
        assert len(plan) == 3
        starts = [s for s, _ in plan]
        assert starts == sorted(starts)
        for start, length in plan:
            assert length == 30.0
            assert 0.0 <= start and start + length <= duration + 1e-6
        # spread over the file, not bunched at the start
        assert plan[-1][0] > duration / 2


@pytest.mark.parametrize("duration", [None, 0.0, -5.0, math.nan, math.inf, 1e12])
def test_plan_unknown_or_absurd_duration_reads_from_start(duration):
    assert plan_windows(duration, 2, 4.0) == [(0.0, 8.0)]


# --- ffmpeg_argv --------------------------------------------------------------------------------------


def test_argv_is_safe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ffmpeg_argv("/usr/bin/ffmpeg", [Output(Path("-rf:x.mp3"), [(10.0, 5.0), (50.0, 5.0)])], SR)
    assert argv[0] == "/usr/bin/ffmpeg"
    assert "-nostdin" in argv
    url = "file:" + str(tmp_path / "-rf:x.mp3")
    inputs = [i for i, a in enumerate(argv) if a == "-i"]
    assert len(inputs) == 2
    segment_start = 0
    for pos in inputs:
        assert argv[pos + 1] == url  # absolute, behind file:, never an option or a protocol
        # input options apply to the next input only: each input has its own whitelist and seek
        before = argv[segment_start:pos]
        assert before[before.index("-protocol_whitelist") + 1] == "file"
        assert "-ss" in before and "-t" in before
        segment_start = pos + 2
    assert argv[-1] == "pipe:1" and "f32le" in argv
    graph = argv[argv.index("-filter_complex") + 1]
    assert "[0:a:0]" in graph and "[1:a:0]" in graph and "concat=n=2" in graph
    assert graph.count("rematrix_maxval=1") == 2 and graph.count("channel_layouts=mono") == 2
    assert argv[argv.index("-ar") + 1] == str(SR) and argv[argv.index("-ac") + 1] == "1"


def test_argv_single_window_from_start_has_no_seek():
    argv = ffmpeg_argv("ffmpeg", [Output(Path("/music/a.flac"), [(0.0, 12.0)])], SR)
    assert "-ss" not in argv
    assert argv[argv.index("-t") + 1] == "12.000"
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.startswith("[0:a:0]") and "concat" not in graph
    assert argv[argv.index("-map") + 1] == "[a]"
    assert argv.index("-protocol_whitelist") < argv.index("-i")


# --- decode ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_formats(tones, ffmpeg, fmt):
    got = decode(tones[fmt], ffmpeg=ffmpeg, windows=2, window_s=5.0)
    assert got.sample_rate == SR and got.decoder == "ffmpeg"
    assert got.samples.dtype == np.float32 and got.samples.ndim == 1
    assert abs(got.samples.size - 2.0 * SR) < 0.05 * SR  # codec padding aside, the whole 2 s
    assert abs(got.duration - 2.0) < 0.1
    assert abs(dominant_hz(got.samples) - 440.0) < 2.0  # resampled right: the tone is where it was
    assert 0.3 < np.abs(got.samples).max() < 0.7


def test_decode_long_file_reads_only_windows(tmp_path, ffmpeg):
    path = tmp_path / "long.flac"
    encode(tone(440.0, 180.0, sr=8000), path, sr=8000)
    started = time.monotonic()
    got = decode(path, ffmpeg=ffmpeg, windows=2, window_s=1.0)
    assert time.monotonic() - started < 5
    assert abs(got.samples.size - 2 * SR) < 0.02 * SR
    assert abs(got.duration - 180.0) < 0.5
    assert len(got.windows) == 2 and all(0 < s < 179 and n == 1.0 for s, n in got.windows)
    assert abs(dominant_hz(got.samples) - 440.0) < 2.0


def test_decode_downmixes_stereo(tmp_path, ffmpeg):
    left, right = tone(440.0, 2.0), tone(880.0, 2.0)
    path = tmp_path / "stereo.wav"
    path.write_bytes(wav_bytes(np.stack([left, right], axis=1), SR, channels=2))
    got = decode(path, ffmpeg=ffmpeg)
    assert got.samples.ndim == 1 and abs(got.samples.size - 2 * SR) < 10
    # both channels, each at half amplitude: a mean, not one channel
    assert magnitude_at(got.samples, 440) == pytest.approx(0.25, rel=0.1)
    assert magnitude_at(got.samples, 880) == pytest.approx(0.25, rel=0.1)


@pytest.mark.parametrize("windows", [1, 2])
def test_decode_downmix_of_six_channels_does_not_clip(tmp_path, ffmpeg, windows):
    """-ac 1 alone would sum 5.1 to a peak of 1.7; the mix is scaled to stay within [-1, 1]."""
    six = np.repeat(tone(440.0, 4.0)[:, None], 6, axis=1)
    path = tmp_path / "six.wav"
    path.write_bytes(wav_bytes(six, SR, channels=6))
    got = decode(path, ffmpeg=ffmpeg, windows=windows, window_s=1.0 if windows > 1 else 30.0)
    assert 0.45 < np.abs(got.samples).max() <= 1.0


def test_segment_is_pydub_view(tones, ffmpeg):
    got = decode(tones[".flac"], ffmpeg=ffmpeg)
    seg = got.segment()
    assert seg.frame_rate == SR and seg.channels == 1 and seg.sample_width == 2
    assert abs(len(seg) - 2000) <= 5  # milliseconds
    assert seg.frame_count() == got.samples.size


@pytest.mark.parametrize("fmt", [".mp3", ".flac", ".ogg", ".opus", ".m4a"])
def test_read_tags(tones, fmt):
    tags = read_tags(tones[fmt])
    assert tags.artist == "The Testers"
    assert tags.title == f"Tone {fmt}"
    assert tags.album == "Sines"
    assert tags.tracknumber == FORMATS.index(fmt) + 1
    assert tags.duration == pytest.approx(2.0, abs=0.1)


def test_read_tags_never_raises(tmp_path):
    junk = huge_id3_header(tmp_path / "junk.mp3")
    assert read_tags(junk).artist is None
    assert read_tags(tmp_path / "missing.flac").duration is None


# --- classification -------------------------------------------------------------------------------------


def test_check_file_classes(tmp_path):
    (tmp_path / "empty.mp3").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo.wav")
    with pytest.raises(DecodeFailure) as e:
        check_file(tmp_path / "empty.mp3")
    assert e.value.reason == "empty"
    with pytest.raises(DecodeFailure) as e:
        check_file(tmp_path / "gone.mp3")
    assert e.value.reason == "vanished"
    started = time.monotonic()
    with pytest.raises(DecodeFailure) as e:
        check_file(tmp_path / "fifo.wav")  # never opened: opening a FIFO blocks
    assert e.value.reason == "not_audio" and time.monotonic() - started < 1


@pytest.mark.parametrize(
    "stderr",
    [
        "Output file #0 does not contain any stream\n",
        "Output file does not contain any stream\n",
        "Stream map '0:a:0' matches no streams.\nTo ignore this, add a trailing '?' to the map.\n",
        "Stream specifier ':a:0' in filtergraph description [0:a:0][1:a:0]concat=n=2:v=0:a=1[a] matches no streams.\n",
    ],
)
def test_no_audio_stream_messages_of_all_versions(tmp_path, stderr):
    video = tmp_path / "video.m4a"
    video.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(200))
    assert classify_ffmpeg_error(video, stderr).reason == "no_audio_stream"


def test_image_is_not_audio_even_without_stream(tmp_path):
    png = tmp_path / "cover.mp3"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert classify_ffmpeg_error(png, "Stream map '0:a:0' matches no streams.").reason == "not_audio"


def test_text_never_reaches_soundfile(tmp_path, ffmpeg, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the libsndfile fallback ran on a text file")

    monkeypatch.setattr(decoder_module, "decode_soundfile", refuse)
    for path in text_as_audio(tmp_path):
        with pytest.raises(DecodeFailure) as e:
            decode(path, ffmpeg=ffmpeg)
        assert e.value.reason == "not_audio", e.value


def test_playlist_disguised_as_audio_never_reaches_ffmpeg(tmp_path):
    hls = tmp_path / "list.mp3"
    hls.write_text(HLS)
    with pytest.raises(DecodeFailure) as e:
        decode(hls, ffmpeg="/nonexistent/ffmpeg")  # would raise DecoderMissing if it were run
    assert e.value.reason == "not_audio"


def test_truncated_file_with_long_header_duration(tmp_path, ffmpeg):
    """The header says 6 s but only ~0.6 s is left: windows past the end, then a read from 0."""
    full = encode(tone(440.0, 6.0), tmp_path / "full.mp3")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: 10 * 1024])
    assert read_tags(cut).duration and read_tags(cut).duration > 5
    with pytest.raises(DecodeFailure) as e:
        decode(cut, ffmpeg=ffmpeg, windows=2, window_s=1.0)
    assert e.value.reason == "too_short"
    got = decode(cut, ffmpeg=ffmpeg, windows=2, window_s=1.0, min_duration_s=0.3)
    assert got.windows == [(0.0, 2.0)] and got.duration < 1.0


def test_missing_binary_is_decoder_missing(tones, monkeypatch):
    with pytest.raises(DecoderMissing):
        decode(tones[".wav"], ffmpeg="/nonexistent/ffmpeg")
    monkeypatch.setenv("RECENGINE_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(DecoderMissing, match="install"):
        find_ffmpeg()


# --- run_bounded -----------------------------------------------------------------------------------------


def test_run_bounded_keeps_exit_status():
    for _ in range(20):  # the child is reaped, never killed after closing its pipes
        r = run_bounded(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10, max_bytes=100)
        assert (r.returncode, r.stdout, r.stderr, r.timed_out, r.truncated) == (
            3,
            b"out\n",
            b"err\n",
            False,
            False,
        )


def test_run_bounded_kills_process_group_on_timeout():
    started = time.monotonic()
    r = run_bounded(["sh", "-c", "sleep 100 & echo $!; echo $$; sleep 100"], timeout=1.0, max_bytes=1000)
    assert time.monotonic() - started < 3
    assert r.timed_out and r.returncode == -9
    pids = [int(p) for p in r.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 2
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in pids), "a child of the timed-out process survived"


def test_run_bounded_child_that_closes_pipes_and_stays():
    r = run_bounded(["sh", "-c", "echo $$; exec >&- 2>&-; sleep 100"], timeout=1.0, max_bytes=1000)
    assert r.timed_out and r.returncode == -9
    assert not pid_alive(int(r.stdout))


def test_run_bounded_caps_output():
    flood = [sys.executable, "-c", "import os\nwhile True: os.write(1, bytes(65536))"]
    started = time.monotonic()
    r = run_bounded(flood, timeout=20, max_bytes=3_000_000)
    assert time.monotonic() - started < 5
    assert r.truncated and not r.timed_out
    assert len(r.stdout) == 3_000_000
    assert r.returncode == -9  # killed, not left writing


def test_run_bounded_has_no_stdin():
    r = run_bounded(["sh", "-c", "cat; echo done"], timeout=5, max_bytes=100)
    assert r.stdout == b"done\n" and r.returncode == 0


def test_run_bounded_missing_binary_raises_oserror():
    with pytest.raises(OSError):
        run_bounded(["/nonexistent/ffmpeg"], timeout=1, max_bytes=10)


def test_preflight_of_real_ffmpeg(ffmpeg):
    assert preflight(ffmpeg) == ffmpeg
    out = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, timeout=10)
    assert out.returncode == 0


def test_decode_batch_matches_decode_and_isolates_bad_files(tmp_path, ffmpeg, monkeypatch):
    """One ffmpeg process for several files gives the same samples as one per file; a bad file in
    the batch makes each file be decoded alone, so every outcome is unchanged."""
    from recengine.testing import noise

    good = [encode(tone(300 + 100 * i, 4.0) + noise(4.0, amp=0.05, seed=i), tmp_path / f"g{i}{ext}")
            for i, ext in enumerate((".flac", ".ogg", ".mp3"))]
    bad = tmp_path / "bad.flac"
    bad.write_bytes(np.random.default_rng(0).bytes(200_000))
    silent = encode(np.zeros(22050 * 3, np.float32), tmp_path / "silent.wav")
    kw = {"ffmpeg": ffmpeg, "windows": 2, "window_s": 1.0}
    calls = []
    real = decoder_module.run_bounded
    monkeypatch.setattr(decoder_module, "run_bounded", lambda argv, **k: calls.append(argv) or real(argv, **k))

    together = decoder(**kw).decode_batch([(p, read_tags(p)) for p in good])
    assert len(calls) == 1  # one process for three files
    for path, got in zip(good, together, strict=True):
        alone = decode(path, **kw)
        assert got.samples.size == alone.samples.size and np.allclose(got.samples, alone.samples, atol=1e-6)
        assert got.duration == pytest.approx(alone.duration)

    scratch = Path(scratch_dir() or tempfile.gettempdir())
    before = set(scratch.glob("recengine-batch-*"))
    calls.clear()
    mixed = decoder(**kw).decode_batch([(p, read_tags(p)) for p in (good[0], bad, silent)])
    assert isinstance(mixed[0], DecodedAudio) and np.allclose(mixed[0].samples, together[0].samples, atol=1e-6)
    assert isinstance(mixed[1], DecodeFailure) and mixed[1].reason == "decode_error"
    assert isinstance(mixed[2], DecodeFailure) and mixed[2].reason == "silent"
    assert set(scratch.glob("recengine-batch-*")) <= before  # the batch's scratch folder is gone

    # a worker killed mid-batch leaves its folder; the next worker removes it (its pid is dead)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    orphan = scratch / f"recengine-batch-{dead}-abc"
    orphan.mkdir()
    (orphan / "0.raw").write_bytes(b"\0" * 1024)
    mine = scratch / f"recengine-batch-{os.getpid()}-def"
    mine.mkdir()
    assert sweep_batch_dirs() >= 1
    assert not orphan.exists() and mine.exists()
    mine.rmdir()


# --- tracks whose tags have no duration (issue 12 item 7) --------------------------------------------


def test_tracker_module_with_a_quiet_first_minute_is_not_silent(tmp_path, ffmpeg):
    """A .mod has no duration in any tag: ffmpeg's demuxer (libopenmpt) knows it, so the windows
    spread over the whole song instead of its quiet first minute."""
    from .fakes.tracker import PATTERN_S, write_mod

    if not has_demuxer(ffmpeg, "libopenmpt"):
        pytest.skip("this ffmpeg has no libopenmpt demuxer")
    path = write_mod(tmp_path / "quiet start.mod", quiet_patterns=9, loud_patterns=8)  # 69 s quiet, 61 s loud
    assert read_tags(path).duration is None
    got = decode(path, ffmpeg=ffmpeg)
    assert got.duration == pytest.approx(17 * PATTERN_S, abs=0.5)
    assert max(start for start, _ in got.windows) > 70
    assert np.abs(got.samples).max() > 0.1


def test_wav_without_sizes_is_windowed_over_its_length(tmp_path, ffmpeg):
    """A WAV written to a pipe (sizes 0xFFFFFFFF: its header says 27 hours) with 70 s of silence,
    then 50 s of tone: the demuxer's duration (from the file size) places the windows."""
    path = piped_wav(tmp_path / "piped.wav", quiet_s=70, tone_s=50, ffmpeg=ffmpeg)
    header = read_tags(path).duration
    assert header is None or header > 3600
    got = decode(path, ffmpeg=ffmpeg)
    assert got.duration == pytest.approx(120.0, abs=0.5)
    assert abs(dominant_hz(got.samples) - 440.0) < 2.0


def test_unknown_length_with_a_quiet_start_is_searched_before_it_is_called_silent(tmp_path, ffmpeg, monkeypatch):
    """When not even the demuxer knows the length, a silent first read is not the verdict: the
    decoder looks further into the file, then analyses windows spread over what it found."""
    path = piped_wav(tmp_path / "piped.wav", quiet_s=70, tone_s=100, ffmpeg=ffmpeg)
    monkeypatch.setattr(decoder_module, "probe_duration", lambda *a, **k: None)
    got = decode(path, ffmpeg=ffmpeg)
    assert got.duration > 120 and max(start for start, _ in got.windows) > 70
    assert abs(dominant_hz(got.samples) - 440.0) < 2.0
    silent = piped_wav(tmp_path / "silent.wav", quiet_s=150, ffmpeg=ffmpeg)  # all of it silent: still silent
    with pytest.raises(DecodeFailure) as e:
        decode(silent, ffmpeg=ffmpeg)
    assert e.value.reason == "silent"


@pytest.mark.parametrize("windows", [{}, {"windows": 1, "window_s": 1.0}])
def test_flac_this_ffmpeg_cannot_decode_is_a_decode_error_not_too_short(tmp_path, ffmpeg, windows):
    """32-bit FLAC (written by the imageio-ffmpeg binary, a recent ffmpeg): older ffmpeg builds
    decode nothing from it and exit 0. That is a decode_error (or audio, where ffmpeg reads it),
    also when the window planned past the start comes back empty and the read from the start too."""
    path = flac_s32(tmp_path / "s32.flac")
    assert read_tags(path).duration == pytest.approx(3.0, abs=0.1)
    try:
        got = decode(path, ffmpeg=ffmpeg, **windows)
    except DecodeFailure as exc:
        assert exc.reason == "decode_error", exc
    else:
        assert abs(dominant_hz(got.samples) - 440.0) < 2.0


# --- libraries' chatter stays out of the terminal (issue 12 item 11) ------------------------------


def test_libsndfile_chatter_is_logged_at_debug_not_printed(tmp_path, ffmpeg):
    """A damaged MP3 that ffmpeg refuses goes to the libsndfile fallback, whose libmpg123 prints
    notes on fd 2: they are caught and logged at debug level instead."""
    junk = mpeg_noise(tmp_path / "junk.mp3")
    raw = subprocess.run([sys.executable, "-c", f"import soundfile; soundfile.read({str(junk)!r})"],
                         capture_output=True, text=True, timeout=60)
    if "mpg123" not in raw.stderr:
        pytest.skip("this libsndfile reads the file quietly")
    code = ("import logging, sys; sys.path.insert(0, {root!r}); logging.basicConfig(level=logging.{level});"
            "from tests.fakes.decoding import decode; decode({path!r}, ffmpeg={ffmpeg!r})")
    root = str(Path(__file__).resolve().parents[1])
    quiet = subprocess.run([sys.executable, "-c", code.format(root=root, level="WARNING", path=str(junk),
                                                             ffmpeg=ffmpeg)],
                           capture_output=True, text=True, timeout=120)
    assert "mpg123" not in quiet.stderr, quiet.stderr[:500]
    loud = subprocess.run([sys.executable, "-c", code.format(root=root, level="DEBUG", path=str(junk),
                                                            ffmpeg=ffmpeg)],
                          capture_output=True, text=True, timeout=120)
    assert "DEBUG:recengine.analysis.decode.fallback" in loud.stderr and "mpg123" in loud.stderr
