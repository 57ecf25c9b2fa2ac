"""What the library stage reads from the config, built once by the engine.

The defaults live in the option spec (:func:`recengine.config.options.core_options`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recengine.config import Config


@dataclass(frozen=True)
class LibrarySettings:
    """The ``library.*`` options: which folders, which files."""

    folders: tuple[Path, ...]  # absolute
    extensions: frozenset[str]  # lowercase, with the dot
    exclude: tuple[str, ...]  # glob patterns of relative paths

    @classmethod
    def from_config(cls, config: Config) -> LibrarySettings:
        return cls(
            folders=tuple(Path(os.path.abspath(f)) for f in config.library_folders),
            extensions=frozenset(e.lower() for e in config["library.extensions"]),
            exclude=tuple(config["library.exclude"]),
        )


@dataclass(frozen=True)
class ScanSettings:
    """The ``scan.*`` options, with the library they apply to."""

    library: LibrarySettings
    workers: int  # 0: one per core
    mass_delete_ratio: float
    purge_after_days: float

    @classmethod
    def from_config(cls, config: Config) -> ScanSettings:
        return cls(
            library=LibrarySettings.from_config(config),
            workers=config["scan.workers"],
            mass_delete_ratio=float(config["scan.mass_delete_ratio"]),
            purge_after_days=float(config["scan.purge_after_days"]),
        )
