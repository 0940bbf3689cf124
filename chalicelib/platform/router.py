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
    # run once the event's other steps are committed (reads what they wrote, e.g. its counts)
    after_commit: bool = False
    # an after_commit step's cheap check, before the commit: False = nothing to do for this event
    # (the step is then marked done with the others, and costs no commit of its own)
    needed: Callable[[Any], bool] | None = None
    # keys of the items the step reads (its EventContext.item), fetched with the event record in one request
    reads: Callable[[str, Any], list[dict[str, str]]] | None = None


def capability_of(module: str) -> str:
    """`chalicelib.<capability>.<module>` -> `<capability>` (a step's name must not change when a
    capability splits a module, and two capabilities' `steps.py` must not share step names)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "chalicelib" else parts[-1]


class Router:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str | None], list[Route]] = {}

    def register(self, event: str, change_type: str | None = None, *, urgent: bool = False,
                 after_commit: bool = False, needed: Callable[[Any], bool] | None = None,
                 reads: Callable[[str, Any], list[dict[str, str]]] | None = None,
                 ) -> Callable[[Handler], Handler]:
        """`change_type=None` receives every ChangeType of the event. `urgent` handlers (the
        welcome: its code dies in 20 s) run for a whole batch before the rest of any message.
        `after_commit` handlers run once the event's other steps are committed, and are committed
        on their own (the cap check reads the count the add's commit wrote); `needed(ctx)` says
        whether an event gives one anything to do (if not, it costs no second commit). `reads(corp_id,
        event)`: keys of items the handler reads through `ctx.item`, read with the event's record."""

        def decorate(fn: Handler) -> Handler:
            step = f"{capability_of(fn.__module__)}.{fn.__name__}"
            route = Route(step, fn, urgent, after_commit, needed, reads)
            self._routes.setdefault((event, change_type), []).append(route)
            return fn

        return decorate

    def fetch(self, event: str, change_type: str | None) -> list[Route]:
        exact = self._routes.get((event, change_type), []) if change_type is not None else []
        return exact + self._routes.get((event, None), [])

    def keys(self) -> list[tuple[str, str | None]]:
        return list(self._routes)


# The one router of callback events; capability modules register on it at import.
ROUTER = Router()
