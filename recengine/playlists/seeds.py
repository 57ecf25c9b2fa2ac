"""The tracks a recipe names (``seeds``, ``from``, ``to``), found in the catalog.

A relative path is relative to a library folder, as the README writes them
(``seeds: ["OST/01 Night Drive.flac"]``), whatever the working folder of the process (systemd
starts the daemon in ``/``). Each library folder is tried in order; then the reference is given to
the engine's own ``resolve`` (a track id, an absolute path, or a path relative to the working
folder), which raises :class:`~recengine.models.TrackNotFound`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from recengine.catalog import Catalog
from recengine.models import Track, TrackNotFound
from recengine.playlists.recipes import Recipe


def references(recipe: Recipe) -> Iterator[tuple[str, str]]:
    """``(dotted key, reference)`` for each track the recipe names."""
    for i, seed in enumerate(recipe.seeds):
        yield f"{recipe.key}.seeds[{i}]", seed
    if recipe.kind == "path":
        yield f"{recipe.key}.from", str(recipe.start)
        yield f"{recipe.key}.to", str(recipe.end)


class SeedResolver:
    """Finds recipe references: under each library folder first, then through ``resolve``."""

    def __init__(self, catalog: Catalog, resolve: Callable[[str], Track]):
        self.catalog = catalog
        self.fallback = resolve

    def roots(self) -> list[str]:
        return [root for _, root, _ in self.catalog.roots()]

    def resolve(self, ref: str) -> Track:
        if not os.path.isabs(ref):
            for root in self.roots():
                track = self.catalog.track_by_path(Path(root) / ref)
                if track is not None:
                    return track
        return self.fallback(ref)

    def problems(self, recipes: Iterable[Recipe], source: str) -> list[str]:
        """One line per reference that is not in the catalog, naming the file and dotted key,
        e.g. ``config.yaml: playlists[1].seeds[0]: 'OST/01.flac' is not in the catalog``."""
        out = []
        for recipe in recipes:
            for key, ref in references(recipe):
                try:
                    self.resolve(ref)
                except TrackNotFound:
                    where = ", ".join(str(r) for r in self.roots()) or "no library folder scanned yet"
                    out.append(f"{source}: {key}: {ref!r} of playlist {recipe.name!r} is not in the catalog "
                               f"(looked under {where}; run `recengine scan` first?)")
        return out
