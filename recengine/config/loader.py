"""One YAML config file, validated up front against defaults that live in code.

Errors name the file, the dotted key and what was expected, e.g.
``config.yaml: library.folders[1]: '/srv/musik' does not exist``. Unknown keys are errors with a
"did you mean". Plugins declare their own keys through the ``addoption`` hook, under
``plugins.<name>``, and are validated the same way. ``${VAR}`` in a string value is read from the
environment (for secrets); options marked secret are redacted when shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recengine.config.model import Config
from recengine.config.options import OptionSpec
from recengine.config.validation import _resolve_path, validate
from recengine.config.yaml_file import read_yaml


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
