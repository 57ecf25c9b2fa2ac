"""What the similarity and recommendation stages need from an index, as a ``typing.Protocol``.

:class:`recengine.index.library.LibraryIndex` (Annoy generations + exact delta) is the built-in
implementation; another backend (a remote vector store, a GPU index) only has to provide these
members. Vectors are the index's own (scaled, weighted, projected), compared with ``metric``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from recengine.models import NotInIndex


class IndexNotReady(NotInIndex):
    """The library has featurised tracks but no index was built for the current extractors,
    weights and metric yet (or the only one was refused): run ``recengine scan``, or let the
    daemon build it. Opening an index never builds one."""


@runtime_checkable
class IndexBackend(Protocol):
    """Nearest-neighbour search over the library's track vectors.

    Every member raises :class:`IndexNotReady` when there is nothing to search yet although the
    library has featurised tracks.
    """

    @property
    def metric(self) -> str:
        """The Annoy metric of the vectors (``angular``, ``euclidean``)."""
        ...

    @property
    def dim(self) -> int | None:
        """The length of the index vectors (None while nothing is indexed)."""
        ...

    @property
    def built_at(self) -> float:
        """When the current generation was built (``time.time()``; 0 before any): it changes
        with every rebuild, so a cache of neighbourhoods can key on it."""
        ...

    def vectors(self, track_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The vector of each of ``track_ids`` that is in the index, in the order given; one call
        for many ids."""
        ...

    def vectors_matrix(self, track_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(mask, matrix)``: which of ``track_ids`` are in the index (bool, one per id) and their
        vectors stacked in that order (float32): :meth:`vectors` as one array, for many at once."""
        ...

    def vector(self, track_id: int) -> np.ndarray | None:
        """The vector of one track, None if it is not in the index."""
        ...

    def query(self, vector: np.ndarray, n: int, exclude: Collection[int] = frozenset()) -> list[tuple[int, float]]:
        """The ``n`` nearest (track_id, distance), nearest first, none of ``exclude``."""
        ...
