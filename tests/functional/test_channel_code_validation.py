"""Channel-code bodies are validated strictly and completely before anything happens: an invalid
schedule, validity window or loosely typed value is a 400 naming the field, with no WeCom call
and nothing written."""

from __future__ import annotations

import time

import pytest

from tests.functional.test_acquisition import WELCOME
from tests.helpers import CORP_ID

LATER = 2_000_000_000  # 2033: a valid_until in the future
RULE = {"staff_ids": ["alice"], "weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}

# (overrides of a valid body, the field the error must name)
INVALID = [
    ({"schedule": [{**RULE, "weekdays": [8, 0]}]}, "schedule.0.weekdays.0"),
    ({"schedule": [{**RULE, "weekdays": [1, 1]}]}, "schedule.0.weekdays"),
    ({"schedule": [{**RULE, "weekdays": []}]}, "schedule.0.weekdays"),
    ({"schedule": [{**RULE, "weekdays": [True]}]}, "schedule.0.weekdays.0"),
    ({"schedule": [{**RULE, "weekdays": ["1"]}]}, "schedule.0.weekdays.0"),
    ({"schedule": [{**RULE, "staff_ids": []}]}, "schedule.0.staff_ids"),
    ({"schedule": [{**RULE, "staff_ids": ["alice", "alice"]}]}, "schedule.0.staff_ids"),
    ({"schedule": [{**RULE, "start": "24:00"}]}, "schedule.0.start"),
    ({"schedule": [{**RULE, "start": "9:00"}]}, "schedule.0.start"),
    ({"schedule": [{**RULE, "end": "18:60"}]}, "schedule.0.end"),
    ({"schedule": [{**RULE, "start": "10:00", "end": "09:00"}]}, "schedule.0.end"),
    ({"schedule": [{**RULE, "start": "10:00", "end": "10:00"}]}, "schedule.0.end"),
    ({"schedule": [{**RULE, "weekday": [1]}]}, "schedule.0.weekday"),  # a typo is not "every day"
    ({"valid_until": 1000}, "valid_until"),  # in the past
    ({"valid_from": -5}, "valid_from"),
    ({"valid_until": 99999999999999999999999}, "valid_until"),
    ({"valid_until": 10**10}, "valid_until"),
    ({"valid_until": LATER * 1000}, "valid_until"),  # milliseconds
    ({"valid_from": LATER, "valid_until": LATER - 1}, "valid_until"),
    ({"valid_from": LATER, "valid_until": LATER}, "valid_until"),
    ({"valid_until": str(LATER)}, "valid_until"),
    ({"valid_until": LATER + 0.5}, "valid_until"),  # a fraction (LATER.0 is JSON Schema's integer: taken)
    ({"daily_cap": True}, "daily_cap"),
    ({"daily_cap": "5"}, "daily_cap"),
    ({"daily_cap": 0}, "daily_cap"),
    ({"skip_verify": "yes"}, "skip_verify"),
    ({"skip_verify": 1}, "skip_verify"),
    ({"staff_ids": "alice"}, "staff_ids"),
    ({"name": 5}, "name"),
    ({"welcome": {"text": 5}}, "welcome.text"),
]
PATCH_ONLY = [
    ({"valid_from": LATER + 100}, "valid_until"),  # now after the code's valid_until
    ({"valid_until": None, "bogus": 1}, "bogus"),
]


def _wecom_calls(world) -> int:
    return len(world.sb.requests())


def _raw(state: str) -> dict | None:
    """The code's item in the table, reservations included."""
    from chalicelib.store import get_table, keys

    return get_table().get(keys.channel_code(CORP_ID, state))



@pytest.mark.parametrize("state", ["-", "_x", "-store", "a" * 31, "store 7"])
def test_a_state_that_is_not_an_id_is_refused(world, state):
    """'-' is the stats' and the customer filter's 'no channel code': no code may be called that."""
    status, resp = world.call("POST", "/api/v1/channel-codes", {"name": "x", "state": state, "staff_ids": ["alice"]})
    assert (status, resp["error"]["code"]) == (400, "validation_error") and "state" in _fields(resp)

def _fields(body: dict) -> set[str]:
    return {d["field"] for d in body["error"]["details"]}


@pytest.mark.parametrize(("overrides", "field"), INVALID, ids=[f"{f}={o}"[:60] for o, f in INVALID])
def test_invalid_create_is_400_naming_the_field_and_touches_nothing(world, overrides, field):
    body = {"name": "bad", "state": "bad-code", "staff_ids": ["alice"], **overrides}
    before = _wecom_calls(world)
    status, resp = world.call("POST", "/api/v1/channel-codes", body)
    assert (status, resp["error"]["code"]) == (400, "validation_error"), resp
    assert field in _fields(resp), resp
    assert _wecom_calls(world) == before
    assert _raw("bad-code") is None  # not even a reservation of the state
    assert world.call("GET", "/api/v1/channel-codes")[1]["items"] == []


@pytest.mark.parametrize(("overrides", "field"), INVALID + PATCH_ONLY,
                         ids=[f"{f}={o}"[:60] for o, f in INVALID + PATCH_ONLY])
def test_invalid_patch_is_400_naming_the_field_and_touches_nothing(world, overrides, field):
    status, code = world.call("POST", "/api/v1/channel-codes", {
        "name": "good", "state": "good-code", "staff_ids": ["alice"], "valid_until": LATER})
    assert status == 201, code
    stored, before = _raw("good-code"), _wecom_calls(world)
    status, resp = world.call("PATCH", "/api/v1/channel-codes/good-code", overrides)
    assert (status, resp["error"]["code"]) == (400, "validation_error"), resp
    assert field in _fields(resp), resp
    assert _wecom_calls(world) == before
    assert _raw("good-code") == stored


def test_valid_bodies_of_each_kind_still_pass(world):
    now = int(time.time())
    tag_ids = world.tag("source", "poster")
    status, code = world.call("POST", "/api/v1/channel-codes", {
        "name": "Store 7 shifts", "state": "shifts", "store": "store-7", "channel": "poster",
        "staff_ids": ["alice", "bob"], "backup_staff_ids": ["carol"], "tag_ids": tag_ids,
        "schedule": [RULE, {"staff_ids": ["bob"], "weekdays": [7, 6], "start": "00:00", "end": "24:00"}],
        "daily_cap": 50, "skip_verify": False, "welcome": WELCOME, "valid_from": 0, "valid_until": LATER})
    assert status == 201, code
    assert (code["schedule"][1]["weekdays"], code["daily_cap"], code["skip_verify"]) == ([7, 6], 50, False)
    assert code["welcome"] == {**WELCOME, "attachments": [{**WELCOME["attachments"][0], "picurl": None,
                                                              "desc": None}]}
    assert (code["valid_from"], code["valid_until"]) == (0, LATER)

    status, minimal = world.call("POST", "/api/v1/channel-codes", {"name": "plain", "staff_ids": ["alice"]})
    assert status == 201, minimal
    assert (minimal["skip_verify"], minimal["daily_cap"], minimal["valid_until"]) == (True, None, None)

    for patch in ({"daily_cap": 1}, {"skip_verify": True}, {"schedule": [{"staff_ids": ["carol"]}]},
                  {"schedule": []}, {"valid_from": now - 60, "valid_until": now + 3600}, {"valid_until": None},
                  {"valid_from": None}, {"daily_cap": None},
                  {"welcome": {"text": "New {customer_name}", "attachments": []}},
                  {"tag_ids": [], "staff_ids": ["bob"], "backup_staff_ids": []}):
        status, updated = world.call("PATCH", "/api/v1/channel-codes/shifts", patch)
        assert status == 200, (patch, updated)
        assert {k: updated[k] for k in patch} == {
            k: ([{"weekdays": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00", **r} for r in v]
                if k == "schedule" else v) for k, v in patch.items()}, patch


def test_an_expired_code_can_be_edited_but_not_given_a_past_end(world):
    """valid_until must be in the future when it is set, not on every later edit of the code."""
    from chalicelib.channel_codes import service as channel_codes

    status, code = world.call("POST", "/api/v1/channel-codes", {
        "name": "spring", "state": "spring", "staff_ids": ["alice"], "backup_staff_ids": ["bob"],
        "valid_until": LATER})
    assert status == 201, code
    expired = LATER + 100
    renamed = channel_codes.update(CORP_ID, "spring", channel_codes.ChannelCodeUpdate(name="spring (over)"),
                                   now=expired)
    assert (renamed.name, renamed.valid_until) == ("spring (over)", LATER)
    same = channel_codes.update(CORP_ID, "spring", channel_codes.ChannelCodeUpdate(valid_until=LATER), now=expired)
    assert same.valid_until == LATER
    with pytest.raises(channel_codes.InvalidUpdate) as refused:
        channel_codes.update(CORP_ID, "spring", channel_codes.ChannelCodeUpdate(valid_until=LATER + 50),
                             now=expired)
    assert [e["loc"] for e in refused.value.error.errors()] == [("valid_until",)]
    extended = channel_codes.update(CORP_ID, "spring", channel_codes.ChannelCodeUpdate(valid_until=expired + 3600),
                                    now=expired)
    assert extended.valid_until == expired + 3600


def test_integers_written_with_a_zero_fraction_are_taken_as_integers(world):
    """JSON Schema's `integer` (the OpenAPI document's) includes 2000000000.0 and 5.0."""
    status, code = world.call("POST", "/api/v1/channel-codes", {
        "name": "floats", "staff_ids": ["alice"], "valid_until": float(LATER), "daily_cap": 5.0,
        "schedule": [{**RULE, "weekdays": [1.0, 2]}]})
    assert status == 201, code
    assert (code["valid_until"], code["daily_cap"], code["schedule"][0]["weekdays"]) == (LATER, 5, [1, 2])
