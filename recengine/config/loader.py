"""One YAML config file, validated up front against defaults that live in code.

Errors name the file, the dotted key and what was expected, e.g.
``config.yaml: library.folders[1]: '/srv/musik' does not exist``. Unknown keys are errors with a
"did you mean". Plugins declare their own keys through the ``addoption`` hook, under
``plugins.<name>``, and are validated the same way. ``${VAR}`` in a string value is read from the
environment (for secrets); options marked secret are redacted when shown.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_CONFIG_BYTES = 256 * 1024
REDACTED = "********"

#: File extensions that may reach the decoder. Playlists and cue sheets never do.
AUDIO_EXTENSIONS = (
    ".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".wave", ".aif", ".aiff", ".aifc",
    ".m4a", ".aac", ".alac", ".mp4", ".wma", ".wv", ".ape", ".mka", ".mod", ".xm", ".it", ".s3m",
)  # fmt: skip


class ConfigError(Exception):
    """A configuration mistake: ``<file>: <dotted key>: <what was expected>``."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key, self.message = source, key, message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


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
    add("scan.mass_delete_ratio", "float", 0.10,
        "a scan that would delete more than this share of a folder needs --confirm-mass-delete")
    add("scan.purge_after_days", "float", 30.0, "missing tracks are forgotten after this long")
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
    add("users", "list[str]", ["default"], "listeners; others are created on first use")
    add("backend", "str", "null", "default playback backend")
    add("outputs", "dict", {}, "playlist output folders and their path style")
    add("playlists", "list", [], "playlist recipes")
    return spec


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _check_extensions(v: list[str]) -> str | None:
    bad = [e for e in v if not e.startswith(".")]
    return f"extensions start with a dot: {bad[0]!r}" if bad else None


# --- YAML reading --------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses aliases (billion-laughs) and duplicate keys, and reads only
    true/false as booleans (YAML 1.2): ``on:``, ``yes``, ``no`` stay strings, so a key such as
    ``refresh: {on: [library]}`` means what it says."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}: aliases (*name) are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a config file safely: size cap, ``safe_load`` semantics, no aliases, mapping on top."""
    source = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, "", f"larger than {MAX_CONFIG_BYTES // 1024} KiB; refusing to read")
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_StrictLoader)  # noqa: S506 - strict safe loader
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        if "could not determine a constructor" in str(exc):
            msg = "tags such as !!python/... are not allowed"
        raise ConfigError(source, "", f"invalid YAML: {msg}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected a mapping of settings at the top, got {type(data).__name__}")
    return data


# --- validation ----------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: str, source: str, key: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(source, key, f"environment variable {name} is not set")
        return env[name]

    return _ENV_REF.sub(sub, value)


def _coerce(opt: Option, value: Any, source: str, key: str, base: Path, env: Mapping[str, str]) -> Any:
    type_name = opt.type
    if type_name.endswith("?"):
        if value is None:
            return None
        type_name = type_name[:-1]

    def expect(what: str) -> ConfigError:
        return ConfigError(source, key, f"expected {what}, got {value!r}")

    if type_name == "any":
        return value
    if type_name == "bool":
        if not isinstance(value, bool):
            raise expect("true or false")
        return value
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise expect("a whole number")
        return value
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise expect("a number")
        return float(value)
    if type_name in ("str", "path"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise expect("a string")
        text = _expand_env(str(value), source, key, env)
        return _resolve_path(text, base) if type_name == "path" else text
    if type_name == "dict":
        if not isinstance(value, dict):
            raise expect("a mapping")
        return value
    if type_name == "list":
        if not isinstance(value, list):
            raise expect("a list")
        return value
    if type_name in ("list[str]", "list[path]"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise expect("a list of strings")
        item = Option(opt.key, type_name[5:-1], None)
        return [_coerce(item, v, source, f"{key}[{i}]", base, env) for i, v in enumerate(value)]
    raise AssertionError(type_name)


def _resolve_path(text: str, base: Path) -> str:
    p = Path(os.path.expanduser(text))
    return str(p if p.is_absolute() else (base / p).resolve())


def _unknown(source: str, key: str, name: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
    return ConfigError(source, key, f"unknown setting{hint}")


def validate(raw: dict[str, Any], spec: OptionSpec, *, source: str, base: Path,
             env: Mapping[str, str] | None = None, loaded_plugins: set[str] | None = None,
             warnings: list[str] | None = None) -> dict[str, Any]:
    """Check ``raw`` (nested YAML data) against ``spec``; return flat ``{dotted key: value}``.

    ``plugins.<name>`` sections of plugins that are not loaded are kept aside with a warning (the
    plugin may be disabled); every other unknown key is an error.
    """
    env = os.environ if env is None else env
    sections = spec.sections()
    values = {key: opt.default for key, opt in spec.options.items()}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, value in node.items():
            if not isinstance(name, str):
                raise ConfigError(source, prefix or "", f"keys must be strings, got {name!r}")
            key = f"{prefix}{name}"
            if key in spec.options:
                opt = spec.options[key]
                coerced = _coerce(opt, value, source, key, base, env)
                if opt.choices is not None and coerced not in opt.choices:
                    raise ConfigError(source, key, f"expected one of {', '.join(map(str, opt.choices))}, got {value!r}")
                if opt.check is not None and coerced is not None:
                    problem = opt.check(coerced)
                    if problem:
                        raise ConfigError(source, key, problem)
                values[key] = coerced
            elif key in sections:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise ConfigError(source, key, f"expected a mapping (a section), got {value!r}")
                walk(value, key + ".")
            elif prefix == "plugins." and loaded_plugins is not None and name not in loaded_plugins:
                if warnings is not None:
                    warnings.append(f"{source}: {key}: no loaded plugin named {name!r}; section ignored")
            else:
                siblings = {k[len(prefix):].split(".")[0] for k in list(spec.options) + list(sections)
                            if k.startswith(prefix)}
                raise _unknown(source, key, name, sorted(siblings))

    plugins_section = raw.get("plugins")
    if plugins_section is not None and not isinstance(plugins_section, dict):
        raise ConfigError(source, "plugins", f"expected a mapping of plugin sections, got {plugins_section!r}")
    if "plugins" in raw:
        sections.add("plugins")
    walk(raw, "")
    return values


# --- the validated config ----------------------------------------------------------------------


@dataclass
class Config:
    """The effective, validated configuration: flat dotted keys, with the spec that typed them."""

    values: dict[str, Any]
    spec: OptionSpec
    source: str = "<defaults>"
    base: Path = field(default_factory=Path.cwd)
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def library_folders(self) -> list[Path]:
        return [Path(p) for p in self.values["library.folders"]]

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.source, key, message)

    def nested(self, redact: bool = True) -> dict[str, Any]:
        """The effective config as nested data, secrets redacted, for ``config show``."""
        out: dict[str, Any] = {}
        for key in sorted(self.values):
            value = self.values[key]
            opt = self.spec.options.get(key)
            if redact and opt is not None and opt.secret and value:
                value = REDACTED
            node = out
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return out


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path | None:
    """``--config``, else ``RECENGINE_CONFIG``, else ``./config.yaml`` if present, else None (defaults)."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("RECENGINE_CONFIG"):
        return Path(env["RECENGINE_CONFIG"])
    default = Path("config.yaml")
    return default if default.exists() else None


def build_config(path: Path | None, spec: OptionSpec, raw: dict[str, Any] | None = None, *,
                 env: Mapping[str, str] | None = None, loaded_plugins: set[str] | None = None) -> Config:
    """Validate the file at ``path`` (or nothing: defaults only) against ``spec``."""
    if raw is None:
        raw = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "<defaults>"
    base = path.resolve().parent if path is not None else Path.cwd()
    warnings: list[str] = []
    values = validate(raw, spec, source=source, base=base, env=env,
                      loaded_plugins=loaded_plugins, warnings=warnings)
    # defaults that are relative paths are relative to the config file too
    for key, opt in spec.options.items():
        if values[key] is opt.default and opt.type.rstrip("?") in ("path", "list[path]") and opt.default:
            defaults = opt.default if isinstance(opt.default, list) else [opt.default]
            resolved = [_resolve_path(str(d), base) for d in defaults]
            values[key] = resolved if isinstance(opt.default, list) else resolved[0]
    return Config(values=values, spec=spec, source=source, base=base, raw=raw, warnings=warnings)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
