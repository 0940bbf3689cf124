"""One step of an event failing (WeCom down for that call) must not hold back the others."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import CORP_ID, drain_queue, sqs_event


def test_a_mark_tag_outage_keeps_the_relation_and_retries_only_the_tags(world, monkeypatch):
    from chalicelib.customers import items as customer_items
    from chalicelib.platform import queues

    sent: list[tuple[str, int]] = []
    real_send = queues.send

    def spy(spec, message, *, delay_seconds=0):
        sent.append((message.model_dump_json(), delay_seconds))
        real_send(spec, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", spy)
    tag_ids = world.tag("source", "poster")
    status, code = world.call("POST", "/api/v1/channel-codes", {
        "name": "poster", "state": "poster", "staff_ids": ["alice"], "tag_ids": tag_ids,
        "welcome": {"text": "Hi {customer_name}"}})
    assert status == 201, code
    world.sb.faults.add(kind="http", status=502, path="externalcontact/mark_tag", count=100)
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Outage")["external_userid"]
    result = world.client.lambda_.invoke("on_events", sqs_event(drain_queue(world.settings.events_queue))).payload
    assert result == {"batchItemFailures": []}

    # What did not need mark_tag is recorded now: the relation, the welcome, the counts.
    rel = customer_items.get_relation(CORP_ID, customer, "alice")
    assert rel is not None and rel.status == "active" and rel.tags == []
    assert len(world.sb.journal.welcomes(customer)) == 1
    _, listed = world.call("GET", "/api/v1/customers")
    assert [r["customer_id"] for r in listed["items"]] == [customer]
    # The tags are retried later, with a growing delay while WeCom stays down.
    delays = [d for _, d in sent[1:]]
    assert delays and delays[0] >= 5
    for _ in range(3):
        body = sent[-1][0]
        assert world.client.lambda_.invoke("on_events", sqs_event([body])).payload == {"batchItemFailures": []}
    assert [d for _, d in sent[1:]] == sorted(d for _, d in sent[1:]) and sent[-1][1] > sent[1][1]

    world.sb.faults.clear()
    assert world.client.lambda_.invoke("on_events", sqs_event([sent[-1][0]])).payload == {"batchItemFailures": []}
    assert customer_items.get_relation(CORP_ID, customer, "alice").tags == tag_ids
    assert len(world.sb.journal.welcomes(customer)) == 1
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    _, stats = world.call("GET", f"/api/v1/stats/contacts?from={day}&to={day}&by=day")
    assert stats["total"]["adds"] == 1  # counted once, by the first delivery


@pytest.mark.parametrize("fault", [
    {"kind": "errcode", "errcode": -1},  # WeCom busy
    {"kind": "http", "status": 502},
], ids=["busy", "http-502"])
def test_a_passing_wecom_error_on_the_welcome_is_retried_while_the_code_lives(world, fault):
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(path="externalcontact/send_welcome_msg", count=1, **fault)
    customer = _scan_default(world)
    world.pump()
    assert [w["text"] for w in world.sb.journal.welcomes(customer)] == ["Hello!"]
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 2
    assert _welcome_entries(world, customer) == [("welcome_sent", {"attempts": 2})]


def _fake_clock(monkeypatch) -> list[float]:
    """The welcome's clock and waits on a fake clock: the waits take no time, and move it."""
    from chalicelib.welcome import steps as welcome

    clock = [time.time()]
    monkeypatch.setattr(welcome, "_now", lambda: clock[0])
    monkeypatch.setattr(welcome, "_sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    return clock


def test_a_frequency_limited_welcome_is_retried_while_the_code_lives(world, monkeypatch):
    """WeCom's limits are per minute and the code lives 20 s: a 45009 is tried again at once."""
    _fake_clock(monkeypatch)
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(kind="errcode", errcode=45009, path="externalcontact/send_welcome_msg", count=2)
    customer = _scan_default(world)
    world.pump()
    assert [w["text"] for w in world.sb.journal.welcomes(customer)] == ["Hello!"]
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 3
    assert _welcome_entries(world, customer) == [("welcome_sent", {"attempts": 3})]


def test_a_welcome_frequency_limited_until_the_code_dies_is_missed_with_its_reason(world, monkeypatch):
    from chalicelib.welcome import steps as welcome

    clock = _fake_clock(monkeypatch)
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(kind="errcode", errcode=45009, path="externalcontact/send_welcome_msg", count=1000)
    customer = _scan_default(world)
    [code] = world.sb.world.corp(CORP_ID).welcome_codes.values()
    deadline = int(code.issued_at) + welcome.SEND_DEADLINE_SECONDS  # the event's CreateTime + 19 s
    world.pump()
    assert world.sb.journal.welcomes(customer) == []
    tries = len(world.sb.requests("externalcontact/send_welcome_msg"))
    assert tries > len(welcome.SEND_RETRY_WAITS) + 1  # past the busy retries: as long as the code lives
    assert _welcome_entries(world, customer) == [("welcome_missed", {"reason": "FrequencyLimited", "attempts": tries})]
    # Tried until the next wait would outlive the code, and never past it.
    assert clock[0] <= deadline < clock[0] + welcome.SEND_RETRY_WAITS[-1]


def test_welcome_retries_stop_when_the_batch_needs_its_time_for_the_commits(world, monkeypatch):
    """A Lambda killed at its timeout commits nothing of its batch: retries stay within budget."""
    from chalicelib.platform import consumer

    monkeypatch.setattr(consumer, "BATCH_SECONDS", consumer.SECOND_PASS_RESERVE_SECONDS + 1.0)
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(kind="errcode", errcode=-1, path="externalcontact/send_welcome_msg", count=1)
    customer = _scan_default(world)
    world.pump()
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 1  # no time for a retry
    assert _welcome_entries(world, customer) == [("welcome_missed", {"reason": "SystemBusy", "attempts": 1})]


def test_a_welcome_wecom_keeps_refusing_is_missed_after_bounded_attempts(world, monkeypatch):
    from chalicelib.welcome import steps as welcome

    monkeypatch.setattr(welcome, "SEND_RETRY_WAITS", (0.01, 0.01))
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(kind="errcode", errcode=-1, path="externalcontact/send_welcome_msg", count=100)
    customer = _scan_default(world)
    world.pump()
    assert world.sb.journal.welcomes(customer) == []
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 3
    assert _welcome_entries(world, customer) == [("welcome_missed", {"reason": "SystemBusy", "attempts": 3})]


def _scan_default(world) -> str:
    """A contact through a channel code without a welcome of its own: the default welcome goes."""
    status, code = world.call("POST", "/api/v1/channel-codes",
                              {"name": "plain", "state": "plain", "staff_ids": ["alice"]})
    assert status == 201, code
    return world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Retry")["external_userid"]


def _welcome_entries(world, customer: str) -> list[tuple[str, dict]]:
    _, detail = world.call("GET", f"/api/v1/customers/{customer}")
    return [(e["kind"], e["details"]) for e in detail["timeline"] if e["kind"].startswith("welcome")]


@pytest.mark.parametrize(("first", "counted"), [
    ({"kind": "errcode", "errcode": -1}, "welcome_already_sent"),  # busy: our first attempt did nothing
    ({"kind": "http", "status": 502}, "welcome_sent"),  # 5xx: it may have been ours that went through
], ids=["busy-then-41051", "502-then-41051"])
def test_a_retry_refused_as_already_sent_counts_sent_only_if_ours_may_have_gone(world, first, counted):
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(path="externalcontact/send_welcome_msg", count=1, **first)
    world.sb.faults.add(kind="errcode", errcode=41051, path="externalcontact/send_welcome_msg", count=1)
    customer = _scan_default(world)
    world.pump()
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 2
    assert [kind for kind, _ in _welcome_entries(world, customer)] == [counted]


def test_world_pump_fails_on_a_failed_message_and_redelivers_it_on_request(world, monkeypatch):
    """tests/functional/conftest.py World.pump: a message the consumer reports failed fails the test
    (drained, it would be lost there unnoticed); with redeliver=True it is queued again, as SQS does."""
    from chalicelib.platform import consumer
    from chalicelib.platform.router import ROUTER, Route

    consumer.load_capabilities()
    errors = [RuntimeError("a step failing once")]

    def flaky(ctx):
        if errors:
            raise errors.pop()
        return []

    key = ("change_external_chat", "create")
    monkeypatch.setitem(ROUTER._routes, key, [*ROUTER._routes.get(key, []), Route("tests.flaky", flaky)])
    world.sb.simulator.create_group(CORP_ID, "alice", "g1")
    with pytest.raises(AssertionError, match="failed 1 message"):
        world.pump()
    errors.append(RuntimeError("and again"))
    world.sb.simulator.create_group(CORP_ID, "alice", "g2")
    results = world.pump(redeliver=True)
    assert [len(r["batchItemFailures"]) for r in results] == [1, 0]  # redelivered, then done
