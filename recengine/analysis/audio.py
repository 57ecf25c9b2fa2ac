"""The decoding names other packages import from here (the CLI, the service, ``recengine.testing``,
the local playback backend). The code lives in :mod:`recengine.analysis.decode`; new code imports
from there, and this module goes once its importers have moved."""

from recengine.analysis.decode import DecodeFailure, DecoderMissing, find_ffmpeg, pid_alive, preflight

__all__ = ["DecodeFailure", "DecoderMissing", "find_ffmpeg", "pid_alive", "preflight"]
