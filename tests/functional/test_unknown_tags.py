"""Unknown tag ids are refused (400 `unknown_tags`) at the request's field that lists them, whatever the
request: `details` is [{field, message}] as for a schema refusal (the console shows it at the input
whose path it names), the message lists the unknown ids, and nothing is created or changed."""

from __future__ import annotations

from tests.functional.test_acquisition import _code
from tests.helpers import CORP_ID, drain_queue


def _refused(answer: tuple[int, dict]) -> dict[str, str]:
    """The refusal's {field: message}, after checking it is a 400 unknown_tags."""
    status, body = answer
    assert (status, body["error"]["code"]) == (400, "unknown_tags"), body
    return {d["field"]: d["message"] for d in body["error"]["details"]}


def _items(prefix: str | tuple[str, ...]) -> list[dict]:
    from chalicelib.store import get_table, keys

    return [i for i in get_table().query_all(keys.corp_partition(CORP_ID)) if i["SK"].startswith(prefix)]


def test_a_channel_code_names_its_tag_ids(world):
    [vip] = world.tag("level", "VIP")
    before = len(world.sb.requests("externalcontact/add_contact_way"))
    details = _refused(_code(world, tag_ids=[vip, "etNope", "etGone"]))
    assert list(details) == ["tag_ids"]
    assert "etNope, etGone" in details["tag_ids"] and vip not in details["tag_ids"]
    assert len(world.sb.requests("externalcontact/add_contact_way")) == before
    status, page = world.call("GET", "/api/v1/channel-codes")
    assert (status, page["items"]) == (200, [])
    ok, code = _code(world, tag_ids=[vip], state="poster-2")
    assert ok == 201, code
    details = _refused(world.call("PATCH", f"/api/v1/channel-codes/{code['state']}", {"tag_ids": [vip, "etNope"]}))
    assert list(details) == ["tag_ids"] and "etNope" in details["tag_ids"]
    assert world.call("GET", f"/api/v1/channel-codes/{code['state']}")[1]["tag_ids"] == [vip]


def test_a_segment_filter_names_each_nested_tag_that_is_unknown(world):
    [vip] = world.tag("level", "VIP")
    expr = {"and": [{"tag": vip}, {"or": [{"tag": vip}, {"tag": "etNope"}]}, {"not": {"tag": "etGone"}}]}
    for path, body in (("/api/v1/segments", {"name": "s", "filter": {"tags": expr}}),
                       ("/api/v1/segments/preview", {"filter": {"tags": expr}})):
        details = _refused(world.call("POST", path, body))
        assert sorted(details) == ["filter.tags.and.1.or.1.tag", "filter.tags.and.2.not.tag"], (path, details)
        assert "etNope" in details["filter.tags.and.1.or.1.tag"] and "etGone" in details["filter.tags.and.2.not.tag"]
    assert _items("SEG") == []


def test_a_broadcast_names_the_tags_of_its_filter_its_segment_and_its_moments(world):
    [vip] = world.tag("level", "VIP")
    gone = world.tag("old", "discontinued")[0]
    status, seg = world.call("POST", "/api/v1/segments", {"name": "s", "filter": {"tags": {"tag": gone}}})
    assert status == 201, seg
    assert world.call("DELETE", f"/api/v1/tags/{gone}")[0] in (200, 204)
    cases = [
        ({"kind": "customers", "filter": {"tags": {"or": [{"tag": vip}, {"tag": "etNope"}]}}},
         "target.customers.filter.tags.or.1.tag"),
        ({"kind": "customers", "segment_id": seg["segment_id"]}, "target.customers.segment_id"),
        ({"kind": "moments", "tag_ids": [vip, "etNope"]}, "target.moments.tag_ids"),
    ]
    for target, field in cases:
        details = _refused(world.call("POST", "/api/v1/broadcasts", {"name": "b", "target": target,
                                                                      "content": {"text": "hi"}}))
        assert list(details) == [field], details
        assert (gone if "segment_id" in target else "etNope") in details[field] and vip not in details[field]
    assert _items(("BCAST", "CAP#")) == [] and drain_queue(world.settings.sends_queue) == []


def test_an_sop_rule_names_its_segment_whose_tag_is_gone(world):
    gone = world.tag("old", "discontinued")[0]
    status, seg = world.call("POST", "/api/v1/segments", {"name": "s", "filter": {"tags": {"tag": gone}}})
    assert status == 201, seg
    assert world.call("DELETE", f"/api/v1/tags/{gone}")[0] in (200, 204)
    rule = {"when": {"kind": "weekly", "weekday": 1, "time": "09:00"},
            "whom": {"kind": "customers", "segment_id": seg["segment_id"]}, "content": {"text": "hi"}}
    details = _refused(world.call("POST", "/api/v1/sop-calendars", {"name": "c", "rules": [rule, rule | {
        "name": "second"}]}))
    assert list(details) == ["rules.0.whom.customers.segment_id"], details
    assert _items("SOP") == []


def test_customer_tag_edits_name_add_or_remove(world):
    [vip] = world.tag("level", "VIP")
    details = _refused(world.call("POST", "/api/v1/customers/wmA/tags",
                                  {"staff_id": "alice", "add": [vip, "etNope"], "remove": ["etGone"]}))
    assert details.keys() == {"add", "remove"} and "etNope" in details["add"] and "etGone" in details["remove"]
    details = _refused(world.call("POST", "/api/v1/customers/tags", {"changes": [
        {"customer_id": "wmA", "staff_id": "alice", "add": [vip]},
        {"customer_id": "wmB", "staff_id": "alice", "remove": ["etNope"]}]}))
    assert list(details) == ["changes.1.remove"], details
    assert world.sb.requests("externalcontact/mark_tag") == []
