"""What the scanner asks the feature executor for, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recengine.models import Tags


@dataclass(frozen=True)
class FeatureJob:
    """One track to featurise: its file as the scanner saw it, and the extractors it still lacks."""

    track_id: int
    path: str
    content_sig: str
    size: int
    mtime_ns: int
    extractors: tuple[tuple[str, int], ...]  # (name, version) still missing for this content


@dataclass
class FeatureResult:
    """A job's outcome: feature blocks, or ``failure`` (the file's fault: it goes to the failure
    ledger), or ``deferred`` (the engine's or a plugin's fault: reported, and the track stays pending)."""

    job: FeatureJob
    blocks: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    tags: Tags | None = None
    duration: float | None = None
    failure: tuple[str, str] | None = None  # (reason class, message)
    deferred: str | None = None
    extractor_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0  # CPU time the worker spent on it
