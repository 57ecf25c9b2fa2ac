"""The evaluation report: how well recengine hears a library, how its strategies would have served
a listener (replayed on their own history), and how healthy the playlists are."""

from recengine.evaluate.history import Split, TooLittleHistory, split_history
from recengine.evaluate.report import Evaluation, Report, Sources

__all__ = ["Evaluation", "Report", "Sources", "Split", "TooLittleHistory", "split_history"]
