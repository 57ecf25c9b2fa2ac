"""The contracts of what plugins register, as ``typing.Protocol`` classes.

The registry checks each registered object against its protocol's members (attributes with their
types, methods callable): these classes are the one statement of each contract. Optional members
are named in each docstring; the core looks for them with ``getattr``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_type_hints, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from recengine.config import Config
    from recengine.models import DecodedAudio, HistoryEvent, PathProfile, Playlist, Profile, Track


@runtime_checkable
class Extractor(Protocol):
    """Turns decoded audio into a fixed-size feature vector.

    Required: ``name``, ``version`` (bump it when the output changes: only this extractor re-runs),
    ``dim`` and ``extract(samples, sr)`` (mono float32 in [-1, 1] at rate ``sr``).

    Optional, looked up with ``getattr`` by the worker (:mod:`recengine.analysis.worker`):

    - ``setup()``: called once in each worker process before the extractor's first use (load a
      model there); an exception makes the extractor fail for every file that process handles;
    - ``sample_rate: int``: the audio comes at this rate instead of the analysis rate: the same
      windows, resampled (``scipy.signal.resample_poly``) when lower, decoded again when higher,
      once per rate and track whatever the number of extractors asking;
    - ``extract_batch(items: list[tuple[np.ndarray, int]]) -> list[np.ndarray]``: called instead
      of ``extract`` with every track of a worker's batch that needs it, one vector per item;
    - ``extract_analysis(analysis)``: called instead of ``extract`` with the shared
      :class:`recengine.analysis.dsp.Analysis` of the track (the built-ins: one STFT for all);
    - ``weight: float``: its default share of the similarity vector (``index.weights`` overrides it);
    - ``deep: bool`` (default False): a slow extractor (a neural net) that runs in the deep pass,
      after the fast pass of the others (:mod:`recengine.library.scan`): a new track is searchable
      on the fast extractors' blocks first, and its deep block joins its vector when it arrives.
    """

    name: str
    version: int  # bump when the output changes: only this extractor re-runs
    dim: int

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray: ...


@runtime_checkable
class Decoder(Protocol):
    """A ``load_audio`` implementation: a ``DecodedAudio`` for a file it accepts, ``None`` to let
    the next decoder try; it raises ``DecodeFailure`` for a file that cannot be decoded."""

    def __call__(self, path: Path, config: Config) -> DecodedAudio | None: ...


@dataclass
class ScoringContext:
    """Everything a scorer may use besides the candidates and the profile."""

    config: Config
    now: float
    n: int
    metric: str
    #: index vectors of the candidates, of the profile's tracks and of the seeds
    vectors: Mapping[int, np.ndarray] = field(default_factory=dict)
    seed_vectors: Mapping[int, np.ndarray] = field(default_factory=dict)
    #: display names ("Artist - Title") of the profile's tracks and the seeds, for reasons
    names: Mapping[int, str] = field(default_factory=dict)
    user: str = "default"
    #: the recipe's ``diversity:`` options
    diversity: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """A scoring strategy: a score in [0, 1] and a short reason for every candidate.

    Optional: ``rerank(ranked: list[Recommendation], profile, context) -> list[Recommendation]``,
    run on the ranked list last (the built-in ``diversity`` reorders the top of the list).
    """

    name: str

    def score(self, candidates: Sequence[Track], profile: Profile,
              context: ScoringContext) -> list[tuple[float, str]]: ...


#: ``record(event)``: how a backend reports a play or skip
Record = Callable[["HistoryEvent"], None]


@runtime_checkable
class Backend(Protocol):
    """Plays tracks (``mode``: replace, append) and reports plays and skips through ``record``.

    Optional: ``watch(record, stop)`` (follow a player that others control, e.g. MPD).
    """

    name: str

    def play(self, tracks: Sequence[Track], mode: str, record: Record) -> int: ...


@runtime_checkable
class PlaylistWriter(Protocol):
    """Renders a playlist to bytes in one file format."""

    name: str
    suffix: str

    def render(self, playlist: Playlist, profile: PathProfile, path: Path | None) -> bytes: ...

    def marker_of(self, path: Path) -> str | None: ...


#: registry kind -> its protocol
PROTOCOLS: dict[str, type] = {
    "extractors": Extractor,
    "scorers": Scorer,
    "backends": Backend,
    "playlist_writers": PlaylistWriter,
}


def required_members(protocol: type) -> list[tuple[str, Any]]:
    """``[(attribute, type or "callable"), ...]`` that every object of ``protocol`` must have."""
    hints = get_type_hints(protocol, globalns={**globals(), "Path": Path})
    members: list[tuple[str, Any]] = [(name, hints[name]) for name in protocol.__annotations__]
    members += [(name, "callable") for name, value in vars(protocol).items()
                if inspect.isfunction(value) and not name.startswith("_")]
    return members

