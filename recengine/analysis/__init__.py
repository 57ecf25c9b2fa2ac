"""Analysis: decode each track once and turn it into feature blocks, in worker processes.

``jobs`` (what is asked and answered), ``executor`` (the FeatureExecutor contract and the local
process pool), ``dask_executor`` (the same on a dask.distributed cluster, imported only when used),
``worker`` (one worker process's state), ``track`` (one decoded track as extractors see it), ``dsp``
(the shared analysis), ``protocols`` (Extractor, Decoder), ``settings``, ``decode/`` (ffmpeg, bounded).
"""

from recengine.analysis.executor import (
    ExecutorUnavailable,
    FeatureExecutor,
    FeaturePool,
    WorkersDidNotStart,
    check_not_bootstrapping,
)
from recengine.analysis.jobs import FeatureJob, FeatureResult
from recengine.analysis.settings import AnalysisSettings
from recengine.analysis.worker import Worker, WorkerSettings

__all__ = [
    "AnalysisSettings", "ExecutorUnavailable", "FeatureExecutor", "FeatureJob", "FeaturePool", "FeatureResult",
    "Worker", "WorkerSettings", "WorkersDidNotStart", "check_not_bootstrapping",
]
