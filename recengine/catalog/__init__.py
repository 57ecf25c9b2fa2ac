"""The catalog package: the only SQL in recengine (:class:`Catalog` and its records)."""

from recengine.catalog.backup_files import backup_if_due, existing_backups
from recengine.catalog.catalog import Catalog
from recengine.catalog.db import CatalogCorrupt, CatalogError, CatalogFull
from recengine.catalog.failures import Failure
from recengine.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from recengine.catalog.skipped import Skipped
from recengine.catalog.tracks import TrackFile

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Catalog", "CatalogCorrupt", "CatalogError", "CatalogFull", "Failure",
           "Skipped", "TrackFile", "backup_if_due", "existing_backups"]
