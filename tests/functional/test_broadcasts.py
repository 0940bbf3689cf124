"""Broadcasts (issue #11 parts 2-4) on the sandbox: a segment's customers planned under the per-customer
daily cap, chunked per sender, sent through the `sends` queue exactly once (redeliveries, a 45009 storm,
a lost WeCom reply), cancelled, scheduled; groups and Moments targets."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.functional.test_acquisition import _code
from tests.helpers import CORP_ID, drain_queue, sqs_event

BROADCASTS = "/api/v1/broadcasts"
ADD_MSG = "externalcontact/add_msg_template"


# -- building customers and segments -------------------------------------------------------------------------------
def _customer(world, name: str, *, staff: str = "alice", tags: list[str] = (), existing: str | None = None) -> str:
    """A customer adds `staff` through a channel code carrying `tags` (again, for `existing`)."""
    state = f"c-{len(world.delivered)}-{staff}"
    status, code = _code(world, tag_ids=list(tags), state=state, staff_ids=[staff])
    assert status == 201, code
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=name,
                                                   external_userid=existing)["external_userid"]
    world.pump()
    return customer


def _segment(world, filter_: dict) -> str:
    status, body = world.call("POST", "/api/v1/segments", {"name": "seg", "filter": filter_})
    assert status == 201, body
    return body["segment_id"]


def _create(world, segment_id: str, text: str = "News from {staff_name}", **extra) -> dict:
    target = {"kind": "customers", "segment_id": segment_id}
    status, body = world.call("POST", BROADCASTS, {"name": "b", "target": target, "content": {"text": text}, **extra})
    assert status == 201, body
    return body


@pytest.fixture
def shop(world):
    """masks / vip tags; ann (alice, masks), bea (alice, masks+vip), cid (alice then bob: masks on both,
    bob newest), dan (bob, masks), eve (alice, masks, then lost), fay (alice, no tag)."""
    masks, vip = world.tag("wants", "masks", "vip")
    world.sb.clock.advance(-100)
    c = {"ann": _customer(world, "Ann", tags=[masks]), "bea": _customer(world, "Bea", tags=[masks, vip])}
    c["cid"] = _customer(world, "Cid", tags=[masks])
    world.sb.clock.advance(50)
    _customer(world, "Cid", staff="bob", tags=[masks], existing=c["cid"])
    c["dan"] = _customer(world, "Dan", staff="bob", tags=[masks])
    c["eve"] = _customer(world, "Eve", tags=[masks])
    c["fay"] = _customer(world, "Fay")
    world.sb.clock.advance(50)
    world.sb.simulator.customer_deletes_staff(CORP_ID, c["eve"], "alice")
    world.pump()
    return world, c, {"masks": masks, "vip": vip}


# -- driving the sends queue as Lambda's event source would -------------------------------------------------------
class Sends:
    """Feeds the sends queue to `on_sends` in batches of 5; moves moto's SQS clock past delays
    (deferred messages) instead of waiting. `seen` keeps every body handled (to redeliver)."""

    def __init__(self, world, monkeypatch):
        import moto.sqs.models as sqs_models

        self.world, self.seen, self.skipped = world, [], 0.0
        real = sqs_models.unix_time_millis
        monkeypatch.setattr(sqs_models, "unix_time_millis", lambda dt=None: real(dt) + self.skipped * 1000)

    def feed(self, bodies: list[str], *, allow_failures: bool = False) -> list[dict]:
        payloads = []
        for i in range(0, len(bodies), 5):
            payload = self.world.client.lambda_.invoke("on_sends", sqs_event(bodies[i:i + 5])).payload
            assert allow_failures or payload == {"batchItemFailures": []}, payload
            payloads.append(payload)
        return payloads

    def run(self, *, max_rounds: int = 200, stop=None, allow_failures: bool = False) -> int:
        from chalicelib.platform import queues

        handled = 0
        for _ in range(max_rounds):
            bodies = drain_queue(self.world.settings.sends_queue)
            if not bodies:
                if queues.depth(self.world.settings.sends_queue).empty:
                    return handled
                self.skipped += queues.MAX_DELAY_SECONDS + 1
                continue
            if stop is not None:
                keep = [b for b in bodies if not stop(json.loads(b))]
                if len(keep) < len(bodies):  # put the others back and stop here
                    for b in bodies:
                        if b not in keep:
                            _requeue(self.world, b)
                    bodies = keep
                    self.seen += bodies
                    self.feed(bodies, allow_failures=allow_failures)
                    return handled + len(bodies)
            self.seen += bodies
            self.feed(bodies, allow_failures=allow_failures)
            handled += len(bodies)
        raise AssertionError("sends queue did not drain")


def _requeue(world, body: str) -> None:
    from chalicelib.platform import aws, queues

    aws.client("sqs").send_message(QueueUrl=queues.queue_url(world.settings.sends_queue), MessageBody=body)


@pytest.fixture
def sends(world, monkeypatch):
    return Sends(world, monkeypatch)


def _mass(world) -> list:
    return list(world.sb.world.corp(CORP_ID).mass_messages.values())


def _confirm_all(world) -> list[dict]:
    for m in _mass(world):
        for userid in m.targets:
            if not m.cancelled and m.task_status.get(userid) != 2:
                world.sb.simulator.confirm_mass_message(CORP_ID, m.msgid, userid)
    return world.sb.journal.entries("mass_message", corp_id=CORP_ID)


def _view(world, broadcast_id: str) -> dict:
    status, body = world.call("GET", f"{BROADCASTS}/{broadcast_id}")
    assert status == 200, body
    return body


def _claims(customer: str) -> dict:
    import time

    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts.service import day_of

    return bitems.claims_of(CORP_ID, day_of(CORP_ID, int(time.time())), customer) or {}


# -- the tests -------------------------------------------------------------------------------------------------------
def test_a_tag_expression_segment_reaches_exactly_its_customers_once_from_the_right_sender(shop, sends):
    world, c, t = shop
    seg = _segment(world, {"tags": {"and": [{"tag": t["masks"]}, {"not": {"tag": t["vip"]}}]}})
    b = _create(world, seg)
    sends.run()
    delivered = _confirm_all(world)
    got = Counter((e["external_userid"], e["userid"]) for e in delivered)
    # cid's newest relation is bob's; eve's only relation is lost; bea is vip; fay has no tag
    assert got == Counter({(c["ann"], "alice"): 1, (c["cid"], "bob"): 1, (c["dan"], "bob"): 1})
    assert {e["text"] for e in delivered} == {"News from Alice", "News from Bob"}
    view = _view(world, b["broadcast_id"])
    assert view["status"] == "sent" and view["progress"] == 1.0
    assert (view["planned"], view["sent"], view["queued"], view["failed"]) == (3, 3, 0, 0)
    assert view["excluded"] == {"capped": 0, "lost_relation": 1, "no_sender": 0, "not_friend": 0, "over_quota": 0}
    assert view["chunks"] == 2  # one WeCom call per sender


def test_naming_several_staff_members_still_sends_from_the_newest_relation(shop, sends):
    world, c, t = shop
    seg = _segment(world, {"staff_ids": ["alice", "bob"], "tags": {"tag": t["masks"]}})
    _create(world, seg)
    sends.run()
    got = Counter((e["external_userid"], e["userid"]) for e in _confirm_all(world))
    assert got == Counter({(c["ann"], "alice"): 1, (c["bea"], "alice"): 1, (c["cid"], "bob"): 1,
                           (c["dan"], "bob"): 1})


@pytest.mark.parametrize("cap", [1, 2])
def test_overlapping_broadcasts_on_one_day_give_each_customer_at_most_the_cap(shop, sends, cap):
    world, c, t = shop
    if cap != 1:
        status, body = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": cap})
        assert status == 200 and body["per_customer_per_day"] == cap, body
    masks = _segment(world, {"tags": {"tag": t["masks"]}})
    everyone = _segment(world, {"statuses": ["active"]})
    ids = [_create(world, seg)["broadcast_id"] for seg in (masks, everyone, masks)]  # planned interleaved
    sends.run()
    per_customer = Counter(e["external_userid"] for e in _confirm_all(world))
    assert max(per_customer.values()) == cap
    assert set(per_customer) == {c[n] for n in ("ann", "bea", "cid", "dan", "fay")}
    for name in ("ann", "bea", "cid", "dan", "fay"):
        assert _claims(c[name])["n"] == per_customer[c[name]] <= cap
    views = [_view(world, i) for i in ids]
    planned = sum(v["planned"] for v in views)
    assert planned == sum(per_customer.values())
    # every matching (customer, broadcast) is either planned or counted once as capped / lost
    matches = 4 + 1 + 5 + 4 + 1  # masks: 4 active + eve lost; everyone: 5 active; masks again
    assert planned + sum(v["excluded"]["capped"] + v["excluded"]["lost_relation"] for v in views) == matches


def test_a_45009_storm_during_fan_out_delays_but_loses_nothing(shop, sends, monkeypatch):
    from chalicelib.broadcasts import planner

    world, c, t = shop
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 1)  # one WeCom call per customer
    seg = _segment(world, {"statuses": ["active"]})
    b = _create(world, seg)
    fault = world.sb.faults.add("errcode", path=ADD_MSG, errcode=45009, rate=0.6, count=None)
    sends.run()
    assert fault.fired > 0
    world.sb.faults.clear()
    got = Counter(e["external_userid"] for e in _confirm_all(world))
    assert got == Counter({c[n]: 1 for n in ("ann", "bea", "cid", "dan", "fay")})
    assert len(_mass(world)) == 5  # one task per chunk: no call repeated after a success
    view = _view(world, b["broadcast_id"])
    assert view["status"] == "sent" and view["sent"] == 5 and view["chunks"] == 5


def test_redelivered_plan_steps_and_chunk_messages_send_nothing_twice(shop, sends, monkeypatch):
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts import planner

    world, c, t = shop
    monkeypatch.setattr(planner, "PAGE", 2)  # several plan steps, each of one page
    monkeypatch.setattr(planner, "STEP_MEMBERS", 2)
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 2)
    # the first plan step dies after writing its parts, before recording itself (a crashed Lambda)
    real, crashed = bitems.record_step, []

    def crash_once(*args, **kwargs):
        if not crashed:
            crashed.append(1)
            raise RuntimeError("Lambda killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(bitems, "record_step", crash_once)
    seg = _segment(world, {"statuses": ["active", "lost"]})
    b = _create(world, seg)
    first = drain_queue(world.settings.sends_queue)
    assert sends.feed(first, allow_failures=True)[0]["batchItemFailures"]  # SQS redelivers it
    sends.feed(first)
    sends.run()
    before = _view(world, b["broadcast_id"])
    sends.feed(list(sends.seen))  # every message again: plan steps, chunking, chunks
    sends.run()
    assert _view(world, b["broadcast_id"]) == before
    got = Counter(e["external_userid"] for e in _confirm_all(world))
    assert got == Counter({c[n]: 1 for n in ("ann", "bea", "cid", "dan", "fay")})
    assert before["planned"] == 5 and before["excluded"]["lost_relation"] == 1 and before["status"] == "sent"
    assert all(_claims(c[n])["n"] == 1 for n in ("ann", "bea", "cid", "dan", "fay"))


def test_a_lost_wecom_reply_sends_nothing_twice(shop, sends):
    world, c, t = shop
    seg = _segment(world, {"statuses": ["active"]})
    b = _create(world, seg)
    world.sb.faults.add("timeout", path=ADD_MSG, execute=True, count=1)  # WeCom did it; we never heard
    sends.run()
    assert len(_mass(world)) == 2  # one task per sender, the lost one found by the lookup
    got = Counter(e["external_userid"] for e in _confirm_all(world))
    assert got == Counter({c[n]: 1 for n in ("ann", "bea", "cid", "dan", "fay")})
    view = _view(world, b["broadcast_id"])
    assert view["status"] == "sent" and view["sent"] == 5


def test_cancel_stops_what_has_not_been_sent_and_recalls_what_was(shop, sends, monkeypatch):
    from chalicelib.broadcasts import planner

    world, c, t = shop
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 1)
    seg = _segment(world, {"statuses": ["active"]})
    b = _create(world, seg)
    sends.run(stop=lambda m: m["kind"] == "send")  # planned and chunked: five chunks queued
    one, *others = drain_queue(world.settings.sends_queue)
    for body in others:
        _requeue(world, body)
    sends.feed([one])  # one chunk reaches WeCom before the cancel
    assert len(_mass(world)) == 1
    status, view = world.call("POST", f"{BROADCASTS}/{b['broadcast_id']}/cancel")
    assert status == 200 and view["status"] == "cancelled", view
    sends.run()
    assert len(_mass(world)) == 1 and _mass(world)[0].cancelled  # recalled: its staff member cannot send it
    assert not _confirm_all(world)
    view = _view(world, b["broadcast_id"])
    assert view["sent"] == 1 and view["queued"] == 0 and view["progress"] == 1.0
    held = [n for n in ("ann", "bea", "cid", "dan", "fay") if _claims(c[n]).get("n")]
    assert len(held) == 1  # the cancelled chunks' claims are given back
    status, again = world.call("POST", f"{BROADCASTS}/{b['broadcast_id']}/cancel")
    assert status == 409 and again["error"]["code"] == "broadcast_finished"


def test_a_scheduled_broadcast_goes_at_its_time_and_not_before(shop, sends):
    import time

    from chalicelib.platform import schedules

    world, c, t = shop
    seg = _segment(world, {"tags": {"tag": t["masks"]}})
    send_at = int(time.time()) + 3600
    b = _create(world, seg, send_at=send_at)
    assert b["status"] == "scheduled"
    assert sends.run() == 0
    assert schedules.minute(now=send_at - 1)["broadcasts_started"] == 0
    assert sends.run() == 0 and _view(world, b["broadcast_id"])["status"] == "scheduled"
    assert schedules.minute(now=send_at)["broadcasts_started"] == 1
    assert schedules.minute(now=send_at + 60)["broadcasts_started"] == 0  # a second tick starts nothing
    sends.run()
    assert _view(world, b["broadcast_id"])["status"] == "sent"
    assert len(_confirm_all(world)) == 4
    later = _create(world, seg, send_at=send_at + 7200)
    status, view = world.call("POST", f"{BROADCASTS}/{later['broadcast_id']}/cancel")
    assert status == 200 and view["status"] == "cancelled"
    assert schedules.minute(now=send_at + 7200)["broadcasts_started"] == 0
    sends.run()  # (a tracking pass of the first)
    assert len(_mass(world)) == 2 and _view(world, later["broadcast_id"])["status"] == "cancelled"
    status, page = world.call("GET", f"{BROADCASTS}?status=sent")
    assert status == 200 and [x["broadcast_id"] for x in page["items"]] == [b["broadcast_id"]]
    status, page = world.call("GET", f"{BROADCASTS}?limit=1")
    assert [x["broadcast_id"] for x in page["items"]] == [later["broadcast_id"]] and page["next_cursor"]


def _stored_broadcast_items() -> list[dict]:
    from chalicelib.store import get_table, keys

    return [i for i in get_table().query_all(keys.corp_partition(CORP_ID))
            if i["SK"].startswith(("BCAST", "CAP#"))]


def test_bad_input_is_refused_with_nothing_stored_or_queued(shop, sends):
    import time

    world, c, t = shop
    seg = _segment(world, {"tags": {"tag": t["masks"]}})
    gone = world.tag("old", "discontinued")[0]
    stale = _segment(world, {"tags": {"tag": gone}})
    status, _ = world.call("DELETE", f"/api/v1/tags/{gone}")
    assert status in (200, 204)
    customers = {"kind": "customers", "segment_id": seg}
    cases = {
        "unknown segment": ({"target": {"kind": "customers", "segment_id": "s-nope"}}, 404, "not_found"),
        "segment naming a deleted tag": ({"target": {"kind": "customers", "segment_id": stale}}, 400, "unknown_tags"),
        "text over 4000 bytes": ({"content": {"text": "字" * 1334}}, 400, "validation_error"),
        "ten attachments": ({"content": {"attachments": [{"type": "image", "media_id": "m"}] * 10}}, 400,
                            "validation_error"),
        "customer name": ({"content": {"text": "Hi {customer_name}"}}, 400, "validation_error"),
        "past send_at": ({"send_at": 1_600_000_000}, 400, "validation_error"),
        "media_id expired by send_at": ({"send_at": int(time.time()) + 4 * 86400, "content": {
            "attachments": [{"type": "image", "media_id": "m"}]}}, 400, "validation_error"),
        "unknown chat ids": ({"target": {"kind": "groups", "chat_ids": ["wrOtherCorpChat"]}}, 400, "unknown_groups"),
        "two ways to name groups": ({"target": {"kind": "groups", "chat_ids": ["x"], "owner_ids": ["alice"]}}, 400,
                                    "validation_error"),
        "unknown owner": ({"target": {"kind": "groups", "owner_ids": ["nobody"]}}, 400, "unknown_staff"),
        "moments sender not in the directory": ({"target": {"kind": "moments", "sender_ids": ["nobody"]}}, 400,
                                                "unknown_staff"),
        "moments unknown tag": ({"target": {"kind": "moments", "tag_ids": ["nope"]}}, 400, "unknown_tags"),
        "moments two links": ({"target": {"kind": "moments"}, "content": {"attachments": [
            {"type": "link", "title": "a", "url": "https://a"}] * 2}}, 400, "validation_error"),
        "unknown field": ({"extra": 1}, 400, "validation_error"),
    }
    for name, (change, code, error) in cases.items():
        body = {"name": "b", "target": customers, "content": {"text": "hello"}, **change}
        status, answer = world.call("POST", BROADCASTS, body)
        assert (status, answer["error"]["code"]) == (code, error), (name, answer)
    assert _stored_broadcast_items() == []
    assert drain_queue(world.settings.sends_queue) == []
    status, answer = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 11})
    assert status == 400
    status, answer = world.call("POST", f"{BROADCASTS}/b-nope/cancel")
    assert status == 404


def test_unknown_staff_and_groups_are_named_at_the_field_that_lists_them(shop, sends):
    """The console shows a 400 at the fields its `details` name ([{field, message}], as for a schema
    refusal): unknown staff members or groups are named at the request's path that lists them, each
    field with the ids it lists that are unknown; the error codes stay unknown_staff / unknown_groups."""
    world, c, t = shop
    cases = [
        ({"kind": "groups", "owner_ids": ["alice", "nobody", "ghost"]}, "unknown_staff", "target.groups.owner_ids"),
        ({"kind": "moments", "sender_ids": ["nobody", "bob", "ghost"]}, "unknown_staff", "target.moments.sender_ids"),
        ({"kind": "groups", "chat_ids": ["nobody", "ghost"]}, "unknown_groups", "target.groups.chat_ids"),
    ]
    for target, code, field in cases:
        status, answer = world.call("POST", BROADCASTS, {"name": "b", "target": target, "content": {"text": "hi"}})
        assert (status, answer["error"]["code"]) == (400, code), answer
        [detail] = answer["error"]["details"]
        assert detail["field"] == field, answer
        assert "nobody, ghost" in detail["message"] and not {"alice", "bob"} & set(detail["message"].split()), answer
    assert _stored_broadcast_items() == [] and drain_queue(world.settings.sends_queue) == []


def test_groups_go_from_their_owners_and_moments_post_once(world, sends):
    owned = {owner: [world.sb.simulator.create_group(CORP_ID, owner, f"{owner}-{i}")["chat_id"] for i in range(2)]
             for owner in ("alice", "bob")}
    world.pump()
    from chalicelib.groups import sync as group_sync
    from tests.functional.test_customer_sync import run_sync

    group_sync.start(CORP_ID)  # the daily group sync reads each group's owner (the create event names none)
    run_sync(world)
    by_owner = {"kind": "groups", "owner_ids": ["alice", "bob"]}
    status, b = world.call("POST", BROADCASTS, {"name": "g", "target": by_owner, "content": {"text": "Group news"}})
    assert status == 201, b
    status, listed = world.call("POST", BROADCASTS, {"name": "g2", "target": {"kind": "groups",
                                                                              "chat_ids": [owned["bob"][0]]},
                                                     "content": {"text": "Just one"}})
    assert status == 201, listed
    late = world.sb.simulator.create_group(CORP_ID, "carol", "late")["chat_id"]  # owner not read yet
    world.pump()
    status, unread = world.call("POST", BROADCASTS, {"name": "g3", "target": {"kind": "groups", "chat_ids": [late]},
                                                     "content": {"text": "Just one"}})
    assert status == 201, unread
    sends.run()
    got = Counter((e["chat_id"], e["userid"], e["text"]) for e in _confirm_all(world))
    expected = Counter({(chat, owner, "Group news"): 1 for owner, chats in owned.items() for chat in chats})
    expected[(owned["bob"][0], "bob", "Just one")] += 1
    expected[(late, "carol", "Just one")] += 1
    assert got == expected
    assert all(m.chat_type == "group" for m in _mass(world))
    assert _view(world, b["broadcast_id"])["planned"] == 4
    status, m = world.call("POST", BROADCASTS, {"name": "m", "target": {"kind": "moments", "sender_ids": ["alice"]},
                                                "content": {"text": "Spring sale"}})
    assert status == 201, m
    sends.run()
    sends.feed([s for s in sends.seen if json.loads(s)["kind"] == "moment"])  # redelivered: not posted again
    posts = world.sb.journal.entries("moment", corp_id=CORP_ID)
    assert [(p["userid"], p["text"]) for p in posts] == [("alice", "Spring sale")]
    assert _view(world, m["broadcast_id"])["status"] == "sent"


def test_chunks_are_the_minimum_wecom_calls():
    from chalicelib.broadcasts import planner
    from chalicelib.broadcasts.items import BroadcastItem, StepItem

    b = BroadcastItem(broadcast_id="b1", name="n", target={"kind": "customers"}, content={}, send_at=0, day="d",
                      cap=1, status="planning", created_at=0, updated_at=0)
    steps = [StepItem(step=s, parts={"a": [1000] * 9 + [999], "b": [7]}) for s in range(3)]
    chunks = planner.cut_chunks(b, steps)
    per_sender = Counter(ch.sender for ch in chunks)
    assert per_sender == {"a": 3, "b": 1}  # ceil(29,997 / 10,000), ceil(21 / 10,000)
    assert all(ch.count <= 10_000 for ch in chunks)
    assert sum(ch.count for ch in chunks) == 3 * 9_999 + 21
    assert sum(s.end - s.start for ch in chunks for s in ch.slices) == sum(ch.count for ch in chunks)


def test_tracking_reads_confirmations_and_results_into_totals_and_recipients_and_reminds(shop, sends):
    import time

    from chalicelib.platform import schedules

    world, c, t = shop
    status, policy = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 2,
                                                                    "remind_after_minutes": 5})
    assert status == 200, policy
    world.sb.world.corp(CORP_ID).settings.mass_message_quota = "day"  # WeCom's own quota: 1 a day
    seg = _segment(world, {"statuses": ["active"]})
    first = _create(world, seg)
    sends.run()
    _confirm_all(world)
    second = _create(world, seg)
    sends.run()
    alice_task = next(m for m in _mass(world) if "alice" in m.targets and m.task_status["alice"] == 0)
    bob_task = next(m for m in _mass(world) if "bob" in m.targets and m.task_status["bob"] == 0)
    world.sb.simulator.confirm_mass_message(CORP_ID, alice_task.msgid, "alice")  # bob has not confirmed
    now = int(time.time())
    for at in (now + 600, now + 1200, now + 3 * 3600, now + 9 * 3600):
        assert schedules.minute(now=at)["failures"] == 0
        sends.run()
    done = _view(world, first["broadcast_id"])
    assert (done["confirmed"], done["delivered"], done["excluded"]["over_quota"]) == (5, 5, 0)
    view = _view(world, second["broadcast_id"])
    alice = {c["ann"], c["bea"], c["fay"]}  # cid's newest relation is bob's
    assert (view["confirmed"], view["delivered"], view["excluded"]["over_quota"]) == (3, 0, 3)
    assert len(bob_task.reminders) == 2  # after 5 minutes, then 8 hours later (not at 3 hours)
    assert not alice_task.reminders
    rows, cursor = [], None
    while True:
        status, page = world.call("GET", f"{BROADCASTS}/{second['broadcast_id']}/recipients?limit=2"
                                         + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        rows += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert {(r["recipient"], r["sender"], r["status"]) for r in rows} == {
        *((x, "alice", "over_quota") for x in alice), (c["cid"], "bob", "sent"), (c["dan"], "bob", "sent")}
    assert len(rows) == 5


def test_another_corps_segment_and_groups_are_refused_with_nothing_stored(world, sends):
    from tests.helpers import AES_KEY, SECRET, TOKEN, register

    other = "wwothercorp000002"
    world.sb.register_corp(other, name="Other", secrets={"contact": SECRET}, callback_token=TOKEN,
                           encoding_aes_key=AES_KEY, callback_url=f"http://product/wecom/{other}/callback",
                           staff=[{"userid": "zoe", "name": "Zoe"}])
    key = register(world.client, other)["api_key"]
    chat = world.sb.simulator.create_group(other, "zoe", "theirs")["chat_id"]
    world.pump()
    theirs = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    assert world.client.http.get(f"/api/v1/groups/{chat}", headers=theirs).status_code == 200  # stored, theirs
    resp = world.client.http.post("/api/v1/segments", headers=theirs,
                                  body=json.dumps({"name": "s", "filter": {"statuses": ["active"]}}))
    assert resp.status_code == 201, resp.body
    segment_id = json.loads(resp.body)["segment_id"]
    for target, (status, code) in (({"kind": "customers", "segment_id": segment_id}, (404, "not_found")),
                                   ({"kind": "groups", "chat_ids": [chat]}, (400, "unknown_groups"))):
        got, body = world.call("POST", BROADCASTS, {"name": "b", "target": target, "content": {"text": "hi"}})
        assert (got, body["error"]["code"]) == (status, code), body
    assert _stored_broadcast_items() == [] and drain_queue(world.settings.sends_queue) == []


def test_a_duplicate_chunk_message_arriving_mid_call_waits_instead_of_calling_again(shop, sends, monkeypatch):
    from chalicelib.broadcasts import planner
    from chalicelib.wecom.client import WeComClient

    world, c, t = shop
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 10)
    b = _create(world, _segment(world, {"tags": {"tag": t["masks"]}, "staff_ids": ["alice"]}))
    sends.run(stop=lambda m: m["kind"] == "send")
    [body] = drain_queue(world.settings.sends_queue)
    duplicate = json.loads(body) | {"token": "another-delivery"}  # e.g. a redelivered chunking step's copy
    real, outcomes = WeComClient.add_msg_template, []

    def duplicate_arrives_mid_call(self, template):
        if not outcomes:
            outcomes.append(sends.feed([json.dumps(duplicate)]))  # while this call is in flight
        return real(self, template)

    monkeypatch.setattr(WeComClient, "add_msg_template", duplicate_arrives_mid_call)
    sends.feed([body])
    sends.run()
    assert len(_mass(world)) == 1  # one task: the duplicate waited, then found the chunk sent
    got = Counter(e["external_userid"] for e in _confirm_all(world))
    assert got == Counter({c[n]: 1 for n in ("ann", "bea", "cid")})  # cid: only alice's relation is named
    assert _view(world, b["broadcast_id"])["status"] == "sent"


def test_a_plan_step_stops_at_its_time_and_the_next_step_goes_on(shop, sends, monkeypatch):
    import itertools
    import time

    from chalicelib.broadcasts import planner, sender

    world, c, t = shop
    monkeypatch.setattr(planner, "PAGE", 1)
    b = _create(world, _segment(world, {"statuses": ["active"]}))
    [body] = drain_queue(world.settings.sends_queue)
    # a batch with too little time left puts the message back untouched
    assert sender.handle_message(body, deadline=time.monotonic()) == "postponed"
    [body] = drain_queue(world.settings.sends_queue)
    ticks = itertools.count()  # one tick per read of the clock: the step's time is up after two pages
    assert planner.run_step(sender.parse(body), until=2, clock=lambda: next(ticks)) == "done"
    [following] = [json.loads(x) for x in drain_queue(world.settings.sends_queue)]
    assert (following["kind"], following["step"]) == ("plan", 1)
    _requeue(world, json.dumps(following))
    sends.run()
    assert Counter(e["external_userid"] for e in _confirm_all(world)) == Counter(
        {c[n]: 1 for n in ("ann", "bea", "cid", "dan", "fay")})
    assert _view(world, b["broadcast_id"])["planned"] == 5


def test_a_plan_whose_message_was_lost_is_resumed_by_the_tick(shop, sends):
    import time

    from chalicelib.platform import schedules

    world, c, t = shop
    b = _create(world, _segment(world, {"statuses": ["active"]}))
    assert len(drain_queue(world.settings.sends_queue)) == 1  # the first plan step's message, lost
    now = int(time.time())
    assert schedules.minute(now=now + 60)["broadcasts_resumed"] == 0  # not stalled yet
    assert schedules.minute(now=now + 301)["broadcasts_resumed"] == 1
    assert schedules.minute(now=now + 302)["broadcasts_resumed"] == 0  # watched again from now on
    sends.run()
    assert _view(world, b["broadcast_id"])["status"] == "sent"
    assert Counter(e["external_userid"] for e in _confirm_all(world)) == Counter(
        {c[n]: 1 for n in ("ann", "bea", "cid", "dan", "fay")})


def test_a_moments_post_whose_answer_was_lost_is_not_posted_again(world, sends):
    world.sb.faults.add("timeout", path="externalcontact/add_moment_task", execute=True, count=1)
    status, m = world.call("POST", BROADCASTS, {"name": "m", "target": {"kind": "moments"},
                                                "content": {"text": "Spring sale"}})
    assert status == 201, m
    sends.run()
    posts = world.sb.journal.entries("moment", corp_id=CORP_ID)
    assert {p["text"] for p in posts} == {"Spring sale"} and len({p["moment_id"] for p in posts}) == 1
    view = _view(world, m["broadcast_id"])
    assert (view["status"], view["error"]) == ("failed", "outcome_unknown")


def test_a_lookup_reads_which_candidates_are_recorded_once(shop, sends, monkeypatch):
    from chalicelib.broadcasts import items as bitems

    world, c, t = shop
    status, _ = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 3})
    assert status == 200
    seg = _segment(world, {"statuses": ["active"]})
    earlier = []
    for _ in range(2):  # two earlier tasks per sender with the same text: candidates of the lookup
        earlier.append(_create(world, seg))
        sends.run()
    real, reads = bitems.others_msgids, []
    monkeypatch.setattr(bitems, "others_msgids", lambda *a: reads.append(a) or real(*a))
    b = _create(world, seg)
    world.sb.faults.add("timeout", path=ADD_MSG, execute=True, count=1)  # a lost reply: one chunk looks up
    sends.run()
    # its sender's three tasks, their claims read together once: the two earlier broadcasts' tasks are theirs
    assert len(reads) == 1 and {x for _, x in reads[0][3]} <= set(c.values())
    assert len(_mass(world)) == 6  # the lost task found (not one of the two recorded ones), not sent again
    assert _view(world, b["broadcast_id"])["sent"] == 5
    chunks = [ch for x in (*earlier, b) for ch in bitems.chunks_of(CORP_ID, x["broadcast_id"])]
    assert sorted(ch.msgid for ch in chunks) == sorted(m.msgid for m in _mass(world))  # each its own task


def test_a_cancelled_broadcast_still_reads_what_its_staff_confirmed_before_the_recall_then_stops(shop, sends,
                                                                                                   monkeypatch):
    import time

    from chalicelib.broadcasts import planner
    from chalicelib.platform import schedules

    world, c, t = shop
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 1)
    b = _create(world, _segment(world, {"statuses": ["active"]}))
    sends.run(stop=lambda m: m["kind"] == "send")
    first, second, *others = drain_queue(world.settings.sends_queue)
    for body in others:
        _requeue(world, body)
    sends.feed([first, second])  # two chunks reach WeCom; one staff member sends theirs before the cancel
    confirmed, pending = _mass(world)
    [(userid, _)] = confirmed.targets.items()
    world.sb.simulator.confirm_mass_message(CORP_ID, confirmed.msgid, userid)
    status, _ = world.call("POST", f"{BROADCASTS}/{b['broadcast_id']}/cancel")
    assert status == 200
    sends.run()
    assert pending.cancelled
    now = int(time.time())
    assert schedules.minute(now=now + 600)["broadcasts_tracked"] == 1
    sends.run()
    view = _view(world, b["broadcast_id"])
    assert (view["status"], view["sent"], view["confirmed"], view["delivered"]) == ("cancelled", 2, 1, 1)
    assert schedules.minute(now=now + 1800)["broadcasts_tracked"] == 0  # nothing more to read: tracking stopped
    assert not pending.reminders
    status, page = world.call("GET", f"{BROADCASTS}/{b['broadcast_id']}/recipients")
    assert Counter(r["status"] for r in page["items"]) == Counter({"delivered": 1, "cancelled": 4})
    # its counters, final once every chunk is settled, are stored by tracking: a listing reads no chunks
    from chalicelib.broadcasts import items as bitems

    real, reads = bitems.chunks_of, []
    monkeypatch.setattr(bitems, "chunks_of", lambda *a, **k: reads.append(a) or real(*a, **k))
    status, listed = world.call("GET", BROADCASTS)
    assert status == 200 and not reads
    [row] = [x for x in listed["items"] if x["broadcast_id"] == b["broadcast_id"]]
    assert (row["sent"], row["chunks_settled"], row["chunks"], row["queued"]) == (2, 5, 5, 0)


def test_a_configuration_error_waits_for_the_operator_then_fails_the_chunk_with_its_errcode(shop, sends,
                                                                                               monkeypatch):
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts import sender

    world, c, t = shop
    monkeypatch.setattr(sender, "CONFIG_DEFERRALS", 3)
    status, _ = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 2})
    assert status == 200
    seg = _segment(world, {"statuses": ["active"]})
    # 48002: add_msg_template not granted to the app; the operator fixes it after four refused calls
    fault = world.sb.faults.add("errcode", path=ADD_MSG, errcode=48002, count=4)
    fixed = _create(world, seg)
    sends.run()
    assert fault.fired == 4
    assert Counter(e["external_userid"] for e in _confirm_all(world)) == Counter(
        {c[n]: 1 for n in ("ann", "bea", "cid", "dan", "fay")})
    assert _view(world, fixed["broadcast_id"])["status"] == "sent"
    world.sb.faults.add("errcode", path=ADD_MSG, errcode=48002, rate=1.0, count=None)  # never fixed
    never = _create(world, seg)
    sends.run()
    view = _view(world, never["broadcast_id"])
    assert (view["status"], view["failed"], view["sent"]) == ("failed", 5, 0)
    chunks = bitems.chunks_of(CORP_ID, never["broadcast_id"])
    assert {(ch.status, ch.errcode, ch.attempts) for ch in chunks} == {("failed", 48002, 4)}
    assert all(_claims(c[n])["n"] == 1 for n in ("ann", "bea", "cid", "dan", "fay"))  # its claims given back



def test_a_full_chunk_whose_recipients_are_all_no_longer_friends_settles(aws):
    """10,000 recipients in one WeCom call, all in WeCom's fail_list. Customer ids are opaque to us;
    at 45 characters the list alone is over DynamoDB's 400 KB item limit (moto enforces it), so the
    chunk item cannot hold it: settling must not depend on it fitting there."""
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts.items import ChunkItem, Slice

    chunk = ChunkItem(broadcast_id="b1", sender="alice", k=0, kind="customers", count=10_000,
                      slices=[Slice(sk=bitems.part_sk("b1", "alice", 0, k), start=0, end=1000) for k in range(10)])
    chunk = bitems.chunk_calling(CORP_ID, chunk, now=1, caller="t")
    fails = [f"wm{i:043d}" for i in range(10_000)]
    assert bitems.settle_chunk(CORP_ID, chunk, status="sent", now=1, msgid="msg1", fail_list=fails)
    stored = bitems.get_chunk(CORP_ID, "b1", "alice", 0)
    assert stored.status == "sent" and stored.fail_count == 10_000
    assert bitems.fail_list(CORP_ID, stored) == fails
    assert bitems.chunks_of(CORP_ID, "b1") == [stored]  # the fail list's pages are not chunks
    counters = bitems.totals([stored])
    assert (counters["chunks_sent"], counters["ex_not_friend"], counters["sent"]) == (1, 10_000, 0)


def test_wecoms_fail_list_is_counted_released_and_listed(shop, sends):
    import time

    from chalicelib.platform import schedules

    world, c, t = shop
    b = _create(world, _segment(world, {"tags": {"tag": t["masks"]}, "staff_ids": ["alice"]}))
    sends.run(stop=lambda m: m["kind"] == "send")
    world.sb.simulator.customer_deletes_staff(CORP_ID, c["bea"], "alice")  # after planning, before the call
    sends.run()
    sends.feed([s for s in sends.seen if json.loads(s)["kind"] == "send"])  # a duplicate: nothing changes
    view = _view(world, b["broadcast_id"])
    assert (view["sent"], view["excluded"]["not_friend"]) == (2, 1)
    assert "n" not in _claims(c["bea"]) or _claims(c["bea"])["n"] == 0  # its claim given back
    _confirm_all(world)
    assert schedules.minute(now=int(time.time()) + 600)["broadcasts_tracked"] == 1
    sends.run()
    status, page = world.call("GET", f"{BROADCASTS}/{b['broadcast_id']}/recipients")
    assert {r["recipient"]: r["status"] for r in page["items"]} == {c["ann"]: "delivered", c["bea"]: "not_friend",
                                                                    c["cid"]: "delivered"}
    assert _view(world, b["broadcast_id"])["confirmed"] == 2


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def test_an_image_by_url_is_uploaded_close_to_sending_once_and_again_before_its_media_id_expires(shop, sends,
                                                                                                 monkeypatch):
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts import planner

    world, c, t = shop
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 1)
    status, _ = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 2})
    assert status == 200
    seg = _segment(world, {"statuses": ["active"]})
    url = world.sb.serve_file("sale.png", PNG)
    status, b = world.call("POST", BROADCASTS, {"name": "b", "target": {"kind": "customers", "segment_id": seg},
                                                "content": {"text": "Sale", "attachments": [
                                                    {"type": "image", "pic_url": url}]}})
    assert status == 201, b
    def uploads() -> int:  # media ids WeCom issued (a call refused for the expired token is not one)
        return sum(r["errcode"] == 0 for r in world.sb.requests(api="media/upload"))

    assert not uploads()  # nothing uploaded at create
    sends.run(stop=lambda m: m["kind"] == "send")
    first, second, *others = drain_queue(world.settings.sends_queue)
    for body in others:
        _requeue(world, body)
    sends.feed([first, second])
    assert uploads() == 1  # one upload for both calls
    # 2.6 days later (our record of the upload, and WeCom's clock): the media_id is about to expire
    stored = bitems.get(CORP_ID, b["broadcast_id"])
    bitems.set_fields(CORP_ID, b["broadcast_id"], uploads={
        u: {**v, "uploaded_at": v["uploaded_at"] - 225_000} for u, v in stored.uploads.items()})
    world.sb.clock.advance(3 * 86400)  # the first media_id has expired in WeCom
    sends.run()
    assert uploads() == 2  # uploaded again, once, for the other three calls
    media = [m.attachments for m in _mass(world)]
    assert len(media) == 5 and all(a == [{"msgtype": "image", "image": {"media_id": a[0]["image"]["media_id"]}}]
                                   for a in media)
    assert len({a[0]["image"]["media_id"] for a in media}) == 2
    view = _view(world, b["broadcast_id"])
    assert (view["status"], view["sent"], view["failed"]) == ("sent", 5, 0)
    # an image that cannot be fetched fails the calls and says why (claims given back)
    status, gone = world.call("POST", BROADCASTS, {"name": "b", "target": {"kind": "customers", "segment_id": seg},
                                                   "content": {"attachments": [
                                                       {"type": "image", "pic_url": url + ".missing"}]}})
    sends.run()
    view = _view(world, gone["broadcast_id"])
    assert (view["status"], view["failed"]) == ("failed", 5) and "HTTP 404" in view["error"]
    assert len(_mass(world)) == 5
    assert all(_claims(c[n])["n"] == 1 for n in ("ann", "bea", "cid", "dan", "fay"))


def test_an_image_server_that_stays_down_fails_the_calls_after_the_retries(shop, sends, monkeypatch):
    from chalicelib.broadcasts import sender

    world, c, t = shop
    monkeypatch.setattr(sender, "MAX_DEFERRALS", 2)
    url = world.sb.serve_file("down.png", PNG, status=503)
    seg = _segment(world, {"statuses": ["active"]})
    status, b = world.call("POST", BROADCASTS, {"name": "b", "target": {"kind": "customers", "segment_id": seg},
                                                "content": {"attachments": [{"type": "image", "pic_url": url}]}})
    assert status == 201, b
    sends.run()  # deferred twice per call, then failed: the broadcast finishes
    assert sum(r["status"] == 503 for r in world.sb.file_requests) == 2 * 3  # two senders, three tries each
    view = _view(world, b["broadcast_id"])
    assert (view["status"], view["failed"]) == ("failed", 5) and "HTTP 503" in view["error"]
    assert not _mass(world) and not any(_claims(c[n]).get("n") for n in ("ann", "bea", "cid", "dan", "fay"))


def test_a_recall_refused_for_configuration_waits_for_the_operator(shop, sends, monkeypatch):
    from chalicelib.broadcasts import planner

    world, c, t = shop
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 1)
    b = _create(world, _segment(world, {"statuses": ["active"]}))
    sends.run(stop=lambda m: m["kind"] == "send")
    one, *others = drain_queue(world.settings.sends_queue)
    for body in others:
        _requeue(world, body)
    sends.feed([one])
    fault = world.sb.faults.add("errcode", path="externalcontact/cancel_groupmsg_send", errcode=48002, count=2)
    status, _ = world.call("POST", f"{BROADCASTS}/{b['broadcast_id']}/cancel")
    assert status == 200
    sends.run()
    assert fault.fired == 2
    [task] = _mass(world)
    assert task.cancelled  # recalled once the operator granted the API: its staff member cannot send it


def test_a_task_found_after_the_cancel_is_recalled_even_when_the_first_recall_is_refused(shop, sends):
    world, c, t = shop
    b = _create(world, _segment(world, {"tags": {"tag": t["masks"]}, "staff_ids": ["alice"]}))
    world.sb.faults.add("timeout", path=ADD_MSG, execute=True, count=1)  # WeCom made the task; we never heard
    sends.run(stop=lambda m: m["kind"] == "send" and m["attempt"] > 0)  # the chunk is `calling`, deferred
    status, _ = world.call("POST", f"{BROADCASTS}/{b['broadcast_id']}/cancel")
    assert status == 200
    fault = world.sb.faults.add("errcode", path="externalcontact/cancel_groupmsg_send", errcode=48002, count=1)
    queued = sorted(drain_queue(world.settings.sends_queue), key=lambda m: json.loads(m)["kind"] != "recall")
    assert [json.loads(m)["kind"] for m in queued] == ["recall", "send"]
    sends.feed(queued)  # the recall finds nothing sent yet; the lookup then finds the task, its recall refused
    sends.run()  # the deferred chunk message: the task is recalled
    assert fault.fired == 1
    [task] = _mass(world)
    assert task.cancelled


@pytest.mark.parametrize("aws_backend", ["fake"])  # bench/fake_aws.py bills writes as DynamoDB on demand does
def test_a_sent_chunks_writes_do_not_grow_with_the_broadcasts_content(aws, aws_backend):
    """One WeCom call's own writes (docs/performance.md "Broadcasts"): the chunk created `calling`
    from its message's definition, then settled; the broadcast's counters are summed from the chunks
    when read. The broadcast item (its content up to ~5 KB) is not rewritten per call: with ~4 KB of
    text they stay at 2 write units (it was 37, then 7 with a counts item, a msgid record and a
    transaction)."""
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts import sender
    from chalicelib.broadcasts.items import BroadcastItem, ChunkItem, Slice
    from chalicelib.platform import aws as aws_clients

    meter = aws_clients.client("dynamodb").meter
    b = BroadcastItem(broadcast_id="b1", name="b", target={"kind": "customers", "segment_id": "s"},
                      content={"text": "x" * 4000}, send_at=1, day="2026-01-01", cap=1, status="sending",
                      created_at=1, updated_at=1, chunked=True, chunks=2, planned=100)
    bitems.put_new(CORP_ID, b)
    chunk = ChunkItem(broadcast_id="b1", sender="alice", k=0, kind="customers", count=50,
                      slices=[Slice(sk=bitems.part_sk("b1", "alice", 0, 0), start=0, end=50)])
    meter.reset()
    calling = bitems.chunk_calling(CORP_ID, chunk, now=1, caller="t")
    assert sender._settled(CORP_ID, b, calling, status="sent", msgid="msg1", fail_list=[]) == "sent"
    assert meter.wcu <= 2, meter.wcu_by
    stored = bitems.get(CORP_ID, "b1", totals=True)
    assert (stored.chunks_settled, stored.chunks_sent, stored.sent, stored.status) == (1, 1, 50, "sending")
    assert bitems.get_chunk(CORP_ID, "b1", "alice", 0).released  # nothing to give back: settled released


def test_a_crash_after_wecom_answered_finds_the_task_again_and_sends_nothing_twice(shop, sends, monkeypatch):
    """The chunk's delivery dies after WeCom answered, before the chunk is settled: the redelivery
    finds it `calling` under its own token and looks the task up instead of calling WeCom again."""
    from chalicelib.store.table import Table

    world, c, t = shop
    b = _create(world, _segment(world, {"statuses": ["active"]}))
    real, crashed = Table.put, []

    def put(self, item, **kwargs):
        if not crashed and "#CHUNK#" in item["SK"] and item.get("status") == "sent":
            crashed.append(1)
            raise RuntimeError("the Lambda died")
        return real(self, item, **kwargs)

    monkeypatch.setattr(Table, "put", put)
    sends.run(allow_failures=True)
    assert crashed and len(_mass(world)) == 2
    sends.feed([s for s in sends.seen if json.loads(s)["kind"] == "send"])  # SQS redelivers
    sends.run()
    assert len(_mass(world)) == 2  # one task per sender: none created twice
    view = _view(world, b["broadcast_id"])
    assert (view["status"], view["sent"]) == ("sent", 5)


@pytest.mark.parametrize("aws_backend", ["fake"])  # bench/fake_aws.py bills writes as DynamoDB on demand does
def test_each_wecom_call_costs_two_writes_the_calling_mark_and_its_outcome(shop, sends, monkeypatch, aws_backend):
    """docs/performance.md "Broadcasts": a call is never made twice nor lost with one durable mark
    before it (the chunk created `calling`) and one after (settled with its outcome); counters are
    summed from the chunks when read, not written per call. The same broadcast sent as 2 calls and as
    5 calls (one customer each): the 3 extra calls cost 3 x 2 write units (WeCom's pacing leases aside)."""
    from chalicelib.broadcasts import planner
    from chalicelib.platform import aws as aws_clients

    world, c, t = shop
    status, _ = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 2})
    assert status == 200
    seg = _segment(world, {"statuses": ["active"]})
    meter = aws_clients.client("dynamodb").meter
    cost = {}
    for limit in (10_000, 1):
        monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", limit)
        calls = len(_mass(world))
        meter.reset()
        b = _create(world, seg, text="x" * 2000)
        sends.run()
        view = _view(world, b["broadcast_id"])
        assert (view["status"], view["sent"], view["chunks"], view["chunks_settled"]) == ("sent", 5, len(
            _mass(world)) - calls, len(_mass(world)) - calls)
        cost[len(_mass(world)) - calls] = meter.wcu - meter.wcu_by["UpdateItem W"]
    assert set(cost) == {2, 5}
    assert (cost[5] - cost[2]) / 3 <= 2, cost


def test_a_crash_after_the_last_chunk_settled_still_finishes_the_broadcast_on_redelivery(shop, sends, monkeypatch):
    """The deliveries die after settling their chunk, before the broadcast is finished: the
    redelivered messages find their chunks settled and finish it (nothing is sent again)."""
    from chalicelib.broadcasts import items as bitems

    world, c, t = shop
    b = _create(world, _segment(world, {"statuses": ["active"]}))
    real = bitems.finish

    def finish(*args, **kwargs):
        raise RuntimeError("the Lambda died")

    monkeypatch.setattr(bitems, "finish", finish)
    sends.run(allow_failures=True)
    assert _view(world, b["broadcast_id"])["status"] == "sending" and len(_mass(world)) == 2
    monkeypatch.setattr(bitems, "finish", real)
    sends.feed([s for s in sends.seen if json.loads(s)["kind"] == "send"])  # SQS redelivers
    sends.run()
    view = _view(world, b["broadcast_id"])
    assert (view["status"], view["sent"], view["chunks_settled"], len(_mass(world))) == ("sent", 5, 2, 2)


def test_moments_images_are_uploaded_for_moments_close_to_posting(world, sends):
    """Real WeCom's add_moment_task takes images as media ids from media/upload_attachment
    (attachment_type 1), not pic_url nor media/upload's ids: the image given by URL is fetched and
    uploaded so just before the post (the sandbox refuses anything else with 40007 / 41006)."""
    url = world.sb.serve_file("sale.png", PNG)
    status, m = world.call("POST", BROADCASTS, {"name": "m", "target": {"kind": "moments", "sender_ids": ["alice"]},
                                                "content": {"text": "Spring sale", "attachments": [
                                                    {"type": "image", "pic_url": url}]}})
    assert status == 201, m
    assert not world.sb.requests(api="media/upload_attachment")  # nothing uploaded at create
    sends.run()
    [upload] = [r for r in world.sb.requests(api="media/upload_attachment") if r["errcode"] == 0]
    assert not world.sb.requests(api="media/upload")
    [post] = world.sb.journal.entries("moment", corp_id=CORP_ID)
    media_id = post["attachments"][0]["image"]["media_id"]
    assert post["attachments"] == [{"msgtype": "image", "image": {"media_id": media_id}}]
    assert world.sb.world.corp(CORP_ID).media[media_id].attachment_type == 1
    assert _view(world, m["broadcast_id"])["status"] == "sent"


def test_a_moments_links_cover_is_uploaded_for_moments_and_posted_as_its_media_id(world, sends):
    """Real WeCom's add_moment_task takes a link as {title, url, media_id}, the cover an image uploaded
    with media/upload_attachment (attachment_type 1): the link's picurl is fetched and uploaded so
    just before the post (the sandbox refuses a link without such a media_id: 41006 / 40007)."""
    url = world.sb.serve_file("cover.png", PNG)
    link = {"type": "link", "title": "Spring sale", "url": "https://shop.example/sale", "picurl": url}
    status, m = world.call("POST", BROADCASTS, {"name": "m", "target": {"kind": "moments", "sender_ids": ["alice"]},
                                                "content": {"text": "Spring sale", "attachments": [link]}})
    assert status == 201, m
    assert not world.sb.requests(api="media/upload_attachment")  # nothing uploaded at create
    sends.run()
    assert _view(world, m["broadcast_id"])["status"] == "sent"
    [post] = world.sb.journal.entries("moment", corp_id=CORP_ID)
    media_id = post["attachments"][0]["link"]["media_id"]
    assert post["attachments"] == [{"msgtype": "link", "link": {"title": "Spring sale", "url": "https://shop.example/sale",
                                                                "media_id": media_id}}]
    media = world.sb.world.corp(CORP_ID).media[media_id]
    assert (media.kind, media.attachment_type) == ("image", 1)


def test_moments_content_that_cannot_be_posted_as_given_is_refused_at_its_field(world, sends):
    """A Moments image by media_id cannot be known to come from media/upload_attachment (the only ids
    add_moment_task takes; media/upload's, which the other content takes, are refused with 40007 when
    posting): refused at create, pic_url is the way. A link needs its cover (picurl: uploaded for
    Moments) and Moments show no link description."""
    moments = {"kind": "moments"}
    link = {"type": "link", "title": "Sale", "url": "https://shop.example/sale"}
    cases = [
        ([{"type": "image", "pic_url": "https://shop.example/a.png"}, {"type": "image", "media_id": "m1"}],
         "content.attachments.1.image.media_id"),
        ([link], "content.attachments.0.link.picurl"),
        ([{**link, "picurl": "https://shop.example/a.png", "desc": "50% off"}], "content.attachments.0.link.desc"),
        # add_moment_task takes a link title of at most 64 bytes (UTF-8): 22 Chinese characters are 66
        ([{**link, "picurl": "https://shop.example/a.png", "title": "春" * 22}], "content.attachments.0.link.title"),
    ]
    for attachments, field in cases:
        status, answer = world.call("POST", BROADCASTS, {"name": "m", "target": moments,
                                                         "content": {"attachments": attachments}})
        assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
        assert [d["field"] for d in answer["error"]["details"]] == [field], answer
    assert _stored_broadcast_items() == [] and drain_queue(world.settings.sends_queue) == []
    status, ok = world.call("POST", BROADCASTS, {"name": "c", "target": {"kind": "groups", "owner_ids": ["alice"]},
                                                 "content": {"attachments": [{"type": "image", "media_id": "m1"},
                                                                             {**link, "desc": "50% off"}]}})
    assert status == 201, ok  # mass messages take both (add_msg_template)
    status, ok = world.call("POST", BROADCASTS, {"name": "c", "target": {"kind": "groups", "owner_ids": ["alice"]},
                                                 "content": {"attachments": [{**link, "title": "春" * 22}]}})
    assert status == 201, ok  # and a link title up to 128 bytes


def test_a_moments_link_title_of_64_bytes_is_posted(world, sends):
    url = world.sb.serve_file("cover.png", PNG)
    title = "春" * 21 + "!"  # 64 bytes
    link = {"type": "link", "title": title, "url": "https://shop.example/sale", "picurl": url}
    status, m = world.call("POST", BROADCASTS, {"name": "m", "target": {"kind": "moments", "sender_ids": ["alice"]},
                                                "content": {"attachments": [link]}})
    assert status == 201, m
    sends.run()
    assert _view(world, m["broadcast_id"])["status"] == "sent"
    [post] = world.sb.journal.entries("moment", corp_id=CORP_ID)
    assert post["attachments"][0]["link"]["title"] == title


def test_a_lost_reply_for_groups_finds_its_own_task_not_an_earlier_broadcasts_to_the_same_groups(world, sends):
    """Groups have no cap claims: two broadcasts with the same text to the same groups are both
    sent; the second's lost reply is looked up, and the first's task (its msgid recorded by its
    groups chunk) is not taken for the second's."""
    chats = [world.sb.simulator.create_group(CORP_ID, "alice", f"alice-{i}")["chat_id"] for i in range(2)]
    world.pump()
    target = {"kind": "groups", "chat_ids": chats}
    first_status, first = world.call("POST", BROADCASTS, {"name": "g", "target": target, "content": {"text": "News"}})
    assert first_status == 201, first
    sends.run()
    world.sb.faults.add("timeout", path=ADD_MSG, execute=True, count=1)  # created, its answer lost
    status, second = world.call("POST", BROADCASTS, {"name": "g", "target": target, "content": {"text": "News"}})
    assert status == 201, second
    sends.run()
    assert len(_mass(world)) == 2  # one task each: the second found again, not created twice
    from chalicelib.broadcasts import items as bitems

    [c1], [c2] = (bitems.chunks_of(CORP_ID, b["broadcast_id"]) for b in (first, second))
    assert c1.msgid != c2.msgid and {c1.msgid, c2.msgid} == {m.msgid for m in _mass(world)}
    assert c2.attempts == 1 and _view(world, second["broadcast_id"])["sent"] == 2


@pytest.mark.parametrize("order", ["in key order", "reversed", "shuffled"])
def test_the_finish_checks_read_each_chunk_a_few_times_not_every_chunk_per_settle(aws, monkeypatch, order):
    """Each settle asks whether it was the broadcast's last (docs/performance.md "Broadcasts"). A
    broadcast of 60 chunks settled one by one: it is finished by its last settle and not before, with
    its totals; the finish checks together read a few chunk items per chunk, not all of them per
    settle (a Query of every chunk item per settle read 60 x 61 / 2 = 1,830)."""
    import random

    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts import planner, sender
    from chalicelib.broadcasts.items import BroadcastItem, StepItem
    from chalicelib.store import get_table, keys

    count = 60
    monkeypatch.setitem(planner.CHUNK_LIMIT, "customers", 1)
    b = BroadcastItem(broadcast_id="b1", name="b", target={"kind": "customers", "segment_id": "s"},
                      content={"text": "hi"}, send_at=1, day="2026-01-01", cap=1, status="sending",
                      created_at=1, updated_at=1, chunked=True, chunks=count, planned=count)
    bitems.put_new(CORP_ID, b)
    chunks = planner.cut_chunks(b, [StepItem(step=0, parts={f"s{i:02d}": [3] for i in range(count // 3)})])
    assert len(chunks) == count
    chunks = {"in key order": chunks, "reversed": chunks[::-1],
              "shuffled": random.Random(7).sample(chunks, count)}[order]
    table, prefix = get_table(), keys.broadcast_chunk_prefix("b1")
    real_query, read = type(table).query, []

    def query(self, partition, **kwargs):
        items, cursor = real_query(self, partition, **kwargs)
        read.extend(i for i in items if i["SK"].startswith(prefix))
        return items, cursor

    monkeypatch.setattr(type(table), "query", query)
    for n, chunk in enumerate(chunks, start=1):
        calling = bitems.chunk_calling(CORP_ID, chunk, now=1, caller="t")
        assert sender._settled(CORP_ID, b, calling, status="sent", msgid=f"m{n}", fail_list=[]) == "sent"
        assert bitems.get(CORP_ID, "b1").status == ("sent" if n == count else "sending"), n
    final = bitems.get(CORP_ID, "b1")
    assert (final.chunks_settled, final.chunks_sent, final.sent) == (count, count, count)
    assert len(read) <= 10 * count, len(read)
