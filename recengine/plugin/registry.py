"""The ``register`` callback behind every ``register_*`` hook.

Each registry checks what a plugin registers against its protocol (:mod:`recengine.plugin.protocols`),
rejects duplicate names, and remembers which plugin owns each entry, so that ``recengine plugins``
and error messages can name it. A plugin whose ``register_*`` hook raises is logged and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pluggy

from recengine.plugin.isolation import current_plugin
from recengine.plugin.protocols import PROTOCOLS, required_members

log = logging.getLogger(__name__)

class RegistrationError(ValueError):
    """Something registered does not follow its protocol, or reuses a taken name."""


@dataclass
class Registry:
    """Named objects of one kind, with their owning plugin."""

    kind: str
    items: dict[str, Any] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def check(self, obj: Any) -> str:
        for attr, expected in required_members(PROTOCOLS[self.kind]):
            value = getattr(obj, attr, None)
            if expected == "callable":
                if not callable(value):
                    raise RegistrationError(f"{self.kind[:-1]} {obj!r} has no method {attr}()")
            elif not isinstance(value, expected) or isinstance(value, bool):
                raise RegistrationError(
                    f"{self.kind[:-1]} {obj!r}: {attr} must be {expected.__name__}, got {value!r}"
                )
        name = obj.name
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise RegistrationError(f"{self.kind[:-1]} name {name!r} must be letters, digits, - or _")
        if self.kind == "extractors" and obj.dim <= 0:
            raise RegistrationError(f"extractor {name}: dim must be positive")
        return name

    def add(self, obj: Any, owner: str) -> None:
        name = self.check(obj)
        if name in self.items:
            raise RegistrationError(
                f"{self.kind[:-1]} name {name!r} from plugin {owner} is already registered by {self.owners[name]}"
            )
        self.items[name] = obj
        self.owners[name] = owner

    def __getitem__(self, name: str) -> Any:
        return self.items[name]

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def __iter__(self):
        return iter(self.items.values())

    def __len__(self) -> int:
        return len(self.items)

    def names(self) -> list[str]:
        return list(self.items)


def collect(pm: pluggy.PluginManager, kind: str, config: Any = None) -> Registry:
    """Call ``register_<kind>`` through pluggy and return what the plugins registered, each entry
    with its owner. ``config`` is passed to implementations that take it. A plugin whose hook
    raises is logged and left out (:mod:`recengine.plugin.isolation`); the others still register."""
    registry = Registry(kind)
    failures = getattr(pm, "hook_failures", [])
    before = len(failures)

    def register(obj: Any) -> None:
        owner = current_plugin.get() or "?"
        try:
            registry.add(obj, owner)
        except RegistrationError as exc:
            registry.errors.append(f"plugin {owner}: {exc}")
            log.error("plugin %s: %s", owner, exc)

    getattr(pm.hook, f"register_{kind}")(register=register, config=config)
    for failure in failures[before:]:
        registry.errors.append(f"plugin {failure.plugin}: register_{kind} failed: {failure.error}")
    return registry
