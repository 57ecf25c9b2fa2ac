"""A ProTracker module (.mod, "M.K.", 4 channels) written from scratch: a tag-less format whose
length only the decoder knows."""

from __future__ import annotations

import struct
from pathlib import Path

ROW_S = 6 * 2.5 / 125  # speed 6 ticks a row at 125 BPM: 0.12 s
PATTERN_S = 64 * ROW_S  # 7.68 s
PERIOD_C3 = 214  # Amiga period of C-3 (about 8.3 kHz sample rate)


def _note(period: int, sample: int) -> bytes:
    return bytes([(sample & 0xF0) | (period >> 8 & 0x0F), period & 0xFF, (sample & 0x0F) << 4, 0])


def write_mod(path: Path, *, quiet_patterns: int, loud_patterns: int) -> Path:
    """``quiet_patterns`` empty patterns (digital silence, 7.68 s each), then ``loud_patterns`` of
    a looped full-scale square wave on every channel, a note every 16 rows."""
    wave = bytes([0x7F] * 16 + [0x80] * 16)  # signed 8-bit, one period of 32 samples
    header = b"recengine test".ljust(20, b"\0")
    samples = [struct.pack(">22sHBBHH", b"square", len(wave) // 2, 0, 64, 0, len(wave) // 2)]
    samples += [struct.pack(">22sHBBHH", b"", 0, 0, 0, 0, 1)] * 30
    orders = [0] * quiet_patterns + [1] * loud_patterns
    table = bytes(orders + [0] * (128 - len(orders)))
    empty = bytes(64 * 4 * 4)
    loud = b"".join((_note(PERIOD_C3 + 12 * (row // 16), 1) if row % 16 == 0 else bytes(4)) * 4
                    for row in range(64))
    data = header + b"".join(samples) + bytes([len(orders), 127]) + table + b"M.K." + empty + loud + wave
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
