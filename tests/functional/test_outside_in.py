"""Group codes, broadcasts and SOP calendars probed from outside in, as a new operator or an attacker
would use them (README and the OpenAPI document only): each refusal is a clear 4xx naming its field,
before WeCom is touched and with nothing stored."""

from __future__ import annotations

import pytest

from tests.functional.test_group_codes import CODES, groups

WELCOME_API = "externalcontact/group_welcome_template"


def _code_calls(world) -> list[str]:
    return [r["api"] for r in world.sb.requests() if r["api"].startswith((WELCOME_API, "externalcontact/groupchat/"
                                                                                      "add_join_way"))]


@pytest.mark.parametrize("welcome, field", [
    ({"image": {}}, "image"),  # neither media_id nor pic_url: WeCom's 44004
    ({"image": {"picurl": "https://x/p.png"}}, "image.picurl"),  # a typo of pic_url, silently dropped
    ({"image": {"pic_url": "ftp://x/p.png"}}, "image.pic_url"),
    ({"link": {"title": "", "url": "https://x"}}, "link.title"),
    ({"link": {"title": "t", "url": "not a url"}}, "link.url"),
    ({"miniprogram": {"title": "t", "pic_media_id": "", "appid": "wx1", "page": "p"}}, "miniprogram.pic_media_id"),
    ({"file": {"media_id": ""}}, "file.media_id"),
    ({"text": {"content": "hi", "contnet": "typo"}}, "text.contnet"),
])
def test_a_group_welcome_wecom_cannot_take_is_refused_at_its_field_before_wecom_is_touched(world, welcome, field):
    """README: a welcome over WeCom's limits is 400 `validation_error`, refused before WeCom is
    touched; on create and on PUT /welcome alike, with nothing stored."""
    pool = groups(world, 2)
    status, code = world.call("POST", CODES, {"name": "Store", "pool": pool, "threshold": 5})
    assert status == 201, code
    before = _code_calls(world)
    status, answer = world.call("POST", CODES, {"name": "Other", "pool": pool, "threshold": 5, "welcome": welcome})
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert [d["field"] for d in answer["error"]["details"]] == [f"welcome.{field}"], answer
    status, answer = world.call("PUT", f"{CODES}/{code['code_id']}/welcome", welcome)
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert [d["field"] for d in answer["error"]["details"]] == [field], answer
    assert _code_calls(world) == before
    status, listed = world.call("GET", CODES)
    assert [(c["code_id"], c["welcome"]) for c in listed["items"]] == [(code["code_id"], None)]


def test_a_pool_of_made_up_group_ids_reads_wecom_a_few_times_not_once_per_id(world):
    """An unknown id is looked up in WeCom (a group whose callback has not arrived yet is real), but
    a pool of ~1,000 made-up ids must not cost ~1,000 groupchat/get calls (WeCom's quota, and a request
    that outlasts API Gateway's 29 s answers 504, not the 400 it is): the lookups stop at the first
    few unknown ones, which the 400 names."""
    pool = groups(world, 2)
    reads = lambda: len(world.sb.requests(api="externalcontact/groupchat/get"))  # noqa: E731
    made_up = [f"wrMadeUp{i:04d}" for i in range(998)]
    status, code = world.call("POST", CODES, {"name": "Store", "pool": pool, "threshold": 5})
    assert status == 201, code
    for method, path, body in (("POST", CODES, {"name": "S", "threshold": 5, "pool": [*pool, *made_up]}),
                               ("POST", CODES, {"name": "S", "threshold": 5, "pool": pool,
                                                "windows": [{"pool": made_up}]}),
                               ("PATCH", f"{CODES}/{code['code_id']}", {"pool": [*pool, *made_up]})):
        before = reads()
        status, answer = world.call(method, path, body)
        assert (status, answer["error"]["code"]) == (400, "invalid_group_code"), answer
        named = answer["error"]["details"]["chat_ids"]
        assert named and set(named) <= set(made_up) and len(named) <= 10, answer
        assert reads() - before <= 10
    assert world.call("GET", f"{CODES}/{code['code_id']}")[1]["pool"] == pool
    assert [c["code_id"] for c in world.call("GET", CODES)[1]["items"]] == [code["code_id"]]


def test_numbers_given_as_strings_or_booleans_are_refused_at_their_field_with_nothing_stored(world):
    """The OpenAPI document says `integer`: `"5"` and `true` are not (as for channel and group codes).
    Taken loosely, `"weekday": true` made a Monday rule and `"per_customer_per_day": true` a cap of 1."""
    import time

    from tests.helpers import drain_queue

    groups_ = {"kind": "groups", "owner_ids": ["alice"]}
    weekly = {"kind": "weekly", "weekday": 1, "time": "09:00"}
    after = {"kind": "after", "event": "group_created", "days": 1, "time": "09:00"}

    def calendar(when=weekly, **extra):
        return {"name": "c", "rules": [{"when": when, "whom": groups_, "content": {"text": "hi"}}], **extra}

    status, cal = world.call("POST", "/api/v1/sop-calendars", calendar())
    assert status == 201, cal
    later = int(time.time()) + 3600
    cases = [
        ("POST", "/api/v1/sop-calendars", calendar({**weekly, "weekday": True}), "rules.0.when.weekly.weekday"),
        ("POST", "/api/v1/sop-calendars", calendar({**weekly, "weekday": "2"}), "rules.0.when.weekly.weekday"),
        ("POST", "/api/v1/sop-calendars", calendar({**after, "days": "1"}), "rules.0.when.after.days"),
        ("POST", "/api/v1/sop-calendars", calendar(grace_minutes="5"), "grace_minutes"),
        ("PATCH", f"/api/v1/sop-calendars/{cal['calendar_id']}", {"grace_minutes": True}, "grace_minutes"),
        ("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": True}, "per_customer_per_day"),
        ("PUT", "/api/v1/broadcast-policy", {"remind_after_minutes": "30"}, "remind_after_minutes"),
        ("POST", "/api/v1/broadcasts", {"name": "b", "target": groups_, "content": {"text": "hi"},
                                        "send_at": str(later)}, "send_at"),
        ("POST", "/api/v1/broadcasts", {"name": "b", "target": groups_, "content": {"text": "hi"},
                                        "send_at": True}, "send_at"),
        ("POST", "/api/v1/segments", {"name": "s", "filter": {"added_from": True}}, "filter.added_from"),
    ]
    for method, path, body, field in cases:
        status, answer = world.call(method, path, body)
        assert (status, answer["error"]["code"]) == (400, "validation_error"), (path, body, answer)
        assert answer["error"]["details"] and all(d["field"].startswith(field) for d in answer["error"]["details"]), (
            path, body, answer)
    assert [c["calendar_id"] for c in world.call("GET", "/api/v1/sop-calendars")[1]["items"]] == [cal["calendar_id"]]
    assert world.call("GET", f"/api/v1/sop-calendars/{cal['calendar_id']}")[1]["grace_minutes"] == 120
    assert world.call("GET", "/api/v1/broadcast-policy")[1] == {"per_customer_per_day": 1, "remind_after_minutes": 60}
    assert world.call("GET", "/api/v1/broadcasts")[1]["items"] == []
    assert world.call("GET", "/api/v1/segments")[1]["items"] == []
    assert drain_queue(world.settings.sends_queue) == []
    # whole numbers JSON writes as 5.0 are numbers still
    status, answer = world.call("PUT", "/api/v1/broadcast-policy", {"per_customer_per_day": 2.0})
    assert status == 200 and answer["per_customer_per_day"] == 2, answer


@pytest.mark.parametrize("gone", ["segment", "tag"])
def test_a_scheduled_broadcast_whose_segment_or_tag_was_deleted_fails_saying_so_and_sends_nothing(world, monkeypatch,
                                                                                                  gone):
    """Accepted while its segment existed; deleted (or a tag it names deleted) before its time: the
    first plan step failed on every delivery and the tick resumed it every few minutes, `planning`
    for ever. It ends `failed` with `error` naming what is gone; nothing sent, no cap claimed."""
    import time

    from chalicelib.platform import schedules
    from tests.functional.test_broadcasts import (
        ADD_MSG,
        Sends,
        _create,
        _customer,
        _segment,
        _stored_broadcast_items,
        _view,
    )

    sends = Sends(world, monkeypatch)
    masks, gone_tag = world.tag("wants", "masks", "discontinued")
    _customer(world, "Ann", tags=[masks])
    seg = _segment(world, {"tags": {"or": [{"tag": masks}, {"tag": gone_tag}]}})
    send_at = int(time.time()) + 3600
    b = _create(world, seg, send_at=send_at)
    status, _ = world.call("DELETE", f"/api/v1/segments/{seg}" if gone == "segment" else f"/api/v1/tags/{gone_tag}")
    assert status in (200, 204)
    assert schedules.minute(now=send_at)["broadcasts_started"] == 1
    sends.run()  # no message fails
    view = _view(world, b["broadcast_id"])
    assert view["status"] == "failed" and (seg if gone == "segment" else gone_tag) in view["error"], view
    assert schedules.minute(now=send_at + 3600)["broadcasts_resumed"] == 0 and sends.run() == 0
    assert world.sb.requests(api=ADD_MSG) == []
    assert not [i for i in _stored_broadcast_items() if i["SK"].startswith("CAP#")]


def test_the_same_rule_twice_under_two_names_is_refused_as_given_twice(world):
    """README: 400 for a rule given twice. A rule's `name` is its label: two rules that differ only
    by it would send the same content to the same people at the same time, twice (groups have no
    daily cap). Refused at the second one, nothing stored."""
    rule = {"when": {"kind": "weekly", "weekday": 1, "time": "09:00"}, "whom": {"kind": "groups", "owner_ids": [
        "alice"]}, "content": {"text": "hi"}}
    for rules in ([{**rule, "name": "Monday post"}, {**rule, "name": "Monday post (copy)"}],
                  [rule, {**rule, "name": "Monday post"}]):
        status, answer = world.call("POST", "/api/v1/sop-calendars", {"name": "c", "rules": rules})
        assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
        assert [d["field"] for d in answer["error"]["details"]] == ["rules.1"], answer
    assert world.call("GET", "/api/v1/sop-calendars")[1]["items"] == []
    status, cal = world.call("POST", "/api/v1/sop-calendars", {"name": "c", "rules": [
        rule, {**rule, "when": {**rule["when"], "weekday": 2}}]})
    assert status == 201, cal
    status, answer = world.call("PATCH", f"/api/v1/sop-calendars/{cal['calendar_id']}", {"rules": [
        rule, {**rule, "name": "again"}]})
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert len(world.call("GET", f"/api/v1/sop-calendars/{cal['calendar_id']}")[1]["rules"]) == 2


def test_a_group_welcome_with_a_channel_code_placeholder_is_refused_not_sent_literally(world):
    """Channel-code welcomes fill in {customer_name} and {staff_name} (README); a group welcome is
    WeCom's template, sent by WeCom as it is: a member would read "{customer_name}". Refused at
    text.content, pointing to WeCom's own %NICKNAME%, before WeCom is touched."""
    pool = groups(world, 2)
    status, code = world.call("POST", CODES, {"name": "Store", "pool": pool, "threshold": 5})
    assert status == 201, code
    before = _code_calls(world)
    welcome = {"text": {"content": "Welcome {customer_name}!"}}
    status, answer = world.call("POST", CODES, {"name": "S", "pool": pool, "threshold": 5, "welcome": welcome})
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert "%NICKNAME%" in answer["error"]["details"][0]["message"], answer
    status, answer = world.call("PUT", f"{CODES}/{code['code_id']}/welcome", welcome)
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert _code_calls(world) == before
    status, ok = world.call("PUT", f"{CODES}/{code['code_id']}/welcome", {"text": {"content": "Welcome %NICKNAME%!"}})
    assert status == 200 and ok["welcome"]["text"]["content"] == "Welcome %NICKNAME%!", ok


def test_a_scheduled_broadcast_to_a_group_code_deleted_before_its_time_fails_and_sends_nothing(world, monkeypatch):
    """A broadcast naming a deleted group code is a 404, and an SOP rule's occurrence fails; but one
    scheduled before the code was deleted went to the deleted code's groups all the same."""
    import time

    from chalicelib.platform import schedules
    from tests.functional.test_broadcasts import ADD_MSG, Sends, _view

    sends = Sends(world, monkeypatch)
    status, code = world.call("POST", CODES, {"name": "Store", "pool": groups(world, 2), "threshold": 5})
    assert status == 201, code
    send_at = int(time.time()) + 3600
    target = {"kind": "groups", "group_code_id": code["code_id"]}
    status, b = world.call("POST", "/api/v1/broadcasts", {"name": "b", "content": {"text": "hi"}, "send_at": send_at,
                                                          "target": target})
    assert status == 201, b
    assert world.call("DELETE", f"{CODES}/{code['code_id']}")[0] == 204
    assert schedules.minute(now=send_at)["broadcasts_started"] == 1
    sends.run()
    view = _view(world, b["broadcast_id"])
    assert view["status"] == "failed" and code["code_id"] in view["error"], view
    assert world.sb.requests(api=ADD_MSG) == []
