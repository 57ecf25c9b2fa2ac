"""Bounded decoding: ffmpeg (found through pydub, the system, or the imageio-ffmpeg wheel) run with
a timeout in its own process group, seeking to a few analysis windows, downmixing and resampling
while it decodes, its output read in chunks up to a cap. libsndfile (``soundfile``) is the fallback
for files ffmpeg's demuxers refuse. Every failure is a :class:`DecodeFailure` with a reason class.

pydub's ``AudioSegment.from_file`` has no timeout and holds the whole file in memory (pydub #243,
#135), and puts resampling options after the output where ffmpeg ignores them, so we run ffmpeg
ourselves and hand extractors the samples (``DecodedAudio.segment()`` gives pydub's view of them).

Modules: ``locate`` (finding ffmpeg, preflight), ``process`` (the bounded runner, ``pid_alive``),
``sniff`` (what a file is), ``tags`` (mutagen), ``windows`` (window planning), ``argv`` (ffmpeg's
command line), ``fallback`` (libsndfile), ``scratch`` (batch folders), ``decoder`` (FfmpegDecoder).
"""

from recengine.analysis.decode.argv import Output, ffmpeg_argv
from recengine.analysis.decode.decoder import SILENCE_RMS, FfmpegDecoder, decoder_for
from recengine.analysis.decode.errors import DecodeFailure, DecoderMissing
from recengine.analysis.decode.locate import find_ffmpeg, preflight
from recengine.analysis.decode.process import RunResult, pid_alive, run_bounded
from recengine.analysis.decode.scratch import sweep_batch_dirs
from recengine.analysis.decode.sniff import check_file, classify_ffmpeg_error
from recengine.analysis.decode.tags import read_tags
from recengine.analysis.decode.windows import plan_windows

__all__ = [
    "SILENCE_RMS", "DecodeFailure", "DecoderMissing", "FfmpegDecoder", "Output", "RunResult", "check_file",
    "classify_ffmpeg_error", "decoder_for", "ffmpeg_argv", "find_ffmpeg", "pid_alive", "plan_windows", "preflight",
    "read_tags", "run_bounded", "sweep_batch_dirs",
]
