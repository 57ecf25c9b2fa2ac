"""musicnn: a neural audio embedding (MTG-UPF's musicnn nets, run in numpy, no TensorFlow).

The track embedding is the mean over its 3 s patches of the chosen net's embedding layer:

- ``MSD_musicnn`` (default): penultimate dense layer of musicnn trained on the Million Song
  Dataset, 200 dims, registered as ``musicnn``;
- ``MTT_vgg``: pool5 of the VGG-like net trained on MagnaTagATune, 128 dims
  (``MusicnnExtractor(model="MTT_vgg")``, registered under its own name ``musicnn_mtt_vgg``).

The default was picked on the dev corpus (265 tracks, 15 soundtracks; cosine distance; mean over
up to 60 patches; ``bench/neural_similarity.py``): same-soundtrack precision@10 / 1-NN, micro,

    MSD_musicnn   all 0.343 / 0.506   half A 0.599 / 0.750   half B 0.398 / 0.569
    MTT_vgg       all 0.332 / 0.442   half A 0.595 / 0.688   half B 0.383 / 0.504

(mean+std over patches did not help consistently). Speed on one core (OpenBLAS 1 thread):
MSD_musicnn ~108x realtime on the analysed audio, MTT_vgg ~150x (quiet machine; both drop by up
to half while other processes load the machine). At most ``max_patches`` patches (default 60, i.e. 3 minutes of audio), evenly
spread over the track, are analysed; a track under 3 s is repeat-padded to one patch.

The weights are not shipped: ``recengine.neural.install.install_models`` fetches the musicnn 0.1.0
wheel (ISC licence) with pip and converts it into the models dir. The hook registers the
extractor only when the converted default model is installed there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recengine import hookimpl
from recengine.neural import install, musicnn

DEFAULT_MODEL = "MSD_musicnn"
DIMS = {"MTT_vgg": 128, "MSD_vgg": 128, "MSD_musicnn": 200, "MTT_musicnn": 200}
MAX_PATCHES = 60


class MusicnnExtractor:
    """Extractor plugin: ``extract(samples, sr)`` -> float32 embedding of length ``dim``.

    The default net is registered as ``musicnn``; another net gets its own name
    (``musicnn_mtt_vgg``, ...) so vectors of different nets never share a catalog column.
    """

    version = 1
    sample_rate = musicnn.SR
    weight = 1.0
    deep = True  # several times the built-ins' cost: a background pass after they made the track searchable

    def __init__(self, model: str = DEFAULT_MODEL, models_dir: Path | None = None, max_patches: int = MAX_PATCHES):
        if model not in DIMS:
            raise ValueError(f"unknown musicnn model {model!r}; one of {', '.join(DIMS)}")
        if max_patches < 1:
            raise ValueError("max_patches must be at least 1")
        self.model = model
        self.name = "musicnn" if model == DEFAULT_MODEL else f"musicnn_{model.lower()}"
        self.dim = DIMS[model]
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.max_patches = max_patches
        self._net = None

    def setup(self) -> None:
        """Load the converted weights once per process (idempotent; ModelInstallError if absent)."""
        if self._net is not None:
            return
        d = self.models_dir if self.models_dir is not None else install.default_models_dir()
        net = musicnn.build(self.model, install.load_model(self.model, d))
        if net.dim != self.dim:
            raise install.ModelInstallError(f"musicnn {self.model}: converted model has dim {net.dim}, expected {self.dim}")
        self._net = net  # each worker process builds its registry once, so the weights load once per worker

    def _prepare(self, samples: np.ndarray, sr: int) -> np.ndarray:
        y = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(y).all():
            y = np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0)
        if sr != self.sample_rate:
            from scipy.signal import resample_poly

            g = int(np.gcd(int(sr), self.sample_rate))
            y = resample_poly(y, self.sample_rate // g, int(sr) // g).astype(np.float32)
        return y

    def extract(self, samples: np.ndarray, sr: int) -> np.ndarray:
        self.setup()
        y = self._prepare(samples, sr)
        e = musicnn.track_patch_embeddings(self._net, y, batch=1, max_patches=self.max_patches)
        out = e.mean(axis=0, dtype=np.float64).astype(np.float32)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def extract_batch(self, items: list[tuple[np.ndarray, int]]) -> list[np.ndarray]:
        # patches run one at a time anyway (fastest: the im2col buffers stay in cache)
        return [self.extract(s, sr) for s, sr in items]


@hookimpl
def register_extractors(register, config):
    configured = config["models_dir"] if config is not None else None
    models_dir = Path(configured) if configured else install.default_models_dir()
    if install.is_installed(DEFAULT_MODEL, models_dir):  # installed and converted means enabled
        register(MusicnnExtractor(models_dir=models_dir))
