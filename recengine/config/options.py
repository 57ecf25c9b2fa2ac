"""The declared config keys: their types, defaults and checks. The defaults here are the only ones:
every stage reads its settings from a validated :class:`~recengine.config.Config`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: File extensions that may reach the decoder. Playlists and cue sheets never do.
AUDIO_EXTENSIONS = (
    ".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".wave", ".aif", ".aiff", ".aifc",
    ".m4a", ".aac", ".alac", ".mp4", ".wma", ".wv", ".ape", ".mka", ".mod", ".xm", ".it", ".s3m",
)  # fmt: skip


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "recengine")


# --- option declarations ------------------------------------------------------------------------


@dataclass
class Option:
    """One config key: its dotted name, type, default, help and an optional extra check."""

    key: str
    type: str  # str int float bool path list[str] list[path] dict list optional forms: "str?"
    default: Any
    help: str = ""
    secret: bool = False
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None


class OptionSpec:
    """The set of declared options; plugins add theirs in the ``addoption`` hook."""

    def __init__(self) -> None:
        self.options: dict[str, Option] = {}

    def add(self, key: str, type: str, default: Any, help: str = "", **kw: Any) -> None:
        if key in self.options:
            raise ValueError(f"config option {key!r} declared twice")
        _check_type_name(type)
        self.options[key] = Option(key, type, default, help, **kw)

    def sections(self) -> set[str]:
        out = set()
        for key in self.options:
            parts = key.split(".")
            out.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return out


_TYPES = {"str", "int", "float", "bool", "path", "list[str]", "list[path]", "dict", "list", "any"}


def _check_type_name(type_name: str) -> None:
    if type_name.rstrip("?") not in _TYPES:
        raise ValueError(f"unknown option type {type_name!r}")


def core_options() -> OptionSpec:
    """The options recengine itself reads, with their defaults."""
    spec = OptionSpec()
    add = spec.add
    add("data_dir", "path", _default_data_dir(), "where the catalog and index live (local disk)")
    add("models_dir", "path?", None,
        "where `recengine models install` puts neural models (default $XDG_DATA_HOME/recengine/models, "
        "shared by every config)")
    add("log_level", "str", "info", "debug, info, warning or error",
        choices=("debug", "info", "warning", "error"))
    add("library.folders", "list[path]", ["~/Music"], "music folders to scan and watch")
    add("library.extensions", "list[str]", list(AUDIO_EXTENSIONS), "file extensions treated as audio",
        check=_check_extensions)
    add("library.exclude", "list[str]", [], "glob patterns (relative paths) to leave out")
    add("plugin_dirs", "list[path]", ["plugins"], "folders of drop-in plugin files")
    add("disabled_plugins", "list[str]", [], "plugins (built-in or not) not to load")
    add("load_plugins", "list[str]?", None, "if set, only these entry-point plugins are loaded")
    add("analysis.sample_rate", "int", 22050, "analysis sample rate (Hz)", check=_positive)
    add("analysis.windows", "int", 3, "excerpts decoded per track", check=_positive)
    add("analysis.window_s", "float", 20.0, "length of each excerpt (s)", check=_positive)
    add("analysis.ffmpeg", "str", "auto",
        "auto (the system's, else the imageio-ffmpeg wheel's), system, or bundled (the wheel's first: "
        "a static build that starts faster)", choices=("auto", "system", "bundled"))
    add("analysis.timeout_s", "float", 60.0, "decoder time limit per file (s)", check=_positive)
    add("analysis.min_duration_s", "float", 1.0, "shorter files are failures (too_short)")
    add("scan.workers", "int", 0, "worker processes (0: one per core)", check=_non_negative)
    add("scan.executor", "str", "local",
        "where feature jobs run: local (worker processes on this machine) or dask (the workers of a "
        "dask.distributed cluster; pip install 'recengine[dask]')", choices=("local", "dask"))
    add("scan.dask.scheduler", "str?", None, "the Dask scheduler's address, e.g. tcp://nas:8786 (scan.executor: dask)",
        check=check_scheduler_address)
    add("scan.dask.path_map", "dict", {},
        "library folders as the Dask workers see them: {local prefix: worker prefix}, e.g. "
        "{/srv/music: /mnt/nas/music}", check=_check_path_map)
    add("scan.dask.connect_timeout_s", "float", 10.0, "how long a scan tries to reach the Dask scheduler (s)",
        check=_positive)
    add("scan.mass_delete_ratio", "float", 0.10,
        "a scan that would delete more than this share of a folder needs --confirm-mass-delete")
    add("scan.purge_after_days", "float", 30.0, "missing tracks are forgotten after this long")
    add("catalog.backups", "int", 7, "daily copies of the catalog the daemon keeps in data_dir/backups (0: none)",
        check=_non_negative)
    add("index.metric", "str", "auto", "auto (from the extractors) or angular / euclidean",
        choices=("auto", "angular", "euclidean"))
    add("index.trees", "int", 0, "Annoy trees (0: chosen from the library size)", check=_non_negative)
    add("index.search_k", "int", 0, "Annoy search_k (0: chosen from trees and size)", check=_non_negative)
    add("index.shards", "int", 0, "Annoy shards built and searched side by side (0: 2 from 250k tracks on 2+ cores)",
        check=_non_negative)
    add("index.rebuild_after_changes", "int", 200, "rebuild after this many new/changed tracks")
    add("index.rebuild_quiet_s", "float", 30.0, "... or after this many seconds without changes")
    add("index.dimensions", "int", 64,
        "index vectors are projected to this many dimensions (0: keep all); smaller is faster",
        check=_non_negative)
    add("similarity.local_scaling_k", "int", 10,
        "rank 'more like this' by distance / sqrt(distance of the candidate to its k-th neighbour) "
        "(hubs stop crowding every list); 0 turns it off", check=_non_negative)
    add("similarity.candidates", "int", 30,
        "at least this many allowed nearest tracks are fetched and re-ranked per query (about 3x as many are read)",
        check=_positive)
    add("index.weights", "dict", {}, "per-extractor weight in the similarity vector, e.g. {timbre: 2}")
    add("daemon.settle_s", "float", 1.0,
        "a new file is analysed once it was closed and unchanged this long (inotify)", check=_positive)
    add("daemon.poll_settle_s", "float", 10.0,
        "the same where no close event exists (polling, network mounts)", check=_positive)
    add("daemon.poll_interval_s", "float", 5.0, "how often polled folders are scanned for changes",
        check=_positive)
    add("daemon.force_polling", "bool", False, "poll every folder instead of using inotify")
    add("daemon.reconcile_interval_s", "float", 3600.0, "full reconcile on this timer (the safety net)",
        check=_positive)
    add("daemon.watch_backend", "bool", False,
        "follow the `backend:` player (MPD): record plays and skips, keep its queue topped up")
    add("daemon.topup_user", "str", "default", "whose recommendations top the player's queue up")
    add("daemon.topup_playlist", "str?", None, "top up from this playlist recipe instead")
    add("backend", "str", "null", "default playback backend")
    add("hook_deadline_s", "float", 5.0,
        "an event hook (track_added, startup, ...) that takes longer is logged and left to finish on its own",
        check=_positive)
    add("http.enabled", "bool", True, "serve the HTTP API and the web page inside `recengine daemon`")
    add("http.host", "str", "127.0.0.1", "address the HTTP server binds (anything but loopback needs http.token)")
    add("http.port", "int", 8741, "HTTP port (0: any free one)",
        check=lambda v: None if 0 <= v <= 65535 else "must be a port number (0-65535)")
    add("daemon.sync_interval_s", "float", 3600.0,
        "the daemon syncs each `sources:` entry this often unless the entry sets its own interval_s",
        check=_positive)
    add("http.token", "str?", None, "API token (else $RECENGINE_API_TOKEN, else one generated into "
        "<data_dir>/api-token)", secret=True)
    add("outputs", "dict", {}, "playlist output folders and their path style")
    add("playlists", "list", [], "playlist recipes")
    add("sources", "list", [], "media servers to learn from and push playlists to (recengine sync)")
    return spec


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be 0 or more"


#: address schemes dask.distributed connects with
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")


def check_scheduler_address(v: str) -> str | None:
    """Why ``v`` is not a Dask scheduler address (``scheme://host:port``), or None."""
    scheme, sep, rest = v.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or scheme not in SCHEDULER_SCHEMES or not colon or not host.strip("[]") or not port.isdigit() \
            or not 0 < int(port) < 65536:
        return f"expected a scheduler address such as tcp://host:8786, got {v!r}"
    return None


def _check_path_map(v: dict) -> str | None:
    for local, remote in v.items():
        if not isinstance(local, str) or not isinstance(remote, str):
            return f"expected folder paths (strings) on both sides, got {local!r}: {remote!r}"
        for side in (local, remote):
            if not os.path.isabs(side):
                return f"expected absolute folder paths, got {side!r}"
    return None


def _check_extensions(v: list[str]) -> str | None:
    bad = [e for e in v if not e.startswith(".")]
    return f"extensions start with a dot: {bad[0]!r}" if bad else None
