"""The default decoder: ffmpeg (as pydub finds it) through the bounded runner in ``recengine.analysis.decode``.

``trylast``: a plugin's ``load_audio`` runs first and wins by returning a ``DecodedAudio``.
"""

from __future__ import annotations

from pathlib import Path

from recengine.analysis.decode import decoder_for
from recengine.analysis.settings import AnalysisSettings
from recengine.plugin.spec import hookimpl


@hookimpl(trylast=True)
def load_audio(path: Path, config):
    return decoder_for(AnalysisSettings.from_config(config)).decode(path)
