"""A history file streamed into history events: parsed, matched and recorded in batches.

The file is read twice: once to the end to check it (a file that is not the format records
nothing), then again to match each listen and record the matches ``batch`` at a time. Memory
stays flat however long the file is (a million ListenBrainz lines: see the importers' commit).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from recengine.importers.loading import read_history
from recengine.importers.matching import Matcher, match_listens, match_rate
from recengine.importers.records import HistoryImportError
from recengine.models import HistoryEvent

#: Events recorded per call of ``record_events``.
BATCH = 1000


@dataclass
class ImportReport:
    """What one file gave: listens read, matched to the library, loves and hates (``feedback``:
    ListenBrainz feedback, Last.fm loved tracks) read and matched, bad records skipped (the
    first ones kept with their line)."""

    format: str
    listens: int = 0
    matched: int = 0
    skipped: int = 0
    problems: list[HistoryImportError] = field(default_factory=list)
    feedback: int = 0
    feedback_matched: int = 0

    @property
    def unmatched(self) -> int:
        return self.listens - self.matched

    @property
    def match_rate(self) -> float:
        return match_rate(self.matched, self.unmatched)


def import_history(path: str | os.PathLike[str], fmt: str | None = None, *, user: str, matcher: Matcher,
                   record_events: Callable[[Iterable[HistoryEvent]], object], strict: bool = False,
                   batch: int = BATCH) -> ImportReport:
    """Record the listens of ``path`` that ``matcher`` finds in the library as ``user``'s plays
    (``skip`` for a skipped listen; loves and hates as ``like``, ``dislike``, ``unlike``), source
    ``import:<format>``. What the catalog holds already (same user, track, time and kind) is not
    added again, so importing a file twice adds nothing the second time. Raises
    :class:`HistoryImportError` (nothing recorded) when the file is not ``fmt`` at all."""
    check = read_history(path, fmt, strict=strict)
    for _ in check:
        pass
    stream = read_history(path, check.format, strict=strict)
    listens = iter(stream)
    report = ImportReport(check.format)
    while chunk := list(itertools.islice(listens, batch)):
        matches, _ = match_listens(chunk, matcher)
        if matches:
            record_events([HistoryEvent(user, tid, listen.kind, at=listen.at, listened_s=listen.listened_s,
                                        source=f"import:{stream.format}")
                           for listen, tid in matches])
        loves = sum(1 for listen, _ in matches if listen.event)
        report.feedback += sum(1 for listen in chunk if listen.event)
        report.feedback_matched += loves
        report.matched += len(matches) - loves
    report.listens, report.skipped, report.problems = stream.read - report.feedback, stream.skipped, stream.problems
    return report
