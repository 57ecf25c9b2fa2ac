"""A file's duration from ffmpeg's demuxer, for files whose tags have none (tracker modules, raw or
damaged WAV): ``ffmpeg -i`` reports what the container or the decoder library computes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from recengine.analysis.decode.argv import input_args
from recengine.analysis.decode.process import run_bounded
from recengine.analysis.decode.tags import finite_duration

log = logging.getLogger(__name__)

_DURATION = re.compile(rb"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


def probe_duration(ffmpeg: str, path: Path, timeout: float) -> float | None:
    """The duration ffmpeg reports for ``path`` (its input summary), or None ("N/A", or no answer).

    ffmpeg is given no output, so it reads the headers, prints the summary and exits."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", *input_args(path, 0.0, None)]
    try:
        result = run_bounded(argv, timeout=timeout, max_bytes=1 << 12)
    except OSError:
        return None  # the decode that follows reports a missing ffmpeg
    match = _DURATION.search(result.stderr)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    duration = finite_duration(int(hours) * 3600 + int(minutes) * 60 + float(seconds))
    log.debug("%s: no duration in the tags; ffmpeg says %s s", path, duration)
    return duration
