"""store.rate_limits.DynamoRateLimiter: a lease in flight for one API must not hold back another
API's calls (each API has its own WeCom budget): a rotation's update_join_way must not wait behind
a burst's groupchat/get leases (docs/performance.md, "Group-code rotation")."""

from __future__ import annotations

import threading


class BlockingTable:
    """A table whose UpdateItem for `blocked_api`'s window waits until released."""

    def __init__(self, blocked_api: str) -> None:
        self.blocked_api = blocked_api
        self.entered = threading.Event()
        self.release = threading.Event()

    def update(self, key: dict[str, str], **_: object) -> None:
        if self.blocked_api in str(key):
            self.entered.set()
            assert self.release.wait(30), "never released"


def test_a_lease_in_flight_for_one_api_does_not_block_another_apis_permit():
    from chalicelib.store.rate_limits import DynamoRateLimiter

    table = BlockingTable("groupchat/get")
    limiter = DynamoRateLimiter(table)  # type: ignore[arg-type]
    reader = threading.Thread(target=limiter.acquire, args=("corp", "externalcontact/groupchat/get", 100.5))
    reader.start()
    try:
        assert table.entered.wait(30)
        done = threading.Event()
        pusher = threading.Thread(target=lambda: limiter.acquire("corp", "externalcontact/groupchat/update_join_way",
                                                                 100.5) == 0.0 and done.set())
        pusher.start()
        # Not a timing assumption: with one lock for every API the pusher waits until the release below.
        assert done.wait(30), "update_join_way's permit waited for groupchat/get's lease"
    finally:
        table.release.set()
        reader.join()
        pusher.join()
