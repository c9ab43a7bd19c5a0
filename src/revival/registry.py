"""Named registries for interchangeable variants (completion methods, magnitude rules, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from revival.errors import RevivalError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table whose lookup errors list the known names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict] = {}

    def register(self, name: str, **meta) -> Callable[[T], T]:
        """Decorator: `@REG.register("name", key=value, ...)` adds the decorated object and its metadata."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def meta(self, name: str) -> dict:
        """The metadata registered with `name` (an error listing the known names otherwise)."""
        self.get(name)
        return self._meta[name]

    def names_where(self, **meta) -> list[str]:
        """Registered names whose metadata has every given key=value."""
        return [n for n in self._items if all(self._meta[n].get(k) == v for k, v in meta.items())]

    def get(self, name: str) -> T:
        """The object registered as `name`; an error listing the known names otherwise."""
        if name not in self._items:
            raise RevivalError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
