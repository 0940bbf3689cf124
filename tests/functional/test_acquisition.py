"""Acquisition scenarios on the sandbox: channel code -> scan -> callback -> welcome, tags,
relation and counts, with WeCom's rules enforced by the sandbox."""

from __future__ import annotations

import time

from tests.helpers import CORP_ID

WELCOME = {"text": "Hi {customer_name}, welcome to Store 7! Your coupon is below.",
           "attachments": [{"type": "link", "title": "10% off", "url": "https://brand.example/c/7"}]}


def _code(world, **overrides):
    tag_ids = overrides.pop("tag_ids", None)
    body = {"name": "Store 7 poster", "store": "store-7", "channel": "poster", "staff_ids": ["alice"],
            "welcome": WELCOME, "tag_ids": tag_ids or []}
    body.update(overrides)
    return world.call("POST", "/api/v1/channel-codes", body)


def _today():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


def test_scan_gets_one_welcome_with_name_tags_relation_and_counts(world):
    from chalicelib.customers import items as customer_items

    tag_ids = world.tag("source", "poster", "store-7")
    status, code = _code(world, tag_ids=tag_ids)
    assert status == 201, code
    assert code["qr_code"] and code["config_id"] and len(code["state"]) <= 30
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Lily Chen")
    customer = scan["external_userid"]
    world.pump()

    welcomes = world.sb.journal.welcomes(customer)
    assert len(welcomes) == 1
    assert welcomes[0]["text"].startswith("Hi Lily Chen, welcome to Store 7!")
    assert welcomes[0]["attachments"][0]["link"]["url"] == "https://brand.example/c/7"
    marks = world.sb.journal.entries("tag_mark", external_userid=customer)
    assert marks and sorted(marks[0]["add_tag"]) == sorted(tag_ids)

    rel = customer_items.get_relation(CORP_ID, customer, "alice")
    assert rel.status == "active" and rel.state == code["state"] and sorted(rel.tags) == sorted(tag_ids)
    status, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}&by=channel")
    row = next(r for r in stats["rows"] if r["key"] == code["state"])
    assert (row["adds"], row["welcomes_sent"], row["tags_marked"]) == (1, 1, 1)
    # The welcome read the customer from WeCom for {customer_name}: the profile is kept, at once.
    _, detail = world.call("GET", f"/api/v1/customers/{customer}")
    assert detail["profile"]["name"] == "Lily Chen" and detail["profile"]["customer_type"] == 1
    assert len(world.sb.requests("externalcontact/get")) == 1

    # The same callback replayed 3 more times (WeCom retries) changes nothing more.
    world.replay(times=3)
    world.pump()
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 1
    assert len(world.sb.requests("externalcontact/mark_tag")) == 1
    assert len(world.sb.journal.welcomes(customer)) == 1
    status, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}")
    assert stats["total"]["adds"] == 1 and stats["total"]["welcomes_sent"] == 1


def test_welcome_code_past_its_window_is_counted_missed_not_retried(world, monkeypatch):
    from chalicelib.welcome import steps as welcome

    status, code = _code(world)
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Late Larry")
    # The consumer only gets to it 30 s later (a backlog): the code is dead.
    monkeypatch.setattr(welcome, "_now", lambda: time.time() + 30)
    results = world.pump()
    assert all(r == {"batchItemFailures": []} for r in results)
    assert world.sb.journal.welcomes(scan["external_userid"]) == []
    assert world.sb.requests("externalcontact/send_welcome_msg") == []
    status, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}")
    assert stats["total"]["welcomes_missed"] == 1 and stats["total"]["adds"] == 1
    status, detail = world.call("GET", f"/api/v1/customers/{scan['external_userid']}")
    assert any(e["kind"] == "welcome_missed" for e in detail["timeline"])


def test_customer_adding_two_staff_is_one_customer_with_two_relations(world):
    _, code_a = _code(world, name="A", staff_ids=["alice"])
    _, code_b = _code(world, name="B", staff_ids=["bob"])
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code_a["config_id"], name="Mia")
    world.sb.simulator.scan_contact_way(CORP_ID, code_b["config_id"], external_userid=scan["external_userid"])
    world.pump()
    status, detail = world.call("GET", f"/api/v1/customers/{scan['external_userid']}")
    assert status == 200
    assert sorted(r["staff_id"] for r in detail["relations"]) == ["alice", "bob"]
    assert len(world.sb.journal.welcomes(scan["external_userid"])) == 2  # one per staff member's code


def test_lost_and_removed_are_counted_apart(world):
    _, code = _code(world)
    a = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="A")["external_userid"]
    b = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="B")["external_userid"]
    world.sb.simulator.customer_deletes_staff(CORP_ID, a, "alice")
    world.sb.simulator.staff_deletes_customer(CORP_ID, "alice", b)
    world.pump()
    _, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}&by=staff")
    row = next(r for r in stats["rows"] if r["key"] == "alice")
    assert (row["adds"], row["lost"], row["removed"], row["net"]) == (2, 1, 1, 0)
    _, lost = world.call("GET", "/api/v1/customers?status=lost")
    assert [r["customer_id"] for r in lost["items"]] == [a]


def test_invalid_channel_codes_are_refused_and_touch_nothing(world):
    from chalicelib.channel_codes import items as code_items

    before = len(world.sb.requests("externalcontact/add_contact_way"))
    cases = [
        ({"staff_ids": [f"s{i}" for i in range(101)]}, 400, "validation_error"),
        ({"welcome": {"text": "x", "attachments": [{"type": "link", "title": "t", "url": "https://a.b"}] * 10}},
         400, "validation_error"),
        ({"staff_ids": ["nobody"]}, 400, "invalid_channel_code"),
        ({"tag_ids": ["etUnknownTag"]}, 400, "unknown_tags"),
        ({"state": "x" * 31}, 400, "validation_error"),
        ({"welcome": {"text": "x" * 4001}}, 400, "validation_error"),
    ]
    for overrides, status, code in cases:
        got, body = _code(world, **overrides)
        assert (got, body["error"]["code"]) == (status, code), overrides
    ok, first = _code(world, state="spring-poster")
    assert ok == 201
    clash, body = _code(world, state="spring-poster", name="other")
    assert (clash, body["error"]["code"]) == (409, "state_taken")
    assert body["error"]["message"] == "state spring-poster is already used by a channel code or a group code"
    assert len(world.sb.requests("externalcontact/add_contact_way")) == before + 1
    assert code_items.get(CORP_ID, "spring-poster").name == "Store 7 poster"


def test_a_slow_name_lookup_does_not_spend_a_send_on_a_dead_code(world, monkeypatch):
    """The name lookup is skipped without time to spare, and the age is checked again right before
    the send: a code that died meanwhile costs no send_welcome_msg call."""
    from chalicelib.welcome import steps as welcome

    status, code = _code(world)
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Slow Sam")
    clock = {"now": time.time()}
    monkeypatch.setattr(welcome, "_now", lambda: clock["now"])

    def slow_lookup(ctx):  # WeCom answers the name only after 25 s
        clock["now"] += 25
        return "Slow Sam"

    monkeypatch.setattr(welcome, "_customer_name", slow_lookup)
    world.pump()
    assert world.sb.requests("externalcontact/send_welcome_msg") == []
    _, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}")
    assert stats["total"]["welcomes_missed"] == 1

    # With 12 s already gone, the name is not looked up at all; the welcome goes out nameless.
    calls = []
    monkeypatch.setattr(welcome, "_customer_name", lambda ctx: calls.append(ctx) or "X")
    clock["now"] = time.time() + 12
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Quick Quinn")
    world.pump()
    assert calls == []
    assert [w["text"] for w in world.sb.journal.welcomes(scan["external_userid"])] == [
        "Hi, welcome to Store 7! Your coupon is below."]  # no gap where the name was


def test_a_batch_sends_all_its_welcomes_before_any_other_step(world):
    """The welcome is urgent (its code dies in 20 s): in a batch, every message's welcome goes
    out before any message's tags or commit, so the last welcome does not wait for whole events."""
    tag_ids = world.tag("source", "batch")
    _, code = _code(world, tag_ids=tag_ids)
    customers = [world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=f"B{i}")["external_userid"]
                 for i in range(5)]
    world.pump()
    calls = [r["api"].rsplit("/", 1)[-1] for r in world.sb.requests()
             if r["api"].endswith(("send_welcome_msg", "mark_tag"))]
    assert calls == ["send_welcome_msg"] * 5 + ["mark_tag"] * 5
    assert all(len(world.sb.journal.welcomes(c)) == 1 for c in customers)


def test_two_deliveries_at_once_count_one_sent_welcome_whichever_commits(world):
    """A WeCom retry processed at the same time as the original: both try the welcome (WeCom sends
    one and refuses the other, 41051), and whichever commits counts it as sent."""
    from chalicelib.platform import consumer
    from tests.helpers import drain_queue

    _, code = _code(world)
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Twin")["external_userid"]
    world.replay()  # WeCom re-posts the callback: a second message of the same event
    first, second = drain_queue(world.settings.events_queue)
    work_a, work_b = consumer._first_pass(first), consumer._first_pass(second)  # both send at once
    assert consumer._finish(work_b) == "done"  # the delivery that WeCom refused commits first
    assert consumer._finish(work_a) == "duplicate"
    assert len(world.sb.journal.welcomes(customer)) == 1
    _, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}")
    total = stats["total"]
    assert (total["adds"], total["welcomes_sent"], total["welcomes_already_sent"]) == (1, 1, 0)
