"""Per corp, per API pacing of WeCom calls: one counter item per 1-second window.

WeCom's frequency limits are per corp *per API* (10,000/min and 150,000/h per API, doc 90454,
wecom-api.md section 4), so each API path has its own budget: a broadcast fan-out that fills
``add_msg_template``'s windows never delays ``send_welcome_msg``, whose 20-second code cannot wait.
The default budget is 10,000/min x 0.9 / 60 = 150 calls per second per API (the hourly
150,000 is then the binding limit only for sustained load over ~17 minutes, which the queue
consumers' concurrency bounds anyway).

Item `keys.rate_window(corp_id, api, window)` holds ``n`` (calls taken) and ``expires_at`` (TTL,
a minute after the window). One UpdateItem per call: ``ADD n 1`` on condition ``n < budget``; a
failed condition means the window is full, and the caller waits for the next one.
"""

from __future__ import annotations

from chalicelib.store import keys
from chalicelib.store.table import ConditionFailed, Table

PER_MINUTE_LIMIT = 10_000
SAFETY = 0.9
DEFAULT_PER_SECOND = int(PER_MINUTE_LIMIT * SAFETY / 60)  # 150
WINDOW_TTL_SECONDS = 60


class DynamoRateLimiter:
    """`chalicelib.wecom.client.RateLimiter` on the one table.

    ``budgets`` overrides the per-second budget of single APIs (path relative to /cgi-bin, e.g.
    {"externalcontact/get": 20} to stay under 45033's concurrency limit on list reads).
    """

    def __init__(self, table: Table, *, per_second: int = DEFAULT_PER_SECOND,
                 budgets: dict[str, int] | None = None):
        self.table = table
        self.per_second = per_second
        self.budgets = dict(budgets or {})

    def budget(self, api: str) -> int:
        return self.budgets.get(api, self.per_second)

    def acquire(self, corp_id: str, api: str, now: float) -> float:
        window = int(now)
        try:
            self.table.update(
                keys.rate_window(corp_id, api, window),
                expression="ADD #n :one SET #ttl = :ttl",
                condition="attribute_not_exists(#n) OR #n < :budget",
                names={"#n": "n", "#ttl": "expires_at"},
                values={":one": 1, ":budget": self.budget(api), ":ttl": window + WINDOW_TTL_SECONDS},
            )
        except ConditionFailed:
            return max(0.001, window + 1 - now)
        return 0.0
