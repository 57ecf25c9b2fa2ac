"""The similarity index stage: Annoy generations + an exact delta, kept in step with the catalog."""

from recengine.index.library import LibraryIndex, index_directory
from recengine.index.protocols import IndexBackend, IndexNotReady
from recengine.index.settings import ExtractorInfo, IndexSettings, extractor_infos
from recengine.index.store import IndexStore

__all__ = ["ExtractorInfo", "IndexBackend", "IndexNotReady", "IndexSettings", "IndexStore", "LibraryIndex",
           "extractor_infos", "index_directory"]
