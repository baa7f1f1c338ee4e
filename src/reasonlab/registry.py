"""One small registry class for every pluggable kind (tasks, rewards, advantages, losses, ...).

Why: the trainer and the CLI look plugins up by name in exactly one place, and users can
plug their own code in by passing an import path ``"pkg.module:function"`` instead of a name.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """Unknown plugin name; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REWARDS.register("format")``."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        if ":" in name:
            return _import_path(name, self.kind)
        raise RegistryError(
            f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._items))} "
            f"(or an import path 'package.module:function')"
        )

    def names(self) -> list[str]:
        return sorted(self._items)

    def ordered(self) -> list[str]:
        """Names in registration order (for kinds where the order means priority)."""
        return list(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


def _import_path(path: str, kind: str):
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise RegistryError(f"cannot import {kind} {path!r}: {exc}") from exc
