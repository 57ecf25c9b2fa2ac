"""The library stage: reconcile the folders with the catalog, watch them, featurise what is new."""

from recengine.library.observers import detect_fs_type, is_network_fs
from recengine.library.reconcile import SENTINEL, content_sig
from recengine.library.report import ScanReport
from recengine.library.scan import FeatureExecutor, Scanner
from recengine.library.settings import LibrarySettings, ScanSettings
from recengine.library.watch import LibraryWatcher

__all__ = ["SENTINEL", "FeatureExecutor", "LibrarySettings", "LibraryWatcher", "ScanReport", "ScanSettings",
           "Scanner", "content_sig", "detect_fs_type", "is_network_fs"]
