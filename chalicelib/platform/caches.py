"""Every in-memory cache of an instance, and the one way to drop them all.

A Lambda instance keeps what it may reuse across invocations (settings, AWS clients, the table,
queue URLs, corps and their WeCom clients, channel codes, default welcomes, tag libraries, the
admin key): each module that keeps one registers how to clear it, at import. `clear_all()` is
what a test, a bench or the local stack calls to behave like a new instance; a module never
imported holds nothing, so it has nothing registered. Targeted invalidation after a change (one
corp, one channel code) stays with the module that owns the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

_clears: dict[str, Callable[[], None]] = {}
V = TypeVar("V")


def register(name: str, clear: Callable[[], None]) -> None:
    """`name`: the cache, as `module:what` (for `registered()`); `clear`: drops all of it."""
    _clears[name] = clear


def registered() -> list[str]:
    return sorted(_clears)


def clear_all() -> None:
    for clear in list(_clears.values()):
        clear()


class Expiring(Generic[V]):
    """A per-instance map whose entries expire `ttl` seconds (monotonic clock) after they were
    stored, registered under `name` so that `clear_all()` empties it: the hot path's reads that may
    be a little stale (a channel code, a tag library, a default welcome, a group code's links)."""

    def __init__(self, name: str, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[Hashable, tuple[float, V]] = {}
        register(name, self._items.clear)

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The live entry, or `load()` stored as the new one."""
        hit = self._items.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return self.put(key, load())

    def put(self, key: Hashable, value: V) -> V:
        self._items[key] = (time.monotonic() + self.ttl, value)
        return value

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
