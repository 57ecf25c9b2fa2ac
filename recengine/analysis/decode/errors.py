"""The two ways decoding ends without audio: the file's fault, or the decoder's absence."""

from __future__ import annotations

from recengine.plugin.isolation import HookSignal


class DecodeFailure(HookSignal):
    """A file that cannot be featurised; ``reason`` is one of ``models.FAILURE_REASONS``."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


class DecoderMissing(HookSignal, RuntimeError):
    """No usable ffmpeg: a start-up error, never a per-file one."""
