"""Daily caps act on the add that reaches them, not a minute later: the contact way is switched
(to the next staff member, or the backup staff) while the cap-reaching add is processed. What
cannot be stopped is bounded: customers who scanned the QR while it still showed the capped staff
member (their adds in flight) still reach that staff member."""

from __future__ import annotations

from tests.functional.test_acquisition import _code, _today
from tests.helpers import CORP_ID, drain_queue


def _way_users(world, config_id: str) -> list[str]:
    """Who the contact way routes to, as the sandbox (WeCom) holds it."""
    return next(w["user"] for w in world.sb.dump(CORP_ID)["contact_ways"] if w["config_id"] == config_id)


def _updates(world) -> int:
    return len(world.sb.requests("externalcontact/update_contact_way"))


def _scan(world, code: dict, name: str) -> str:
    """A customer scans the code; returns the staff member WeCom connected them to."""
    return world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=name)["userid"]


def _capped_code(world, **overrides) -> dict:
    body = {"staff_ids": ["alice"], "backup_staff_ids": ["carol"], "daily_cap": 2, **overrides}
    status, code = _code(world, **body)
    assert status == 201, code
    return code


def _adds(state: str) -> dict[str, int]:
    from chalicelib.store import counters

    return counters.channel_staff_adds(CORP_ID, _today(), state)


def test_the_add_that_reaches_the_cap_switches_the_contact_way_at_once(world):
    from chalicelib.channel_codes import items as code_items

    code = _capped_code(world)
    assert _scan(world, code, "One") == "alice"
    world.pump()
    assert _way_users(world, code["config_id"]) == ["alice"] and _updates(world) == 0  # below the cap
    assert _scan(world, code, "Two") == "alice"
    world.pump()  # the add that reaches the cap; no minute tick runs here
    assert _way_users(world, code["config_id"]) == ["carol"]
    assert code_items.get(CORP_ID, code["state"]).routed_staff_ids == ["carol"]
    assert _scan(world, code, "Three") == "carol"
    world.pump()
    assert _updates(world) == 1  # carol is backup: her adds switch nothing
    assert _adds(code["state"]) == {"alice": 2, "carol": 1}


def test_a_sequential_burst_gives_each_staff_member_exactly_the_cap_then_the_backup(world):
    from chalicelib.channel_codes import service as channel_codes

    code = _capped_code(world, staff_ids=["alice", "bob"])
    got = []
    for i in range(7):  # each add processed before the next customer scans
        got.append(_scan(world, code, f"B{i}"))
        world.pump()
    assert got == ["alice", "alice", "bob", "bob", "carol", "carol", "carol"]
    assert _updates(world) == 2  # [alice, bob] -> [bob] -> [carol]
    assert channel_codes.tick([CORP_ID]) == {"checked": 1, "changed": 0, "failed": 0}  # nothing left to do


def test_adds_in_flight_when_the_cap_is_reached_are_the_only_overshoot(world):
    code = _capped_code(world)
    # Four customers scan before any add is processed: the QR shows alice to all of them.
    got = [_scan(world, code, f"F{i}") for i in range(4)]
    assert got == ["alice"] * 4  # the overshoot: 2 adds in flight past the cap, beyond our reach
    world.pump()
    assert _way_users(world, code["config_id"]) == ["carol"]
    assert _updates(world) == 1  # one switch, not one per add past the cap
    assert _scan(world, code, "After") == "carol"
    world.pump()
    assert _adds(code["state"]) == {"alice": 4, "carol": 1}


def test_a_replayed_cap_reaching_add_neither_counts_twice_nor_calls_wecom_again(world):
    code = _capped_code(world)
    for name in ("One", "Two"):
        _scan(world, code, name)
        world.pump()
    assert _updates(world) == 1
    world.replay(-1, times=2)  # WeCom retries the cap-reaching callback
    world.pump()
    assert _updates(world) == 1
    assert _adds(code["state"]) == {"alice": 2}


def test_wecom_refusing_the_switch_defers_it_without_counting_the_add_twice(world, monkeypatch):
    from chalicelib.platform import queues
    from tests.helpers import sqs_event

    sent: list[str] = []
    real_send = queues.send

    def spy(spec, message, *, delay_seconds=0):
        sent.append(message.model_dump_json())
        real_send(spec, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", spy)
    code = _capped_code(world)
    _scan(world, code, "One")
    world.pump()
    world.sb.faults.add(kind="errcode", errcode=45009, path="externalcontact/update_contact_way", count=1)
    _scan(world, code, "Two")
    world.pump()
    assert _way_users(world, code["config_id"]) == ["alice"]  # WeCom refused the switch: 45009
    assert _adds(code["state"]) == {"alice": 2}  # the add itself is recorded and counted
    # The delayed copy arrives (here: now) and does only what was left: the switch.
    result = world.client.lambda_.invoke("on_events", sqs_event([sent[-1]])).payload
    assert result == {"batchItemFailures": []}
    assert _way_users(world, code["config_id"]) == ["carol"]
    assert _adds(code["state"]) == {"alice": 2}


def test_concurrent_adds_that_together_reach_the_cap_still_switch(world, monkeypatch):
    """Two adds processed at once on two instances, each committing while the other one runs:
    whichever commits last sees both counted, so the cap is never passed by unnoticed."""
    from chalicelib.platform import consumer
    from chalicelib.store import events as event_store
    from tests.helpers import sqs_event

    code = _capped_code(world)
    _scan(world, code, "A")
    _scan(world, code, "B")
    first, second = drain_queue(world.settings.events_queue)
    real_commit = event_store.commit
    interleaved = []

    def commit(*args, **kwargs):  # instance 1 is about to commit: instance 2 does its whole event
        if not interleaved:
            interleaved.append(True)
            assert consumer.handle_batch([("m2", second)]) == {"batchItemFailures": []}
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(event_store, "commit", commit)
    world.client.lambda_.invoke("on_events", sqs_event([first]))
    assert interleaved
    assert _adds(code["state"]) == {"alice": 2}
    assert _way_users(world, code["config_id"]) == ["carol"]


def test_another_step_waiting_on_wecom_does_not_hold_back_the_switch(world, monkeypatch):
    """mark_tag limited (45009, common in a burst) defers the tags, not the cap: the add is counted
    in the same commit, so the switch happens now; the delayed copy then only tags."""
    from chalicelib.platform import queues
    from tests.helpers import sqs_event

    sent: list[str] = []
    real_send = queues.send

    def spy(spec, message, *, delay_seconds=0):
        sent.append(message.model_dump_json())
        real_send(spec, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", spy)
    code = _capped_code(world, tag_ids=world.tag("source", "capped"))
    _scan(world, code, "One")
    world.pump()
    world.sb.faults.add(kind="errcode", errcode=45009, path="externalcontact/mark_tag", count=1)
    _scan(world, code, "Two")
    world.pump()
    assert _way_users(world, code["config_id"]) == ["carol"]
    assert world.client.lambda_.invoke("on_events", sqs_event([sent[-1]])).payload == {"batchItemFailures": []}
    assert _updates(world) == 1 and len(world.sb.requests("externalcontact/mark_tag")) == 3
    assert _adds(code["state"]) == {"alice": 2}


def test_an_add_through_a_capped_code_costs_two_aws_requests_more(world):
    """The cap check reads the code's counts (a consistent Query) and commits its step (a second
    TransactWriteItems); the code itself is read only when the cap is reached. Codes without a cap
    pay nothing (test_relation_lifecycle: at most four)."""
    from bench import aws_requests
    from chalicelib.platform import caches
    from tests.helpers import sqs_event

    code = _capped_code(world, daily_cap=5)
    aws_requests.install()
    caches.clear_all()
    _scan(world, code, "Warm-up")
    world.pump()
    _scan(world, code, "Counted")
    bodies = drain_queue(world.settings.events_queue)
    try:
        with aws_requests.count_aws_requests() as counted:
            assert world.client.lambda_.invoke("on_events", sqs_event(bodies)).payload == {"batchItemFailures": []}
    finally:
        aws_requests.uninstall()
    # (the rest, WeCom pacing's UpdateItem leases and the welcome claim's PutItem, is as for any add)
    assert counted["dynamodb.GetItem"] == 1, dict(counted)  # the event record: the code is not read
    assert counted["dynamodb.Query"] == 1 and counted["dynamodb.TransactWriteItems"] == 2, dict(counted)
