"""Every bad input the test suite makes, each written by one generator here.

test_badinput.py scans :func:`make_corpus` (broken, odd and hostile files) in process and checks
each file's class; test_audio.py decodes single ones; test_scan.py reconciles :func:`special_entries`
and :func:`non_utf8_name`; test_bad_inputs.py puts all of them under one library with ten good
files, for `recengine scan` and for a live daemon (issue 12, "done when").

Outcomes are written as the failure ledger's reason (``empty``, ``decode_error`` ...), ``"ok"`` for
a featurised track, or ``"skipped:<reason>"`` for an entry listed in the catalog's ``skipped`` table.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
import unicodedata
import zlib
from pathlib import Path

import numpy as np

from recengine.analysis.decode import find_ffmpeg
from recengine.testing import encode, tone

from .fakes import ffmpeg_fake

SILENT_MINUTES = 20  # the plan says 3 hours; 20 minutes shows the same (windows only) and stays quick
HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n/etc/passwd\n#EXT-X-ENDLIST\n"


# --- single files ------------------------------------------------------------------------------------


def wav(samples: np.ndarray, sr: int, *, fmt: int = 1, bits: int = 16, lie: int = 0) -> bytes:
    """A WAV file by hand: ``samples`` (n, channels) floats; ``fmt`` 1 = PCM, 3 = float; ``lie``
    bytes added to the sizes in the header (a header claiming more data than the file holds)."""
    n, channels = samples.shape
    if fmt == 3:
        data = samples.astype("<f4").tobytes()
    elif bits == 8:
        data = np.round(samples * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 16:
        data = np.round(samples * 32767).astype("<i2").tobytes()
    else:  # 24-bit: the low three bytes of each little-endian int32
        as32 = np.round(samples * 8388607).astype("<i4").reshape(-1)
        data = as32.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    align = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, sr, sr * align, align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + 16 + 8 + len(data) + lie)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt_chunk
        + b"data"
        + struct.pack("<I", len(data) + lie)
        + data
    )


def sine(sr: int, seconds: float, hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return np.repeat((0.5 * np.sin(2 * np.pi * hz * t))[:, None], channels, axis=1)


def png_bytes() -> bytes:
    """A valid 1x1 RGBA PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00"))
        + chunk(b"IEND", b"")
    )


def lavfi(ff: str, source: str, out: Path, *args: str) -> None:
    """Write ``out`` from ffmpeg's lavfi ``source`` with the output ``args``."""
    cmd = [ff, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, *args, str(out)]
    subprocess.run(cmd, check=True, timeout=60)


def huge_id3_header(path: Path) -> Path:
    """An ID3v2 tag whose header claims 256 MiB, then 300 random bytes."""
    path.write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + os.urandom(300))
    return path


def mpeg_noise(path: Path, seed: int = 1) -> Path:
    """300 MPEG audio frame headers each followed by noise: ffmpeg refuses it, libsndfile's
    libmpg123 reads it noisily (on fd 2)."""
    rng = np.random.default_rng(seed)
    path.write_bytes(b"".join(b"\xff\xfb\x90\x64" + rng.bytes(413) for _ in range(300)))
    return path


def text_as_audio(folder: Path) -> list[Path]:
    """Text files with audio names (one of them not ASCII)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in (("notes.wav", "RIFF? no, just notes\n" * 30), ("japanese.ogg", "名前のない曲\n" * 40)):
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


def piped_wav(path: Path, *, quiet_s: float, tone_s: float = 0.0, ffmpeg: str | None = None) -> Path:
    """A WAV written to a pipe (sizes 0xFFFFFFFF: its header says 27 hours): ``quiet_s`` of digital
    silence, then ``tone_s`` of a 440 Hz sine, 22.05 kHz mono."""
    ff = ffmpeg or find_ffmpeg()
    inputs = ["-f", "lavfi", "-i", f"anullsrc=r=22050:cl=mono:d={quiet_s:g}"]
    if tone_s:
        inputs += ["-f", "lavfi", "-i", f"sine=f=440:r=22050:d={tone_s:g}", "-filter_complex",
                   "[0][1]concat=n=2:v=0:a=1"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        subprocess.run([ff, "-nostdin", "-v", "error", *inputs, "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"],
                       stdout=fh, check=True, timeout=60)
    return path


def flac_s32(path: Path) -> Path:
    """3 s of 440 Hz as 32-bit FLAC, written by the imageio-ffmpeg binary (a recent ffmpeg): older
    ffmpeg builds decode nothing from it and exit 0."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=3",
                    "-ac", "1", "-sample_fmt", "s32", "-c:a", "flac", "-strict", "experimental",
                    "-bits_per_raw_sample", "32", str(path)], check=True, timeout=60)
    return path


def non_utf8_name(folder: Path, name: bytes = b"\xff.wav", freq: float = 500.0) -> Path:
    """A good 1.2 s tone under a file name that is not valid UTF-8 (old Samba shares, FAT copies);
    the returned Path holds the name's bytes as surrogates (``os.fsencode`` gives them back)."""
    staged = encode(tone(freq, 1.2), folder / f"staged-{os.getpid()}.wav")
    target = os.fsencode(folder) + b"/" + name
    os.rename(staged, target)
    return Path(os.fsdecode(target))


def special_entries(lib: Path, outside: Path) -> dict[str, str]:
    """Entries that are not regular files inside the library, made in ``lib``: a FIFO, a symlink
    loop, symlinks out of the library (to a file in ``outside``, to /dev/zero), a dangling symlink,
    a symlink to a folder and, where mknod is allowed, a character device. Returns name -> the
    reason class each is skipped with."""
    lib.mkdir(parents=True, exist_ok=True)
    encode(tone(660, 1.2), outside / "x.wav")
    os.mkfifo(lib / "pipe.wav")
    os.symlink("loop.mp3", lib / "loop.mp3")
    os.symlink(outside / "x.wav", lib / "out.wav")
    os.symlink("/dev/zero", lib / "zero.wav")
    os.symlink("missing.wav", lib / "dangling.wav")
    os.symlink(outside, lib / "elsewhere")
    expected = {"pipe.wav": "fifo", "loop.mp3": "symlink_loop", "out.wav": "symlink_outside",
                "zero.wav": "symlink_outside", "dangling.wav": "broken_symlink", "elsewhere": "directory_symlink"}
    try:
        os.mknod(lib / "tty.wav", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        expected["tty.wav"] = "device"
    except (PermissionError, OSError):
        pass  # no CAP_MKNOD here
    return expected


def hanging_and_flooding(folder: Path) -> tuple[Path, Path]:
    """Two good files whose names make the logging ffmpeg (:func:`fake_ffmpeg_env`) hang ignoring
    SIGTERM (HANGME) or write endless bytes (FLOODME); encoded under other names first, since
    encoding may go through the fake too."""
    hang = encode(tone(440.0, 2.0), folder / "a.mp3").rename(folder / "a_HANGME.mp3")
    flood = encode(tone(440.0, 2.0), folder / "b.wav").rename(folder / "b_FLOODME.wav")
    return Path(hang), Path(flood)


def fake_ffmpeg_env(bin_dir: Path) -> dict[str, str]:
    """Install the logging ffmpeg (tests/fakes/ffmpeg_fake.py) in ``bin_dir``; the environment
    variables that make recengine (and its workers) use it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    piddir = bin_dir / "pids"
    piddir.mkdir(exist_ok=True)
    return {"FAKE_FFMPEG_REAL": find_ffmpeg(), "FAKE_FFMPEG_LOG": str(bin_dir / "calls.jsonl"),
            "FAKE_FFMPEG_PIDDIR": str(piddir), "RECENGINE_FFMPEG": str(ffmpeg_fake.install(bin_dir))}


# --- the corpus of test_badinput.py --------------------------------------------------------------------


NFC = unicodedata.normalize("NFC", "café.mp3")
NFD = unicodedata.normalize("NFD", "café.mp3")
LONG = "x" * 251 + ".mp3"  # 255 bytes, the usual NAME_MAX

# relpath -> the classes it may land in ("ok" = featurised)
EXPECTED: dict[str, set[str]] = {
    "good.flac": {"ok"},
    "empty.mp3": {"empty"},  # T27a
    "cut.mp3": {"ok", "too_short"},  # T27b
    "random.flac": {"decode_error"},  # T27c
    "text.ogg": {"not_audio"},  # T27d
    "cover.mp3": {"not_audio"},
    "hls.mp3": {"not_audio"},  # T27l: a playlist disguised as audio
    "video.m4a": {"no_audio_stream"},  # T27e
    "video.mp4": {"no_audio_stream"},
    # T27f allows "featurised or too_short"; these hold 1.5-2 s of real audio, so featurised
    "wav/lying.wav": {"ok"},  # header claims ~50 MB more data than there is
    "wav/u8.wav": {"ok"},
    "wav/s24.wav": {"ok"},
    "wav/f32.wav": {"ok"},
    "wav/6ch.wav": {"ok"},
    "wav/384k.wav": {"ok"},
    "wav/1sample.wav": {"too_short"},
    "silent.flac": {"silent"},  # T27g
    "names/a:b.mp3": {"ok"},  # T27h
    "names/-rf.mp3": {"ok"},
    "names/名前.flac": {"ok"},
    f"names/{NFC}": {"ok"},
    f"names/{NFD}": {"ok"},
    "names/new\nline.mp3": {"ok"},
    f"names/{LONG}": {"ok"},
    "names/trailing .mp3": {"ok"},
    "names/folder /inside.mp3": {"ok"},
    # T27j: `permission`, but featurised where mode 000 does not stop reading (root): see
    # test_mode_000_file for the exact expectation
    "locked.mp3": {"ok", "permission"},
}
SPECIAL = ("special/fifo.wav", "special/socket.wav", "special/zero.wav")  # T27i
PLAYLISTS = ("lists/stream.m3u8", "lists/album.cue", "lists/radio.pls")  # T27l
VANISHING = "vanish.mp3"  # T27k


def make_corpus(root: Path) -> None:
    """The corpus of :data:`EXPECTED`, :data:`SPECIAL`, :data:`PLAYLISTS` and :data:`VANISHING`
    (a good file that test_badinput.py deletes between the reconcile and the decode) under
    ``root``; ``root.parent/full.mp3`` is the source of the truncated file."""
    ff = find_ffmpeg()
    root.mkdir(parents=True, exist_ok=True)
    encode(tone(330.0, 2.0), root / "good.flac")
    (root / "empty.mp3").write_bytes(b"")
    full = encode(tone(440.0, 8.0), root.parent / "full.mp3")  # 128 kb/s: 10 KiB is ~0.6 s
    (root / "cut.mp3").write_bytes(full.read_bytes()[: 10 * 1024])
    (root / "random.flac").write_bytes(np.random.default_rng(0).bytes(1 << 20))
    (root / "text.ogg").write_text("This is not a song.\nIt is a text file with an audio name.\n" * 40)
    (root / "cover.mp3").write_bytes(png_bytes())
    (root / "hls.mp3").write_text(HLS)
    for name in ("video.m4a", "video.mp4"):
        lavfi(ff, "color=c=black:s=16x16:d=1", root / name, "-c:v", "mpeg4")
    w = root / "wav"
    w.mkdir(exist_ok=True)
    (w / "lying.wav").write_bytes(wav(sine(8000, 2.0), 8000, lie=50_000_000))
    (w / "u8.wav").write_bytes(wav(sine(8000, 2.0), 8000, bits=8))
    (w / "s24.wav").write_bytes(wav(sine(8000, 2.0), 8000, bits=24))
    (w / "f32.wav").write_bytes(wav(sine(8000, 2.0), 8000, fmt=3, bits=32))
    (w / "6ch.wav").write_bytes(wav(sine(8000, 2.0, channels=6), 8000))
    (w / "384k.wav").write_bytes(wav(sine(384000, 1.5), 384000))
    (w / "1sample.wav").write_bytes(wav(sine(8000, 1.0)[:1], 8000))
    lavfi(ff, "anullsrc=r=8000:cl=mono", root / "silent.flac", "-t", str(SILENT_MINUTES * 60), "-c:a", "flac")
    names = root / "names"
    for i, rel in enumerate(r for r in EXPECTED if r.startswith("names/")):
        encode(tone(200.0 + 50 * i, 1.5), root / rel)
    assert len({p.name for p in names.iterdir()}) == 9  # the NFC/NFD twins are two files
    encode(tone(770.0, 1.5), root / "locked.mp3")
    (root / "locked.mp3").chmod(0)
    special = root / "special"
    special.mkdir(exist_ok=True)
    os.mkfifo(special / "fifo.wav")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(special / "socket.wav"))
    sock.close()  # the socket file stays
    (special / "zero.wav").symlink_to("/dev/zero")
    lists = root / "lists"
    lists.mkdir(exist_ok=True)
    (lists / "stream.m3u8").write_text(HLS)
    (lists / "album.cue").write_text('FILE "/etc/passwd" WAVE\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n')
    (lists / "radio.pls").write_text("[playlist]\nFile1=/etc/passwd\nNumberOfEntries=1\n")
    encode(tone(550.0, 1.5), root / VANISHING)


def readable_as_this_user(path: Path) -> bool:
    """Whether mode 000 stops this process reading ``path`` (it does not stop root)."""
    mode = os.stat(path).st_mode
    os.chmod(path, 0)
    try:
        return os.access(path, os.R_OK)
    finally:
        os.chmod(path, mode)


def has_demuxer(ffmpeg: str, name: str) -> bool:
    out = subprocess.run([ffmpeg, "-hide_banner", "-demuxers"], capture_output=True, text=True, timeout=30)
    return any(line.split()[1:2] == [name] for line in out.stdout.splitlines() if line.strip())


# --- all of them, for the closing test -------------------------------------------------------------------


def make_every_bad_input(lib: Path, outside: Path) -> dict[str, set[str]]:
    """Every bad input above under ``lib`` (``outside``: a folder out of the library for the
    symlinks that point there). Returns relpath (as ``os.fsdecode`` spells it) -> the outcomes it
    may have; entries absent from the result are never tracks (playlists, folders)."""
    make_corpus(lib)
    expected: dict[str, set[str]] = {rel: set(classes) for rel, classes in EXPECTED.items()}
    expected[VANISHING] = {"ok"}  # nothing deletes it here
    expected["special/fifo.wav"] = {"skipped:fifo"}
    expected["special/socket.wav"] = {"skipped:socket"}
    expected["special/zero.wav"] = {"skipped:symlink_outside"}
    odd = lib / "odd"
    odd.mkdir(exist_ok=True)
    expected["odd/huge id3.mp3"] = {"decode_error", "not_audio"}
    huge_id3_header(odd / "huge id3.mp3")
    expected["odd/mpeg noise.mp3"] = {"ok", "decode_error"}  # noise, to whoever reads it
    mpeg_noise(odd / "mpeg noise.mp3")
    for path in text_as_audio(odd):
        expected[f"odd/{path.name}"] = {"not_audio"}
    piped_wav(odd / "piped.wav", quiet_s=70, tone_s=20)
    expected["odd/piped.wav"] = {"ok"}
    ff = find_ffmpeg()
    flac_s32(odd / "s32.flac")
    expected["odd/s32.flac"] = {"ok", "decode_error"}
    from .fakes.tracker import write_mod

    write_mod(odd / "quiet start.mod", quiet_patterns=9, loud_patterns=8)
    expected["odd/quiet start.mod"] = {"ok"} if has_demuxer(ff, "libopenmpt") else {"decode_error", "not_audio"}
    expected[os.fsdecode(b"odd/\xff.wav")] = {"ok"}
    non_utf8_name(odd)
    expected[os.fsdecode(b"odd/\xfe empty.mp3")] = {"empty"}
    open(os.fsencode(odd) + b"/\xfe empty.mp3", "wb").close()
    (odd / "folder.mp3").mkdir()  # a folder with an audio name: a folder, walked into
    encode(tone(880.0, 1.5), odd / "folder.mp3" / "inside.flac")
    expected["odd/folder.mp3/inside.flac"] = {"ok"}
    (odd / "empty folder.flac").mkdir()
    closed = odd / "closed"
    encode(tone(990.0, 1.5), closed / "in closed.wav")
    closed.chmod(0)
    readable = readable_as_this_user(closed)
    expected["odd/closed" if not readable else "odd/closed/in closed.wav"] = (
        {"skipped:unreadable_folder"} if not readable else {"ok"})
    for name, reason in special_entries(lib / "links", outside).items():
        expected[f"links/{name}"] = {f"skipped:{reason}"}
    for path, reason in zip(hanging_and_flooding(odd), ("timeout", "decode_error"), strict=True):
        expected[f"odd/{path.name}"] = {reason}
    return expected


def make_good(folder: Path, n: int = 10) -> list[Path]:
    """``n`` good, distinct files in mixed formats."""
    fmts = (".flac", ".ogg", ".mp3", ".wav", ".opus")
    return [encode(tone(180.0 * 1.09 ** i, 2.0) + tone(95.0 + 13 * i, 2.0, amp=0.2), folder / f"good{i}{fmts[i % 5]}",
                   tags={"artist": f"Good {i % 3}", "title": f"good {i}"}) for i in range(n)]


def unlock(lib: Path) -> None:
    """Give back the modes :func:`make_every_bad_input` took away (so tmp_path can be removed)."""
    for path in (lib / "locked.mp3", lib / "odd" / "closed"):
        if os.path.lexists(path):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)

