"""Validating nested YAML data against an :class:`~recengine.config.options.OptionSpec`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recengine.config.errors import ConfigError, UnsetVariable, unknown_key_error
from recengine.config.options import Option, OptionSpec

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: str, source: str, key: str, env: Mapping[str, str]) -> str | UnsetVariable:
    """``${VAR}`` from the environment; an unset one gives an :class:`UnsetVariable`, an error only
    where the value is used (a secret of a backend that is not in use breaks nothing)."""
    missing = [name for name in _ENV_REF.findall(value) if name not in env]
    if missing:
        return UnsetVariable(missing[0], ConfigError(source, key, f"environment variable {missing[0]} is not set"))
    return _ENV_REF.sub(lambda m: env[m.group(1)], value)


def expand_env(value: str, source: str, key: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` in ``value`` from ``env``, for settings read where they are used (sections a stage
    parses itself); an unset variable is a :class:`ConfigError` naming ``key``."""
    expanded = _expand_env(value, source, key, env)
    if isinstance(expanded, UnsetVariable):
        raise expanded.error
    return expanded


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
        if isinstance(text, UnsetVariable):
            return text
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
                if isinstance(coerced, UnsetVariable):
                    values[key] = coerced
                    continue
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
                raise unknown_key_error(source, key, name, sorted(siblings))

    plugins_section = raw.get("plugins")
    if plugins_section is not None and not isinstance(plugins_section, dict):
        raise ConfigError(source, "plugins", f"expected a mapping of plugin sections, got {plugins_section!r}")
    if "plugins" in raw:
        sections.add("plugins")
    walk(raw, "")
    return values
