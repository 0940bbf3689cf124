"""Fault injection, switchable at run time (Python or ``POST /sandbox/faults``).

A fault applies to WeCom API calls (never to ``/sandbox/...``), optionally only to one API path
(relative to /cgi-bin, e.g. ``externalcontact/send_welcome_msg``; ``gettoken`` included), for the
next ``count`` matching calls or at a ``rate`` (probability, seeded), or both (count then bounds
how many fire). Kinds:

- ``errcode``: answer ``{"errcode": N}`` without executing (45009, 45033, -1, 6000, 42001, ...).
  40014/42001 also revoke the presented access token, as WeCom does when it drops a token early.
- ``http``: answer HTTP ``status`` (500/502/503/504) with a gateway HTML body, not executed.
- ``slow``: wait ``delay`` seconds, then answer normally; if the client's read timeout is shorter,
  it times out (and the action was executed, as on a slow real server).
- ``timeout``: no answer: ``execute=True`` (default) runs the action first (the worst case: WeCom
  did it, the caller cannot know), ``execute=False`` does not. In-process this raises
  ``httpx.ReadTimeout``; the HTTP server holds the connection and then drops it.
- ``connect_error``: the connection is refused (never executed).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("errcode", "http", "slow", "timeout", "connect_error")


@dataclass
class Fault:
    kind: str
    path: str | None = None
    errcode: int | None = None
    status: int = 502
    delay: float = 0.0
    execute: bool = True
    count: int | None = 1
    rate: float | None = None
    corp_id: str | None = None
    id: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.kind == "errcode" and self.errcode is None:
            raise ValueError("an errcode fault needs errcode")
        if self.count is None and self.rate is None:
            raise ValueError("a fault needs count or rate")
        if self.path:
            self.path = self.path.strip("/").removeprefix("cgi-bin/")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Faults:
    seed: int = 0
    items: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._next_id = 1

    def add(self, kind: str, *, path: str | None = None, count: int | None = 1,
            rate: float | None = None, **kwargs: Any) -> Fault:
        fault = Fault(kind=kind, path=path, count=count, rate=rate, **kwargs)
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self.items.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.items.clear()

    def remove(self, fault_id: int) -> None:
        with self._lock:
            self.items = [f for f in self.items if f.id != fault_id]

    def take(self, api: str, corp_id: str | None) -> Fault | None:
        """The fault that fires for this call, if any (consumes one of its count)."""
        with self._lock:
            for fault in list(self.items):
                if fault.path and fault.path != api:
                    continue
                if fault.corp_id and corp_id and fault.corp_id != corp_id:
                    continue
                if fault.rate is not None and self._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.items.remove(fault)
                return fault
        return None

    def to_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self.items]
