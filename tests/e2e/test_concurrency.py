"""Concurrency over the real local stack: many customers scan one channel code at once; every
callback is processed, with no lost and no duplicated effect.

The stack is the one `make run` starts (moto's server, the WeCom sandbox, `chalice local`, one
poller per queue), on free ports. CI-sized: 200 adds from 20 threads, well under a minute on 2
cores; bigger runs and timings belong in bench/welcome_burst.py.

The stack corrects moto's whole-table copy per TransactWriteItems item (infra/moto_fixes.py): with
it the consumer slows down as the test adds rows, for a reason that does not exist in AWS.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from chalicelib.store import counters

CUSTOMERS = 200
THREADS = 20
STAFF = ("alice", "bob", "carol")
WELCOME = {"text": "Hi {customer_name}, welcome to Store 7!"}
NAMELESS_WELCOME = "Hi, welcome to Store 7!"  # the same welcome when the name is not read in time


def _events_queue_empty() -> bool:
    from chalicelib.platform import queues
    from chalicelib.platform.settings import get_settings

    return queues.depth(get_settings().events_queue).empty


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"condition not met in {timeout:.0f} s")


def _demo_corp(stack) -> dict:
    """The sandbox's demo corp, registered on both sides. moto's backends are per process, so an
    earlier stack of this pytest process may have registered it already: then a new key."""
    try:
        return stack.register_demo_corp()  # seeds the (fresh) sandbox first, then POST /corps
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 409:
            raise
    import sandbox

    resp = httpx.post(f"{stack.base_url}/api/v1/corps/{sandbox.DEMO_CORP_ID}/api-keys", timeout=30,
                      headers={"Authorization": f"Bearer {stack.admin_key}"}, json={"label": "concurrency"})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _corp_totals(corp_id: str, days: list[str]) -> dict[str, int]:
    rows = [r for r in counters.read(corp_id, days[0], days[-1]) if r["dimension"] == "corp"]
    return {k: sum(int(r.get(k, 0)) for r in rows) for k in ("adds", "welcomes_sent", "welcomes_missed")}


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo("Asia/Shanghai")).date().isoformat()


def test_200_simultaneous_scans_each_get_exactly_one_welcome_relation_and_count(stack):
    from chalicelib.customers import items as customer_items
    from chalicelib.platform.content import MessageContent

    assert MessageContent.model_validate(WELCOME).render_text(customer_name=None) == NAMELESS_WELCOME
    demo = _demo_corp(stack)
    corp_id = demo["corp_id"]
    http = httpx.Client(base_url=stack.base_url, timeout=30,
                        headers={"Authorization": f"Bearer {demo['api_key']}"})
    resp = http.post("/api/v1/channel-codes", json={
        "name": "Store 7 poster", "channel": "poster", "staff_ids": list(STAFF), "welcome": WELCOME})
    assert resp.status_code == 201, resp.text
    code = resp.json()
    sim = stack.sandbox_app.simulator

    def scan(i: int) -> dict:
        return sim.scan_contact_way(corp_id, code["config_id"], name=f"Customer {i:03d}",
                                    userid=STAFF[i % len(STAFF)])

    started = time.time()
    days = sorted({_day(started), _day(started + 60)})
    before = _corp_totals(corp_id, days)  # an earlier module's stack may have counted adds today
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        scans = list(pool.map(scan, range(CUSTOMERS)))
    # Every add reached the product: WeCom (the sandbox) got a 200 for each callback.
    assert all(cb["delivered"] for s in scans for cb in s["callbacks"]), \
        [s["callbacks"] for s in scans if not all(cb["delivered"] for cb in s["callbacks"])][:3]
    customers = {s["external_userid"]: s for s in scans}
    assert len(customers) == CUSTOMERS and all(s["welcome_code"] for s in scans)

    journal = stack.sandbox_app.journal

    def settled() -> bool:  # every add's welcome is decided (sent or missed) and nothing is queued
        totals = _corp_totals(corp_id, days)
        decided = (totals["welcomes_sent"] - before["welcomes_sent"]) + (
            totals["welcomes_missed"] - before["welcomes_missed"])
        return decided >= CUSTOMERS and _events_queue_empty()

    _wait_for(settled, timeout=max(5.0, 90.0 - (time.time() - started)))

    # Sandbox journal: exactly one welcome per customer, with that customer's own code. The
    # sandbox, like WeCom, refuses a welcome code older than 20 s, so a welcome in the journal is
    # one that made the window; how long inside it is the bench's business, not this test's.
    welcomes = journal.welcomes(corp_id=corp_id)
    per_customer: dict[str, list[dict]] = {}
    for w in welcomes:
        per_customer.setdefault(w["external_userid"], []).append(w)
    # On a machine too busy to keep up, a welcome whose code died first is counted missed (the
    # product's promise: greeted within the code's life, or counted missed; never twice). How
    # many make it under load is bench/welcome_burst.py's business.
    assert set(per_customer) <= set(customers)
    for ext, got in per_customer.items():
        scan_result = customers[ext]
        assert len(got) == 1, (ext, got)
        name = stack.sandbox_app.world.corp(corp_id).customers[ext].name
        # The product's promise (chalicelib/welcome/steps.py, content.render_text): the name when its
        # profile read succeeds with time to spare (> 8 s of the window left), else the same
        # welcome without the name and the gap it leaves. Which one depends on load, not tested.
        assert got[0]["text"] in (f"Hi {name}, welcome to Store 7!", NAMELESS_WELCOME), (ext, got)
        assert got[0]["welcome_code"] == scan_result["welcome_code"]
        assert got[0]["userid"] == scan_result["userid"]

    # Store: one active relation per customer, with the right staff member and channel state.
    for ext, scan_result in customers.items():
        rels = customer_items.relations_of_customer(corp_id, ext)
        assert [(r.staff_id, r.status, r.state) for r in rels] == \
            [(scan_result["userid"], "active", code["state"])], (ext, rels)

    # Counters: the day's adds grew by 200 (each counted once); every welcome is counted once,
    # sent exactly as often as the sandbox saw one, the rest missed.
    after = _corp_totals(corp_id, days)
    added = {k: after[k] - before[k] for k in after}
    assert added == {"adds": CUSTOMERS, "welcomes_sent": len(per_customer),
                     "welcomes_missed": CUSTOMERS - len(per_customer)}, added
