"""Listening histories from other services' export files, matched to library tracks.

Formats: ListenBrainz (:mod:`.listenbrainz`: JSON, JSON lines, ``feedback.jsonl``; the user-data
ZIP in :mod:`.listenbrainz_zip`), Last.fm CSV (:mod:`.lastfm`), ``.scrobbler.log``
(:mod:`.scrobbler_log`); what they share is in :mod:`.records`, matching (path, MBID, names) in
:mod:`.matching`. Loves and hates become likes and dislikes.
A bad record is skipped and counted (``strict=True`` raises it); a file that is not the format at
all raises :class:`HistoryImportError` naming the file and line. Timestamps are unix seconds (UTC),
after 1970 and at most a day ahead; Last.fm dates (``31 Jan 2021 14:05``) are UTC.
:func:`import_history` streams a file into history events; :func:`load_history` reads one whole.
"""

from recengine.importers.history_import import ImportReport, import_history
from recengine.importers.loading import FORMATS, detect_format, load_history, read_history
from recengine.importers.matching import Matcher, match_listens, match_rate, normalise
from recengine.importers.records import (
    FEEDBACK_EVENTS,
    HistoryImportError,
    ImportResult,
    Listen,
    ListenStream,
    mbid_of,
    parse_time,
)

__all__ = ["FEEDBACK_EVENTS", "FORMATS", "HistoryImportError", "ImportReport", "ImportResult", "Listen",
           "ListenStream", "Matcher", "detect_format", "import_history", "load_history", "match_listens",
           "match_rate", "mbid_of", "normalise", "parse_time", "read_history"]
