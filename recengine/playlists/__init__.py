"""Playlists: recipes parsed once from the config, made into files by the playlist writers."""

from recengine.playlists.recipes import Output, Recipe, Recipes
from recengine.playlists.refresh import Made, Playlists, RefreshReport, Shortfall
from recengine.playlists.seeds import SeedResolver

__all__ = ["Made", "Output", "Playlists", "Recipe", "Recipes", "RefreshReport", "SeedResolver", "Shortfall"]
