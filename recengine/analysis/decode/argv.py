"""ffmpeg's command line, written once for one file to a pipe and for several files to files.

Each window of a file is an input of its own, seeked with ``-ss`` before ``-i`` (so only that part
is decoded), then the windows are downmixed, resampled, concatenated per file and written as mono
float32 at the analysis rate. Every input is a ``file:`` URL with an absolute path and its own
``-protocol_whitelist file`` (an input option: given once, it would guard only the first input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

Plan = list[tuple[float, float]]  # analysis windows (start, length) in seconds


@dataclass(frozen=True)
class Output:
    """One file's windows and where its samples go (``pipe:1`` or a file path)."""

    path: Path
    plan: Plan
    target: str = "pipe:1"


def _chain(sample_rate: int) -> str:
    # Each window is downmixed and resampled in the graph: -ac 1 alone sums channels at -3 dB each
    # (stereo peaks reach 1.41, 5.1 goes past 1.7), and the options that stop that do not reach a
    # complex graph's converters. rematrix_maxval=1 makes the mix unable to clip: a mean for stereo,
    # as the libsndfile fallback computes, so features do not depend on a track's channel count.
    return f"aresample={sample_rate}:rematrix_maxval=1,aformat=sample_fmts=flt:channel_layouts=mono"


def url_of(path: Path) -> str:
    """``path`` as ffmpeg must see it: absolute, behind ``file:``, never an option or a protocol."""
    return "file:" + str(Path(path).absolute())


def input_args(path: Path, start: float, length: float | None) -> list[str]:
    """The options and ``-i`` of one input: whitelist, seek (when past 0), duration (when given)."""
    args = ["-protocol_whitelist", "file"]
    if start > 0:
        args += ["-ss", f"{start:.3f}"]
    if length is not None:
        args += ["-t", f"{length:.3f}"]
    return [*args, "-i", url_of(path)]


def base_args(ffmpeg: str) -> list[str]:
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]


def ffmpeg_argv(ffmpeg: str, outputs: Sequence[Output], sample_rate: int) -> list[str]:
    """One ffmpeg call decoding every output's windows (see the module docstring)."""
    argv = base_args(ffmpeg)
    chain = _chain(sample_rate)
    graph: list[str] = []
    tail: list[str] = []
    idx = 0
    for j, out in enumerate(outputs):
        pads = ""
        for start, length in out.plan:
            argv += input_args(out.path, start, length)
            graph.append(f"[{idx}:a:0]{chain}[w{idx}]")
            pads += f"[w{idx}]"
            idx += 1
        if len(out.plan) > 1:
            graph.append(f"{pads}concat=n={len(out.plan)}:v=0:a=1[c{j}]")
        else:
            graph[-1] = graph[-1][: -len(pads)] + f"[c{j}]"
        label = "[a]" if j == 0 else f"[a{j}]"
        graph.append(f"[c{j}]asetnsamples=n=65536:p=0{label}")  # 256 KiB writes instead of ~4 KiB frames
        tail += ["-map", label, "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le",
                 "-y", out.target]
    return [*argv, "-filter_complex", ";".join(graph), *tail]
