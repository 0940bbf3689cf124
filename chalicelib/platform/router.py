"""Dispatch of callback events to capability handlers, keyed on (Event, ChangeType).

Capabilities register their handlers; the consumer asks the router which handlers an event has.
A handler's name is its exactly-once step: `<capability>.<function>`, the capability being its
package under chalicelib (`chalicelib.welcome.steps.send_welcome` -> `welcome.send_welcome`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[Any], Any]


@dataclass(frozen=True)
class Route:
    step: str
    handler: Handler
    urgent: bool = False  # run for every message of a batch before the other steps of any


def capability_of(module: str) -> str:
    """`chalicelib.<capability>.<module>` -> `<capability>` (a step's name must not change when a
    capability splits a module, and two capabilities' `steps.py` must not share step names)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "chalicelib" else parts[-1]


class Router:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str | None], list[Route]] = {}

    def register(self, event: str, change_type: str | None = None, *,
                 urgent: bool = False) -> Callable[[Handler], Handler]:
        """`change_type=None` receives every ChangeType of the event. `urgent` handlers (the
        welcome: its code dies in 20 s) run for a whole batch before the rest of any message."""

        def decorate(fn: Handler) -> Handler:
            step = f"{capability_of(fn.__module__)}.{fn.__name__}"
            self._routes.setdefault((event, change_type), []).append(Route(step, fn, urgent))
            return fn

        return decorate

    def fetch(self, event: str, change_type: str | None) -> list[Route]:
        exact = self._routes.get((event, change_type), []) if change_type is not None else []
        return exact + self._routes.get((event, None), [])

    def keys(self) -> list[tuple[str, str | None]]:
        return list(self._routes)


# The one router of callback events; capability modules register on it at import.
ROUTER = Router()
