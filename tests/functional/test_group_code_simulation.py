"""The issue's simulator acceptance: customers join through one group code in concurrent waves
(threshold 190, a pool of 8 groups plus auto-create), the consumer running between waves as
Lambda's event source would. The wave is what joins during one rotation latency: the bound on
over-threshold joins per crossing is the wave size minus one (docs/performance.md).

In-process moto copies the whole table on every transaction, so 1,000 joins take minutes here:
the groups start PREFILL seats below the threshold (the crossings are what this tests) and
CUSTOMERS is 60; bench/group_rotation.py runs 1,000 from empty groups through the local stack."""

from __future__ import annotations

import os

from tests.helpers import CORP_ID

CUSTOMERS = int(os.environ.get("GROUP_SIM_CUSTOMERS", "60"))
WAVE = 10
THRESHOLD = 190
SEATS = int(os.environ.get("GROUP_SIM_SEATS", "8"))  # open seats per pooled group at the start


def test_customers_join_through_one_group_code_concurrently(world):
    from chalicelib.store import counters

    sb = world.sb
    prefill = THRESHOLD - SEATS - 1  # customers already in each group, besides its owner
    pool = [sb.simulator.create_group(CORP_ID, "alice", f"store-{i}",
                                      customers=[f"wmpre{i}-{j}" for j in range(prefill)])["chat_id"]
            for i in range(8)]
    world.pump()
    status, code = world.call("POST", "/api/v1/group-codes", {
        "name": "Poster", "pool": pool, "threshold": THRESHOLD, "auto_create": {"room_base_name": "Store "}})
    assert status == 201, code
    updates_before = len(sb.requests(api="externalcontact/groupchat/update_join_way"))
    joined = refused = 0
    for start in range(0, CUSTOMERS, WAVE):
        result = sb.simulator.join_many(CORP_ID, code["config_id"], min(WAVE, CUSTOMERS - start),
                                        concurrency=WAVE, prefix=f"wm{start:05d}-")
        joined, refused = joined + result["joined"], refused + result["refused"]
        world.pump(max_rounds=50)
    assert (joined, refused) == (CUSTOMERS, 0)  # every customer ends in a group
    chats = sb.world.corp(CORP_ID).chats
    sizes = {c: len(chats[c].members) for c in chats}
    assert max(sizes.values()) <= 200
    customers = sum(1 for c in chats.values() for m in c.members.values() if m["type"] == 2)
    assert customers == CUSTOMERS + 8 * prefill
    crossed = [c for c in pool if sizes[c] >= THRESHOLD]
    updates = len(sb.requests(api="externalcontact/groupchat/update_join_way")) - updates_before
    assert len(crossed) >= 6 and updates == len(crossed)  # exactly one join-way update per crossing
    truth_over = sum(max(0, sizes[c] - THRESHOLD) for c in pool)
    rows = [r for r in counters.read(CORP_ID, "2000-01-01", "2999-12-31")
            if r["dimension"] == "group_code" and r["value"] == code["code_id"]]
    counted = sum(int(r.get("over_threshold_joins", 0)) for r in rows)
    assert counted == truth_over <= len(crossed) * (WAVE - 1)
    status, st = world.call("GET", f"/api/v1/group-codes/{code['code_id']}/status")
    assert all(g["member_count"] == sizes[g["chat_id"]] for g in st["listed"] + st["pool"])  # the sandbox's truth
    assert st["synced"] and sorted(sb.world.corp(CORP_ID).join_ways[code["config_id"]]["chat_id_list"]) \
        == sorted(g["chat_id"] for g in st["listed"])
