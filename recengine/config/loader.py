"""One YAML config file, validated up front against defaults that live in code.

Errors name the file, the dotted key and what was expected, e.g.
``config.yaml: library.folders[1]: '/srv/musik' does not exist``. Unknown keys are errors with a
"did you mean". Plugins declare their own keys through the ``addoption`` hook, under
``plugins.<name>``, and are validated the same way. ``${VAR}`` in a string value is read from the
environment (for secrets); options marked secret are redacted when shown.

The file in use is found by :func:`locate_config` (``--config``, ``$RECENGINE_CONFIG``, the user's
XDG config, ``/etc/recengine``, else the built-in defaults); relative paths in it, and relative
defaults such as ``plugin_dirs: [plugins]``, are relative to its folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recengine.config.model import Config
from recengine.config.options import OptionSpec
from recengine.config.validation import _resolve_path, validate
from recengine.config.yaml_file import read_yaml

#: The system-wide config file, read when the user has none (a system service's).
SYSTEM_CONFIG = Path("/etc/recengine/config.yaml")


@dataclass(frozen=True)
class ConfigLocation:
    """Which config file is in use (``path`` None: the built-in defaults) and the rule that chose it."""

    path: Path | None
    rule: str  # "--config", "$RECENGINE_CONFIG", "$XDG_CONFIG_HOME", "/etc" or "defaults"


def xdg_config_home(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME``; ``~/.config`` when it is unset, empty or relative (the XDG base
    directory rules)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base)


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The user's config file: ``$XDG_CONFIG_HOME/recengine/config.yaml``."""
    return xdg_config_home(env) / "recengine" / "config.yaml"


def locate_config(explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None, *,
                  system: Path = SYSTEM_CONFIG) -> ConfigLocation:
    """The config file in use, as beets and most XDG tools find theirs: ``--config``, else
    ``$RECENGINE_CONFIG`` (both used even if missing: reading it then says so), else the user's
    (:func:`user_config_path`) if it exists, else ``system`` if it exists, else the built-in
    defaults. A ``config.yaml`` in the working folder is read only when named."""
    env = os.environ if env is None else env
    if explicit:
        return ConfigLocation(Path(explicit), "--config")
    if env.get("RECENGINE_CONFIG"):
        return ConfigLocation(Path(env["RECENGINE_CONFIG"]), "$RECENGINE_CONFIG")
    user = user_config_path(env)
    if user.is_file():
        return ConfigLocation(user, "$XDG_CONFIG_HOME")
    if system.is_file():
        return ConfigLocation(system, "/etc")
    return ConfigLocation(None, "defaults")


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The path of :func:`locate_config` (None: the built-in defaults)."""
    return locate_config(explicit, env).path


def init_target(explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """Where ``recengine config init`` writes: ``--config``, else ``$RECENGINE_CONFIG``, else the
    user's config file."""
    env = os.environ if env is None else env
    return Path(explicit or env.get("RECENGINE_CONFIG") or user_config_path(env))


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
    for key, opt in spec.options.items():
        if values[key] is opt.default and opt.type.rstrip("?") in ("path", "list[path]") and opt.default:
            values[key] = _path_default(opt.default, base if path is not None else None)
    return Config(values=values, spec=spec, source=source, base=base, raw=raw, warnings=warnings)


def _path_default(default: str | list[str], config_dir: Path | None) -> str | list[str]:
    """A default that is a relative path is relative to the config file's folder. Without a file
    there is nothing it could be relative to (never the working folder: ``plugins/`` there would be
    code run from wherever the command was typed), so a list default drops its relative entries; a
    single path default stays relative to the working folder."""
    if isinstance(default, list):
        kept = [d for d in default if config_dir is not None or os.path.isabs(os.path.expanduser(d))]
        return [_resolve_path(d, config_dir or Path.cwd()) for d in kept]
    return _resolve_path(default, config_dir or Path.cwd())
