"""The catalog package: the only SQL in recengine (:class:`Catalog` and its records)."""

from recengine.catalog.catalog import Catalog
from recengine.catalog.db import CatalogError, CatalogFull
from recengine.catalog.failures import Failure
from recengine.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from recengine.catalog.tracks import TrackFile

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Catalog", "CatalogError", "CatalogFull", "Failure", "TrackFile"]
