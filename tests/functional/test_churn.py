"""Churn on the sandbox (issue #13): ended relations listed with what they were; churn alerts off by
default, per event or as digests, exactly once per churn under replays; refused alerts retried, then
recorded; bad settings refused, changing nothing."""

from __future__ import annotations

import time

import pytest

from tests.functional.test_acquisition import _code
from tests.helpers import CORP_ID

BURST = 50
WINDOW_MINUTES = 5


def _agent(world) -> None:
    """The corp's app (agent id), as registered with one (POST /corps agent_id)."""
    from chalicelib.store import get_table, keys

    get_table().update(keys.corp(CORP_ID), expression="SET agent_id = :a",
                       values={":a": world.sb.world.corp(CORP_ID).agent_id})


def _customers(world, staff: str, n: int, prefix: str = "wmCH") -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    for ext in ids:
        world.sb.simulator.add_staff(CORP_ID, staff, external_userid=ext, name=f"N{ext[-3:]}")
    world.pump()
    return ids


def _alerts(world, **match) -> list[dict]:
    return world.sb.journal.entries("app_message", **match)


def _churn(world, query: str = "") -> list[dict]:
    status, page = world.call("GET", f"/api/v1/churn?limit=200{query}")
    assert status == 200, page
    return page["items"]


def test_churn_lists_who_left_whom_with_channel_tags_days_and_welcome(world):
    tag_ids = world.tag("source", "poster")
    code = _code(world, tag_ids=tag_ids)[1]
    scanned = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Lily Chen")["external_userid"]
    [walk_in] = _customers(world, "alice", 1)
    world.sb.simulator.customer_deletes_staff(CORP_ID, scanned, "alice")
    world.sb.simulator.staff_deletes_customer(CORP_ID, "alice", walk_in)
    world.pump()
    items = {c["customer_id"]: c for c in _churn(world)}
    assert {c: i["kind"] for c, i in items.items()} == {scanned: "lost", walk_in: "removed"}
    lost, removed = items[scanned], items[walk_in]
    assert (lost["staff_id"], lost["customer_name"], lost["channel"], lost["tags"]) == (
        "alice", "Lily Chen", code["state"], sorted(tag_ids))
    assert lost["days_since_added"] == 0 and lost["welcome_sent"] is True
    assert lost["alert"] is None  # alerts are off by default
    assert (removed["channel"], removed["tags"], removed["welcome_sent"]) == (None, [], False)
    assert [c["customer_id"] for c in _churn(world, "&kind=removed")] == [walk_in]
    assert [c["customer_id"] for c in _churn(world, f"&channel={code['state']}")] == [scanned]
    assert _churn(world, "&staff_id=bob") == []
    assert _churn(world, "&since=2000-01-01&until=2000-01-02") == []
    assert len(_churn(world, "&since=2000-01-01")) == 2
    status, body = world.call("GET", "/api/v1/churn?since=2020-01-02&until=2020-01-01")
    assert (status, body["error"]["code"]) == (400, "validation_error")
    world.sb.simulator.staff_deletes_customer(CORP_ID, "alice", scanned)  # an ended relation ends again: no churn
    world.pump()
    assert len(_churn(world)) == 2


def test_a_handover_is_not_churn(world):
    ids = _customers(world, "alice", 1)
    status, _ = world.call("POST", "/api/v1/handovers", {"mode": "in_service", "from_staff_id": "alice",
                                                          "takeover_ids": ["bob"], "customer_ids": ids})
    assert status == 202
    from tests.functional.test_customer_sync import run_sync

    run_sync(world)
    world.sb.simulator.complete_transfers(CORP_ID, force=True)
    world.pump()
    assert _churn(world) == []


def test_a_burst_of_deletes_gives_one_digest_per_manager_per_window_and_replays_add_none(world):
    from chalicelib.churn import service as churn

    _agent(world)
    status, body = world.call("PUT", "/api/v1/churn-alerts", {
        "enabled": True, "mode": "digest", "digest_minutes": WINDOW_MINUTES, "notify_staff": False,
        "managers": ["bob", "carol"]})
    assert status == 200, body
    ids = _customers(world, "alice", BURST)
    for ext in ids:
        world.sb.simulator.customer_deletes_staff(CORP_ID, ext, "alice")
    world.pump()
    world.replay(-1, times=3)  # WeCom re-posts callbacks
    world.replay(-BURST, times=2)
    world.pump()
    assert len(_churn(world)) == BURST
    assert world.call("GET", "/api/v1/churn-alerts")[1]["pending"] == BURST
    last = max(c["at"] for c in _churn(world))
    window = WINDOW_MINUTES * 60
    assert churn.flush(CORP_ID, now=last)["messages"] == 0  # the window is still open
    closes = (last // window + 1) * window
    churn.flush(CORP_ID, now=closes)
    churn.flush(CORP_ID, now=closes + 60)  # a second tick in the window sends nothing again
    for manager in ("bob", "carol"):
        [digest] = _alerts(world, userid=manager)
        assert all(f"{ext} -> Alice" in digest["text"] for ext in ids), digest["text"]
    assert _alerts(world, userid="alice") == []
    world.replay(-7, times=2)
    world.pump()
    churn.flush(CORP_ID, now=closes + window)
    assert len(_alerts(world)) == 2
    assert {c["alert"] for c in _churn(world)} == {"sent"}
    assert world.call("GET", "/api/v1/churn-alerts")[1]["pending"] == 0


def test_per_event_alerts_reach_the_member_and_managers_once(world):
    _agent(world)
    settings = {"enabled": True, "mode": "event", "managers": ["carol"]}
    assert world.call("PUT", "/api/v1/churn-alerts", settings)[0] == 200
    ids = _customers(world, "alice", 2)
    world.sb.simulator.customer_deletes_staff(CORP_ID, ids[0], "alice")
    world.pump()
    world.replay(-1, times=2)
    world.pump()
    sent = _alerts(world)
    assert sorted(a["userid"] for a in sent) == ["alice", "carol"]  # one message/send to "alice|carol"
    assert ids[0] in sent[0]["text"] and "Alice" in sent[0]["text"]
    world.sb.simulator.staff_deletes_customer(CORP_ID, "alice", ids[1])  # staff removing: listed, no alert
    world.pump()
    assert len(_alerts(world)) == 2
    assert {c["customer_id"]: c["alert"] for c in _churn(world)} == {ids[0]: "sent", ids[1]: None}


def test_refused_alerts_are_retried_then_recorded(world):
    from chalicelib.churn import service as churn

    _agent(world)
    world.call("PUT", "/api/v1/churn-alerts", {"enabled": True, "mode": "event", "notify_staff": True})
    [ext] = _customers(world, "alice", 1)
    world.sb.faults.add("errcode", path="message/send", errcode=40056, count=churn.MAX_REFUSALS)
    world.sb.simulator.customer_deletes_staff(CORP_ID, ext, "alice")
    world.pump()  # refused once
    [c] = _churn(world)
    assert c["alert"] == "pending"
    # the first try's retry_at counts from when the consumer ran (our clock), not the event's time:
    # on a busy machine that is a second or more after the churn's CreateTime
    now = max(c["at"], int(time.time())) + 1
    for i in range(1, churn.MAX_REFUSALS):
        churn.flush(CORP_ID, now=now + i * churn.RETRY_SECONDS)
    [c] = _churn(world)
    assert c["alert"] == "failed" and c["alert_errcode"] == 40056
    assert len(world.sb.requests("message/send")) == churn.MAX_REFUSALS and _alerts(world) == []
    churn.flush(CORP_ID, now=now + 10 * churn.RETRY_SECONDS)  # recorded: not tried again
    assert len(world.sb.requests("message/send")) == churn.MAX_REFUSALS


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"enabled": True, "notify_staff": False}, 400, "validation_error", "managers"),
    ({"enabled": True, "managers": ["nobody"]}, 400, "unknown_staff", "managers"),
    ({"enabled": True, "managers": ["bob", "bob"]}, 400, "validation_error", "managers"),
    ({"enabled": True, "digest_minutes": 1}, 400, "validation_error", "digest_minutes"),
    ({"enabled": True, "mode": "hourly"}, 400, "validation_error", "mode"),
    ({"mode": "event"}, 400, "validation_error", "enabled"),
    ({"enabled": True, "colour": "red"}, 400, "validation_error", "colour"),
])
def test_bad_alert_settings_are_refused_at_their_field_and_change_nothing(world, body, status, code, field):
    _agent(world)
    got, answer = world.call("PUT", "/api/v1/churn-alerts", body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert {d["field"] for d in answer["error"]["details"]} == {field}, answer
    assert world.call("GET", "/api/v1/churn-alerts")[1]["enabled"] is False


def test_alerts_need_the_corps_agent(world):
    status, answer = world.call("PUT", "/api/v1/churn-alerts", {"enabled": True})
    assert (status, answer["error"]["code"]) == (400, "agent_required")
