"""The contracts of extractors and decoders, as ``typing.Protocol`` classes.

The plugin registry checks each registered extractor against :class:`Extractor`'s required members;
the optional ones are looked up with ``getattr`` by the worker (:mod:`recengine.analysis.worker`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from recengine.config import Config
    from recengine.models import DecodedAudio


@runtime_checkable
class Extractor(Protocol):
    """Turns decoded audio into a fixed-size feature vector.

    Required: ``name``, ``version`` (bump it when the output changes: only this extractor re-runs),
    ``dim`` and ``extract(samples, sr)`` (mono float32 in [-1, 1] at rate ``sr``).

    Optional, looked up with ``getattr``:

    - ``setup()``: called once in each worker process before the extractor's first use (load a
      model there); an exception makes the extractor fail for every file that process handles;
    - ``sample_rate: int``: the audio comes at this rate instead of the analysis rate: the same
      windows, resampled (``scipy.signal.resample_poly``) when lower, decoded again when higher,
      once per rate and track whatever the number of extractors asking;
    - ``extract_batch(items: list[tuple[np.ndarray, int]]) -> list[np.ndarray]``: called instead
      of ``extract`` with every track of a worker's batch that needs it, one vector per item;
    - ``extract_analysis(analysis)``: called instead of ``extract`` with the shared
      :class:`recengine.analysis.dsp.Analysis` of the track (the built-ins: one STFT for all);
    - ``weight: float``: its default share of the similarity vector (``index.weights`` overrides it).
    """

    name: str
    version: int
    dim: int

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray: ...


@runtime_checkable
class Decoder(Protocol):
    """A ``load_audio`` implementation: a ``DecodedAudio`` for a file it accepts, ``None`` to let
    the next decoder try, or ``DecodeFailure`` for a file that cannot be decoded."""

    def __call__(self, path: Path, config: Config) -> DecodedAudio | None: ...
