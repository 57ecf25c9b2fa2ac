"""``recengine doctor``: is this set-up able to run? One :class:`Check` per thing that can be wrong,
each failing one with the way to fix it.

Nothing is changed by a check, except what opening the engine does anyway (the catalog is opened,
and migrated if it is old). A data dir or output folder that does not exist yet is fine when the
folder that will hold it is writable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from recengine.analysis.decode import DecoderMissing, preflight
from recengine.catalog.db import CatalogError
from recengine.library.observers import detect_fs_type, is_network_fs
from recengine.playback.mpd_client import MPDError

INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_watches")
SYSCTL_FIX = ("echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/40-recengine.conf "
              "&& sudo sysctl --system")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found and, when it failed, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok' if self.ok else 'FAIL':4}  {self.name}: {self.detail}"
        return text + (f"  -> fix: {self.fix}" if not self.ok and self.fix else "")


def run_checks(engine, env: Mapping[str, str] | None = None, *,
               inotify_limit: Path = INOTIFY_LIMIT) -> Iterator[Check]:
    """Every check on an opened engine, in the order a set-up is usually repaired."""
    env = os.environ if env is None else env
    config = engine.config
    for info in engine.plugins.failures:
        yield Check(f"plugin {info.name}", False, f"{info.location}: {info.error}",
                    f"repair or remove it, or add {info.name!r} to disabled_plugins")
    yield _ffmpeg()
    yield _data_dir(config.data_dir)
    folders = config.library_folders
    polled = [f for f in folders if config["daemon.force_polling"] or _network_fs(f)]
    for i, folder in enumerate(folders):
        yield _library_folder(config.source, i, folder, config["daemon.poll_interval_s"])
    yield _inotify([f for f in folders if f not in polled and f.is_dir()], inotify_limit)
    yield from _catalog_and_index(engine)
    for name, output in engine.recipes.outputs.items():
        yield _writable(f"playlist output {name}", Path(output.dir), f"outputs.{name}.dir in {config.source}")
    yield _backend(engine)
    yield _api_token(config, env)


def _ffmpeg() -> Check:
    try:
        exe = preflight()
    except DecoderMissing as exc:
        return Check("ffmpeg", False, str(exc), "install ffmpeg (Debian: apt install ffmpeg; Alpine: apk add "
                     "ffmpeg) or `pip install imageio-ffmpeg` into recengine's environment")
    version = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout.partition("\n")[0]
    return Check("ffmpeg", True, f"{exe} ({version.removeprefix('ffmpeg version ').split(' Copyright')[0]})")


def _existing(path: Path) -> Path:
    """``path`` or the nearest folder above it that exists (where it would be created)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(name: str, folder: Path, setting: str) -> Check:
    base = _existing(folder)
    where = str(folder) if base == folder else f"{folder} (to be created in {base})"
    if not base.is_dir():
        return Check(name, False, f"{base} is not a folder", f"point {setting} at a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        return Check(name, False, f"{where} is not writable by this user",
                     f"chown it to the user recengine runs as, or change {setting}")
    return Check(name, True, f"{where} is writable")


def _network_fs(path: Path) -> str | None:
    fs = detect_fs_type(_existing(path))
    return fs if is_network_fs(fs) else None


def _data_dir(data_dir: Path) -> Check:
    check = _writable("data dir", data_dir, "data_dir")
    fs = _network_fs(data_dir)
    if check.ok and fs:
        return Check("data dir", False, f"{data_dir} is on a network filesystem ({fs}): SQLite's locking is "
                     "not safe there", "set data_dir to a folder on a local disk")
    return check


def _library_folder(source: str, i: int, folder: Path, poll_interval_s: float) -> Check:
    name = f"library folder {folder}"
    if not folder.is_dir():
        return Check(name, False, "does not exist or is not mounted",
                     f"mount it, or set library.folders[{i}] in {source}")
    if not os.access(folder, os.R_OK | os.X_OK):
        return Check(name, False, "is not readable by this user", "give this user read access (chmod/ACL)")
    fs = _network_fs(folder)
    how = f"network filesystem ({fs}): polled every {poll_interval_s:g} s" if fs else "local: watched with inotify"
    return Check(name, True, f"reachable, {how}")


def _inotify(watched: list[Path], limit_file: Path) -> Check:
    if not watched:
        return Check("inotify watches", True, "no folder is watched with inotify")
    try:
        limit = int(limit_file.read_text())
    except (OSError, ValueError):
        return Check("inotify watches", True, "limit unknown (no /proc): folders are polled if it runs out")
    folders = sum(1 + sum(len(dirs) for _, dirs, _ in os.walk(f)) for f in watched)
    detail = f"folders to watch: {folders}, limit {limit} (shared with other programs)"
    if folders > limit * 0.9:
        return Check("inotify watches", False, detail, SYSCTL_FIX)
    return Check("inotify watches", True, detail)


def _catalog_and_index(engine) -> Iterator[Check]:
    path = engine.config.data_dir / "catalog.db"
    if not path.exists():
        yield Check("catalog", True, f"none yet at {path} (made by the first scan)")
        return
    try:
        counts = engine.catalog.counts()
    except CatalogError as exc:
        yield Check("catalog", False, str(exc), "restore a backup (catalog.db.bak-*) or move the file away")
        return
    yield Check("catalog", True, f"{path}: integrity ok, {counts['ok']} tracks analysed")
    index = engine.index
    for number, reason in index.store.load_failures:
        yield Check("index", False, f"generation {number} refused: {reason}",
                    "run `recengine scan` (a running daemon rebuilds it by itself)")
    if index.store.generation is not None:
        yield Check("index", True, f"generation {index.store.generation} loads, {index.store.size} tracks")
    elif counts["ok"]:
        yield Check("index", False, f"no index for the {counts['ok']} analysed tracks",
                    "run `recengine scan` (a running daemon builds it by itself)")
    else:
        yield Check("index", True, "none yet (built once tracks are analysed)")


def _backend(engine) -> Check:
    name = engine.config["backend"]
    if name not in engine.backends:
        return Check("backend", False, f"{name!r} is not a loaded backend (known: "
                     f"{', '.join(engine.backends.names())})", "set backend: to one of them")
    backend = engine.backends[name]
    if not hasattr(backend, "new_client"):
        return Check("backend", True, f"{name} (nothing to reach)")
    client = backend.new_client()
    try:
        with client.connect():
            client.command("ping")
    except MPDError as exc:
        return Check("backend mpd", False, str(exc), "start MPD, or set plugins.mpd.host/port (or MPD_HOST/"
                     "MPD_PORT), and plugins.mpd.password if it has one")
    return Check("backend mpd", True, f"MPD {client.version} at {client.address}")


def _api_token(config, env: Mapping[str, str]) -> Check:
    from recengine.web import WebSettings
    from recengine.web.auth import TOKEN_ENV, TOKEN_FILE

    web = WebSettings.from_config(config)
    if not web.enabled:
        return Check("api token", True, "the HTTP API is off")
    if env.get(TOKEN_ENV) or web.token:
        return Check("api token", True, f"set ({TOKEN_ENV} or http.token)")
    if web.loopback:
        return Check("api token", True, f"{web.data_dir / TOKEN_FILE} (generated at the first start; the API "
                     f"listens on {web.host} only)")
    return Check("api token", False, f"the API listens on {web.host} without a token and would not start",
                 f"set {TOKEN_ENV} in the service's environment, or http.token")
