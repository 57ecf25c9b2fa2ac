"""The library stage: reconcile the folders with the catalog, featurise what is new, watch them.

The watcher (:mod:`recengine.library.watch`, :mod:`recengine.library.observers`) is imported
from its modules by the daemon: a ``scan`` never loads watchdog.
"""

from recengine.library.reconcile import SENTINEL, content_sig
from recengine.library.report import ScanReport
from recengine.library.scan import Scanner
from recengine.library.settings import LibrarySettings, ScanSettings

__all__ = ["SENTINEL", "LibrarySettings", "ScanReport", "ScanSettings", "Scanner", "content_sig"]
