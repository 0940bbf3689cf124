"""Per corp, per API pacing of WeCom calls: one counter item per 1-second window.

WeCom's frequency limits are per corp *per API* (10,000/min and 150,000/h per API, doc 90454,
wecom-api.md section 4), so each API path has its own budget: a broadcast fan-out that fills
``add_msg_template``'s windows never delays ``send_welcome_msg``, whose 20-second code cannot wait.
The default budget is 10,000/min x 0.9 / 60 = 150 calls per second per API (the hourly
150,000 is then the binding limit only for sustained load over ~17 minutes, which the queue
consumers' concurrency bounds anyway).

Item `keys.rate_window(corp_id, api, window)` holds ``n`` (permits taken) and ``expires_at`` (TTL,
a minute after the window). An instance leases ``block`` permits with one UpdateItem (``ADD n
block`` on condition ``n <= budget - block``, else a single permit) and spends them from memory;
when not even one is left, the caller waits for the next window.
"""

from __future__ import annotations

import threading

from chalicelib.store import keys
from chalicelib.store.table import ConditionFailed, Table

PER_MINUTE_LIMIT = 10_000
SAFETY = 0.9
DEFAULT_PER_SECOND = int(PER_MINUTE_LIMIT * SAFETY / 60)  # 150
WINDOW_TTL_SECONDS = 60
DEFAULT_BLOCK = 5  # permits leased per UpdateItem


class DynamoRateLimiter:
    """`chalicelib.wecom.client.RateLimiter` on the one table.

    ``budgets`` overrides the per-second budget of single APIs (path relative to /cgi-bin, e.g.
    {"externalcontact/get": 20} to stay under 45033's concurrency limit on list reads).
    """

    def __init__(self, table: Table, *, per_second: int = DEFAULT_PER_SECOND,
                 budgets: dict[str, int] | None = None, block: int = DEFAULT_BLOCK):
        self.table = table
        self.per_second = per_second
        self.budgets = dict(budgets or {})
        self.block = max(1, block)
        self._held: dict[tuple[str, str], tuple[int, int]] = {}
        self._full: dict[tuple[str, str], int] = {}
        # One lock per (corp, API), held across its lease's UpdateItem: a lease in flight for one
        # API (a burst's groupchat/get) never holds back another's call (a rotation's update_join_way).
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()  # guards _locks

    def budget(self, api: str) -> int:
        return self.budgets.get(api, self.per_second)

    def acquire(self, corp_id: str, api: str, now: float) -> float:
        """0 to go now, else seconds until the next window. Permits are leased from the shared
        window `block` at a time and spent from memory, so a busy instance pays one UpdateItem per
        `block` calls; leased permits left at the window's end lapse (the budget is never exceeded)."""
        window = int(now)
        key = (corp_id, api)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            held_window, left = self._held.get(key, (-1, 0))
            if held_window == window and left > 0:
                self._held[key] = (window, left - 1)
                return 0.0
            wait = max(0.001, window + 1 - now)
            if self._full.get(key) == window:  # refused already: no request until the next window
                return wait
            budget = self.budget(api)
            for size in dict.fromkeys((min(self.block, budget), 1)):
                if self._lease(corp_id, api, window, size, budget):
                    self._held[key] = (window, size - 1)
                    return 0.0
            self._full[key] = window
            return wait

    def _lease(self, corp_id: str, api: str, window: int, size: int, budget: int) -> bool:
        try:
            self.table.update(
                keys.rate_window(corp_id, api, window),
                expression="ADD #n :size SET #ttl = :ttl",
                condition="attribute_not_exists(#n) OR #n <= :most",
                names={"#n": "n", "#ttl": "expires_at"},
                values={":size": size, ":most": budget - size, ":ttl": window + WINDOW_TTL_SECONDS},
            )
        except ConditionFailed:
            return False
        return True
