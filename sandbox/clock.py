"""The sandbox's clock: real time by default, shiftable; or frozen for tests."""

from __future__ import annotations

import threading
import time


class Clock:
    """``Clock()`` follows real time (``advance`` shifts it); ``Clock(start, frozen=True)`` only
    moves when advanced. Callable: ``clock()`` is ``clock.now()``, so it can be handed to the
    product's code as its ``clock``."""

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self.frozen = frozen
        self._lock = threading.Lock()
        base = time.time() if start is None else float(start)
        self._offset = base - time.time()
        self._value = base

    def now(self) -> float:
        with self._lock:
            return self._value if self.frozen else time.time() + self._offset

    __call__ = now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._value += seconds
            self._offset += seconds
            return self._value if self.frozen else time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        """A ``sleep`` for code under test: moves a frozen clock, really sleeps otherwise."""
        if self.frozen:
            self.advance(max(0.0, seconds))
        else:
            time.sleep(max(0.0, seconds))
