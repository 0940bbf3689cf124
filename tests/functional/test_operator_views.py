"""What operators see (issue #9, item 7): names beside ids in customer lists, the staff directory,
recent sync jobs, tag changes on the timeline, why dead letters failed, WeCom's errcode and errmsg
on bulk tagging, 404s that say what was not found, and plain explanations of WeCom's errcodes."""

from __future__ import annotations

import json

import pytest

from tests.functional.test_acquisition import _code
from tests.helpers import ADMIN, CORP_ID


def _customer(world, name: str, *, tag_ids: list[str] | None = None, state: str | None = None) -> str:
    overrides = {"state": state} if state else {}
    status, code = _code(world, tag_ids=tag_ids or [], **overrides)
    assert status == 201, code
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=name)["external_userid"]
    world.pump()
    return customer


def _timeline(world, customer: str, kind: str = "tags_changed") -> list[dict]:
    status, body = world.call("GET", f"/api/v1/customers/{customer}")
    assert status == 200, body
    return [e for e in body["timeline"] if e["kind"] == kind]


# -- (a) names beside ids ---------------------------------------------------------------------------
def test_customer_list_and_detail_carry_customer_staff_and_tag_names(world):
    vip, = world.tag("level", "vip")
    ann = _customer(world, "Ann", tag_ids=[vip], state="poster-a")
    bea = _customer(world, "Bea", state="poster-b")

    status, page = world.call("GET", "/api/v1/customers")
    assert status == 200, page
    rows = {r["customer_id"]: r for r in page["items"]}
    assert rows[ann]["customer_name"] == "Ann" and rows[bea]["customer_name"] == "Bea"
    assert rows[ann]["staff_name"] == "Alice"
    assert rows[ann]["tags"] == [vip]  # kept for existing clients
    assert rows[ann]["tag_details"] == [{"tag_id": vip, "name": "vip"}]
    assert rows[bea]["tag_details"] == []

    status, detail = world.call("GET", f"/api/v1/customers/{ann}")
    assert status == 200, detail
    assert detail["relations"][0]["customer_name"] == "Ann" and detail["relations"][0]["staff_name"] == "Alice"
    assert detail["tag_details"] == [{"tag_id": vip, "name": "vip"}]


def test_a_page_of_customers_reads_names_in_batches_not_per_row(world):
    from chalicelib.store import get_table

    for name in ("Ann", "Bea", "Cid", "Dot"):
        _customer(world, name, state=f"p-{name.lower()}")
    world.call("GET", "/api/v1/customers")  # the staff directory and tag library are read once
    table = get_table()
    calls: list[str] = []
    for method in ("get_item", "batch_get_item", "query"):
        original = getattr(table.client, method)

        def counted(*args, _original=original, _name=method, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(table.client, method, counted)
    try:
        status, page = world.call("GET", "/api/v1/customers")
    finally:
        for method in ("get_item", "batch_get_item", "query"):
            table.client.__dict__.pop(method, None)
    assert status == 200 and {r["customer_name"] for r in page["items"]} == {"Ann", "Bea", "Cid", "Dot"}
    assert calls.count("batch_get_item") <= 1 and calls.count("get_item") <= 2, calls  # API key, directory


# -- (b) the staff directory ------------------------------------------------------------------------
def test_staff_directory_lists_the_corps_staff_with_names_paginated(world):
    status, page = world.call("GET", "/api/v1/staff")
    assert status == 200, page
    assert [(s["staff_id"], s["name"]) for s in page["items"]] == [("alice", "Alice"), ("bob", "Bob"),
                                                                   ("carol", "Carol")]
    assert page["next_cursor"] is None

    status, first = world.call("GET", "/api/v1/staff?limit=2")
    assert [s["staff_id"] for s in first["items"]] == ["alice", "bob"] and first["next_cursor"]
    status, rest = world.call("GET", f"/api/v1/staff?limit=2&cursor={first['next_cursor']}")
    assert [s["staff_id"] for s in rest["items"]] == ["carol"] and rest["next_cursor"] is None
    status, body = world.call("GET", "/api/v1/staff?limit=0")
    assert (status, body["error"]["code"]) == (400, "validation_error")


def test_a_name_wecom_refuses_is_null_and_not_asked_again_one_it_could_not_give_is(world):
    from chalicelib.corps import registry, staff

    tries = registry.wecom_client(CORP_ID).max_retries + 1
    world.sb.faults.add("errcode", path="user/get", errcode=60011, count=1)  # alice: outside the app's range
    world.sb.faults.add("http", path="user/get", status=503, count=tries)  # bob: WeCom unavailable, carol waits
    status, page = world.call("GET", "/api/v1/staff")
    assert status == 200, page
    assert [(s["staff_id"], s["name"]) for s in page["items"]] == [("alice", None), ("bob", None), ("carol", None)]

    staff.read(CORP_ID, refresh=True)
    _, page = world.call("GET", "/api/v1/staff")
    assert [(s["staff_id"], s["name"]) for s in page["items"]] == [("alice", None), ("bob", "Bob"), ("carol", "Carol")]
    assert len(world.sb.requests("user/get")) == 1 + tries + 2  # alice was not asked again


# -- (c) recent sync jobs ---------------------------------------------------------------------------
def test_customer_syncs_lists_recent_jobs_newest_first(world):
    status, first = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202, first
    assert world.call("DELETE", f"/api/v1/customer-syncs/{first['job_id']}")[0] == 200
    status, second = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202, second

    status, page = world.call("GET", "/api/v1/customer-syncs")
    assert status == 200, page
    assert [j["job_id"] for j in page["items"]] == [second["job_id"], first["job_id"]]
    assert page["items"][1]["error"]["code"] == "cancelled"
    assert all("staff" not in j["state"] for j in page["items"])

    status, one = world.call("GET", "/api/v1/customer-syncs?limit=1")
    assert [j["job_id"] for j in one["items"]] == [second["job_id"]] and one["next_cursor"]
    status, rest = world.call("GET", f"/api/v1/customer-syncs?limit=1&cursor={one['next_cursor']}")
    assert [j["job_id"] for j in rest["items"]] == [first["job_id"]]


# -- (d) tag changes on the timeline ----------------------------------------------------------------
def test_tag_changes_from_a_channel_code_the_api_and_the_client_reach_the_timeline_once(world):
    vip, gold = world.tag("level", "vip", "gold")
    customer = _customer(world, "Ann", tag_ids=[vip], state="t-code")
    world.replay(times=2)  # WeCom's retries of the add
    world.pump()

    def changes() -> dict[str, list[dict]]:
        by_source: dict[str, list[dict]] = {}
        for e in _timeline(world, customer):
            by_source.setdefault(e["details"].pop("source"), []).append(e)
        return by_source

    assert [e["details"] for e in changes()["channel_code"]] == [{"added": [vip], "state": "t-code"}]

    change = {"staff_id": "alice", "add": [gold]}
    for _ in range(2):  # a retried request changes nothing more
        status, body = world.call("POST", f"/api/v1/customers/{customer}/tags", change)
        assert status == 200 and body["status"] == "done", body
    by_api = changes()["api"]
    assert [(e["details"], e["staff_id"]) for e in by_api] == [({"added": [gold]}, "alice")]

    world.sb.simulator.staff_edits_customer(CORP_ID, "alice", customer, remove_tag=[vip])
    world.replay(times=2)
    world.pump()
    found = changes()
    assert {k: len(v) for k, v in found.items()} == {"channel_code": 1, "api": 1, "staff": 1}, found
    assert found["staff"][0]["details"] == {"removed": [vip]}
    _, detail = world.call("GET", f"/api/v1/customers/{customer}")
    assert detail["tags"] == [gold]


# -- (e) dead letters -------------------------------------------------------------------------------
def test_dead_letters_show_why_and_when_they_failed(world):
    from chalicelib.platform import aws as clients
    from chalicelib.platform import queues

    sqs = clients.client("sqs")
    dlq = queues.queue_url(queues.dlq_name(world.settings.events_queue))
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"poison": 1}), MessageAttributes={
        "reason": {"DataType": "String", "StringValue": "unknown corp wwGone"}})
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"poison": 2}))  # by redrive policy: no reason

    resp = world.client.http.get("/api/v1/dead-letters/events", headers=ADMIN)
    assert resp.status_code == 200, resp.body
    messages = {m["body"]["poison"]: m for m in json.loads(resp.body)["messages"]}
    assert messages[1]["reason"] == "unknown corp wwGone"
    assert messages[1]["attributes"] == {"reason": "unknown corp wwGone"}
    assert messages[2]["reason"] is None and messages[2]["attributes"] == {}
    for m in messages.values():
        assert m["receive_count"] >= 1 and m["first_received_at"] > 1_600_000_000 and m["sent_at"] > 1_600_000_000


# -- (f) bulk tagging reports WeCom's answer --------------------------------------------------------
def test_bulk_tagging_failures_carry_wecoms_errcode_and_errmsg(world):
    vip, = world.tag("level", "vip")
    customer = _customer(world, "Ann")
    world.sb.faults.add("errcode", path="externalcontact/mark_tag", errcode=60020, count=1)

    change = {"customer_id": customer, "staff_id": "alice", "add": [vip]}
    status, body = world.call("POST", "/api/v1/customers/tags", {"changes": [change]})
    assert status == 200, body
    result, = body["results"]
    assert result["status"] == "failed" and result["error"] == "wecom_error"
    assert result["errcode"] == 60020 and result["errmsg"]
    assert "IP" in result["explanation"]
    assert "Error" not in json.dumps(result)  # no exception class names


# -- (g) 404s say what was not found ----------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "message"), [
    ("GET", "/api/v1/customers/wm123", "customer wm123 not found"),
    ("GET", "/api/v1/channel-codes/s1", "channel code s1 not found"),
    ("PATCH", "/api/v1/tags/et1", "tag et1 not found"),
    ("DELETE", "/api/v1/tags/et1", "tag et1 not found"),
    ("GET", "/api/v1/customer-syncs/job9", "sync job job9 not found"),
    ("DELETE", "/api/v1/customer-syncs/job9", "sync job job9 not found"),
    ("POST", "/api/v1/customers/wm123/tags", "customer wm123 not found"),
    ("GET", f"/api/v1/corps/{CORP_ID}x", f"corp {CORP_ID}x not found"),
])
def test_404s_say_what_was_not_found(world, method, path, message):
    vip, = world.tag("level", "vip")
    body = {"PATCH": {"name": "x"}, "POST": {"staff_id": "alice", "add": [vip]}}.get(method)
    status, answer = world.call(method, path, body)
    assert (status, answer["error"]["code"], answer["error"]["message"]) == (404, "not_found", message)


# -- (h) WeCom's errcodes explained -----------------------------------------------------------------
@pytest.mark.parametrize(("errcode", "words"), [
    (41054, "not activated"),
    (60020, "trusted IP"),
    (40003, "member"),
    (84061, "relation"),
])
def test_wecom_errcodes_in_api_errors_carry_a_plain_explanation(world, errcode, words):
    world.sb.faults.add("errcode", path="externalcontact/add_contact_way", errcode=errcode, count=1)
    status, body = world.call("POST", "/api/v1/channel-codes", {"name": "Probe", "staff_ids": ["alice"]})
    assert status in (400, 502) and body["error"]["code"] == "wecom_error", body
    details = body["error"]["details"]
    assert details["errcode"] == errcode and details["errmsg"]
    assert words in details["explanation"], details
    assert details["explanation"] in body["error"]["message"]
