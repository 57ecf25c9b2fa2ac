"""``recengine demo``: a small synthetic library in four styles, so a newcomer sees the engine work.

Each style is a folder (the "album"); tracks vary in key, tempo and mix so that a good similarity
puts a track's neighbours in its own style.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recengine.testing import SR, chord, encode, noise, pulses, tone

FORMATS = (".ogg", ".mp3", ".flac", ".opus")


def _pads(i: int, seconds: float) -> np.ndarray:
    root = 110 * 2 ** (i / 12)
    parts = [chord([root, root * 1.25, root * 1.5, root * 2], seconds / 2, amp=0.4),
             chord([root * 4 / 3, root * 5 / 3, root * 2], seconds / 2, amp=0.4)]
    return np.concatenate(parts) + noise(seconds, amp=0.03, seed=i, colour="pink")[: int(seconds * SR)]


def _drums(i: int, seconds: float) -> np.ndarray:
    beat = pulses(100 + 8 * i, seconds, seed=i)
    return beat + 0.1 * tone(55 * (1 + i % 3), seconds)


def _chiptune(i: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(i)
    notes = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 4)) / 12)
    step = SR // 4
    out = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(step) / SR
    for n, f in enumerate(notes):
        seg = 0.3 * np.sign(np.sin(2 * np.pi * f * t))
        out[n * step:(n + 1) * step] = seg[: out[n * step:(n + 1) * step].size]
    return out


def _bells(i: int, seconds: float) -> np.ndarray:
    out = np.zeros(int(seconds * SR), np.float32)
    rng = np.random.default_rng(100 + i)
    t = np.arange(int(1.5 * SR)) / SR
    for start in np.arange(0, seconds - 1.5, 0.75):
        f = 880 * 2 ** (rng.integers(0, 7) / 12)
        bell = (np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * f * 2.76 * t)) * np.exp(-t * 3)
        s = int(start * SR)
        out[s:s + bell.size] += 0.3 * bell
    return out


STYLES = {"Ambient Pads": _pads, "Drum Machine": _drums, "Chiptune": _chiptune, "Glass Bells": _bells}


def make_demo_library(dest: Path, per_style: int = 6, seconds: float = 20.0) -> list[Path]:
    """Write ``per_style`` tracks of each style under ``dest/<style>/``; returns the paths."""
    paths = []
    for s, (style, make) in enumerate(STYLES.items()):
        for i in range(per_style):
            path = Path(dest) / style / f"{i + 1:02d} {style} {i + 1}{FORMATS[(i + s) % len(FORMATS)]}"
            if not path.exists():
                samples = np.clip(make(i, seconds), -1, 1)
                encode(samples, path, tags={"artist": f"Demo {style}", "album": style,
                                            "title": f"{style} {i + 1}", "track": str(i + 1)})
            paths.append(path)
    return paths
