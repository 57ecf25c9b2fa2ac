"""Listening histories from other services' export files, matched to library tracks."""

from recengine.importers.formats import HistoryImportError, load_history, match_listens, match_rate

__all__ = ["HistoryImportError", "load_history", "match_listens", "match_rate"]
