"""What the index reads from the config and from the extractors, built once by the engine.

The defaults live in the option spec (:func:`recengine.config.options.core_options`); 0 for
``index.trees``, ``index.search_k`` and ``index.shards`` means "chosen from the library size",
``index.metric: auto`` the metric the assembled vectors are made for (:data:`vectors.METRIC`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from recengine.index.vectors import METRIC

if TYPE_CHECKING:
    from recengine.config import Config
    from recengine.plugin.protocols import Extractor


@dataclass(frozen=True)
class IndexSettings:
    """The ``index.*`` options."""

    metric: str  # an Annoy metric ("auto" resolved)
    trees: int | None  # per shard; None: from the library size
    search_k: int | None  # None: calibrated per generation
    shards: int | None  # None: from the library size and the cores
    dimensions: int  # index vectors are projected to this many axes (0: all kept)
    weights: Mapping[str, float]  # per-extractor overrides of the extractors' own weights
    rebuild_after_changes: int
    rebuild_quiet_s: float

    @classmethod
    def from_config(cls, config: Config) -> IndexSettings:
        metric = config["index.metric"]
        return cls(
            metric=METRIC if metric == "auto" else metric,
            trees=config["index.trees"] or None,
            search_k=config["index.search_k"] or None,
            shards=config["index.shards"] or None,
            dimensions=config["index.dimensions"] or 0,
            weights=MappingProxyType({name: float(w) for name, w in (config["index.weights"] or {}).items()}),
            rebuild_after_changes=config["index.rebuild_after_changes"],
            rebuild_quiet_s=float(config["index.rebuild_quiet_s"]),
        )


@dataclass(frozen=True)
class ExtractorInfo:
    """What the index needs to know of one extractor: its version (a generation is made with one
    set of versions), its default share of the similarity vector, and whether it is deep (a track
    may be indexed before its block is there)."""

    version: int
    weight: float = 1.0
    deep: bool = False


def extractor_infos(extractors: Iterable[Extractor]) -> dict[str, ExtractorInfo]:
    """name -> :class:`ExtractorInfo` of registered extractors (``weight`` and ``deep`` are optional on them)."""
    return {e.name: ExtractorInfo(e.version, float(getattr(e, "weight", 1.0)), bool(getattr(e, "deep", False)))
            for e in extractors}
