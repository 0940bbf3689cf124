"""Welcome templates: what the API accepts can always be sent, with both placeholders filled in;
a welcome that can never be sent is a miss with its reason at once."""

from __future__ import annotations

import pytest

from tests.helpers import CORP_ID

LONGEST_NAME = "\U00020000" * 64  # WeCom's longest name (64 characters, doc 90195), 4 bytes each
AT_THE_LIMIT = "x" * (4000 - len(LONGEST_NAME.encode())) + "{customer_name}"  # 4000 bytes once filled in


def _welcome_entries(world, customer: str) -> list[tuple[str, dict]]:
    _, detail = world.call("GET", f"/api/v1/customers/{customer}")
    return [(e["kind"], e["details"]) for e in detail["timeline"] if e["kind"].startswith("welcome")]


def _code(world, welcome: dict | None, state: str = "poster"):
    return world.call("POST", "/api/v1/channel-codes",
                      {"name": state, "state": state, "staff_ids": ["alice"], "welcome": welcome})


@pytest.mark.parametrize(("text", "unknown"), [
    ("Hi {name}, use {coupon}!", ["{coupon}", "{name}"]),
    ("Hi {customer_name}, {}", ["{}"]),
])
def test_unknown_placeholders_are_refused_with_their_names_and_change_nothing(world, text, unknown):
    status, body = _code(world, {"text": text})
    assert status == 400, body
    assert f"unknown placeholder(s) {', '.join(unknown)}:" in body["error"]["details"][0]["message"]
    assert world.sb.requests("externalcontact/add_contact_way") == []
    assert world.call("GET", "/api/v1/channel-codes")[1]["items"] == []

    status, code = _code(world, {"text": "Hi {customer_name}"})
    assert status == 201, code
    status, body = world.call("PATCH", f"/api/v1/channel-codes/{code['state']}", {"welcome": {"text": text}})
    assert status == 400 and unknown[0] in body["error"]["details"][0]["message"], body
    assert world.call("GET", f"/api/v1/channel-codes/{code['state']}")[1]["welcome"]["text"] == "Hi {customer_name}"

    status, body = world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": text}})
    assert status == 400 and unknown[0] in body["error"]["details"][0]["message"], body
    assert world.call("GET", "/api/v1/welcome/default")[1] == {"welcome": None}


def test_a_template_too_long_once_a_name_fills_it_in_is_refused(world):
    too_long = "x" + AT_THE_LIMIT  # 3,760 bytes as written, 4,001 with the longest name
    assert len(too_long.encode()) < 4000
    status, body = _code(world, {"text": too_long})
    assert status == 400 and "4000 bytes" in body["error"]["details"][0]["message"], body
    status, body = world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": too_long}})
    assert status == 400, body
    status, body = world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "{staff_name}" + too_long}})
    assert status == 400, body


def test_an_accepted_template_at_the_limit_is_sent_to_the_longest_name(world):
    status, code = _code(world, {"text": AT_THE_LIMIT})
    assert status == 201, code
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=LONGEST_NAME)["external_userid"]
    world.pump()
    [sent] = world.sb.journal.welcomes(customer)
    assert len(sent["text"].encode()) == 4000 and sent["text"].endswith(LONGEST_NAME)
    assert _welcome_entries(world, customer) == [("welcome_sent", {})]


def test_staff_name_is_filled_in_from_wecom_once_per_instance(world):
    status, _ = world.call("PUT", "/api/v1/welcome/default",
                           {"welcome": {"text": "Hi {customer_name}, I'm {staff_name}, your advisor."}})
    assert status == 200
    first = world.sb.simulator.add_staff(CORP_ID, "alice", name="Lily")["external_userid"]
    second = world.sb.simulator.add_staff(CORP_ID, "alice", name="Max")["external_userid"]
    world.pump()
    assert [w["text"] for w in world.sb.journal.welcomes(first)] == ["Hi Lily, I'm Alice, your advisor."]
    assert [w["text"] for w in world.sb.journal.welcomes(second)] == ["Hi Max, I'm Alice, your advisor."]
    assert len(world.sb.requests("user/get")) == 1  # cached: the second welcome costs no lookup


def test_a_staff_name_wecom_cannot_give_is_left_out_with_its_gap(world):
    status, _ = world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hi, I'm {staff_name}. Welcome!"}})
    assert status == 200
    world.sb.faults.add(kind="errcode", errcode=-1, path="user/get", count=10)
    customer = world.sb.simulator.add_staff(CORP_ID, "alice", name="Lily")["external_userid"]
    world.pump()
    assert [w["text"] for w in world.sb.journal.welcomes(customer)] == ["Hi, I'm. Welcome!"]


def test_a_stored_welcome_that_can_never_be_sent_is_missed_with_its_reason_at_once(world):
    """Content saved before the render check (written to the table directly here) that a long name
    pushes over WeCom's limit: no retry can send it, so the miss and its reason are recorded now."""
    from chalicelib.corps import items as corp_items

    corp_items.set_default_welcome(CORP_ID, {"text": "x" * 3900 + "{customer_name}", "attachments": []})
    customer = world.sb.simulator.add_staff(CORP_ID, "alice", name=LONGEST_NAME)["external_userid"]
    results = world.pump()
    assert all(r == {"batchItemFailures": []} for r in results), results
    assert world.sb.requests("externalcontact/send_welcome_msg") == []
    [(kind, details)] = _welcome_entries(world, customer)
    assert kind == "welcome_missed" and details["reason"] == "invalid_message" and "4000" in details["error"]


def test_a_message_wecom_refuses_is_missed_with_its_reason_at_once(world):
    world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello!"}})
    world.sb.faults.add(kind="errcode", errcode=40058, path="externalcontact/send_welcome_msg", count=1)
    customer = world.sb.simulator.add_staff(CORP_ID, "alice", name="Lily")["external_userid"]
    results = world.pump()
    assert all(r == {"batchItemFailures": []} for r in results), results
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 1
    assert _welcome_entries(world, customer) == [
        ("welcome_missed", {"reason": "InvalidArgument", "errcode": 40058, "attempts": 1})]
