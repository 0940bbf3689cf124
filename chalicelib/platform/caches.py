"""Every in-memory cache of an instance, and the one way to drop them all.

A Lambda instance keeps what it may reuse across invocations (settings, AWS clients, the table,
queue URLs, corps and their WeCom clients, channel codes, default welcomes, tag libraries, the
admin key): each module that keeps one registers how to clear it, at import. `clear_all()` is
what a test, a bench or the local stack calls to behave like a new instance; a module never
imported holds nothing, so it has nothing registered. Targeted invalidation after a change (one
corp, one channel code) stays with the module that owns the cache.
"""

from __future__ import annotations

from collections.abc import Callable

_clears: dict[str, Callable[[], None]] = {}


def register(name: str, clear: Callable[[], None]) -> None:
    """`name`: the cache, as `module:what` (for `registered()`); `clear`: drops all of it."""
    _clears[name] = clear


def registered() -> list[str]:
    return sorted(_clears)


def clear_all() -> None:
    for clear in list(_clears.values()):
        clear()
