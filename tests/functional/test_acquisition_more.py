"""Half adds, routing by schedule / daily cap / backup, code edits, tags, customers lists."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.functional.test_acquisition import WELCOME, _code, _today
from tests.helpers import CORP_ID

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _way(world, config_id: str) -> dict | None:
    """The contact way as the sandbox (WeCom) holds it."""
    return next((w for w in world.sb.dump(CORP_ID)["contact_ways"] if w["config_id"] == config_id), None)


def test_half_add_is_welcomed_at_once_and_tagged_only_when_accepted(world):
    from chalicelib.customers import items as customer_items

    world.sb.update_corp(CORP_ID, settings={"skip_verify_half": True})
    tag_ids = world.tag("source", "half")
    _, code = _code(world, tag_ids=tag_ids)
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Hal")
    world.pump()
    customer = scan["external_userid"]
    assert len(world.sb.journal.welcomes(customer)) == 1
    assert world.sb.requests("externalcontact/mark_tag") == []  # 84061 before acceptance
    assert customer_items.get_relation(CORP_ID, customer, "alice").status == "pending"

    world.sb.simulator.confirm_contact(CORP_ID, "alice", customer)
    world.pump()
    rel = customer_items.get_relation(CORP_ID, customer, "alice")
    assert rel.status == "active" and rel.tags == tag_ids
    assert len(world.sb.journal.welcomes(customer)) == 1  # the code was used by the half add


def test_default_welcome_for_contacts_without_a_channel(world):
    status, body = world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hi"}, "x": 1})
    assert (status, body["error"]["code"]) == (400, "validation_error")  # unknown fields refused, as elsewhere
    status, _ = world.call("PUT", "/api/v1/welcome/default", {"welcome": {"text": "Hello {customer_name}!"}})
    assert status == 200
    add = world.sb.simulator.add_staff(CORP_ID, "bob", name="Walk-in Wu")
    world.pump()
    welcomes = world.sb.journal.welcomes(add["external_userid"])
    assert [w["text"] for w in welcomes] == ["Hello Walk-in Wu!"]


def _at(hour: int, minute: int = 0, *, day: int = 2) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)  # 2026-11-02 is a Monday


def test_desired_staff_follows_schedule_caps_window_and_backup():
    from chalicelib.channel_codes.service import ChannelCodeCreate, desired_staff

    code = ChannelCodeCreate(
        name="shifts", staff_ids=["alice", "bob"], backup_staff_ids=["carol"], daily_cap=2,
        schedule=[{"staff_ids": ["alice"], "weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "13:00"},
                  {"staff_ids": ["bob"], "weekdays": [1, 2, 3, 4, 5], "start": "13:00", "end": "21:00"}])
    assert desired_staff(code, at=_at(10), added_today={}) == ["alice"]
    assert desired_staff(code, at=_at(14), added_today={}) == ["bob"]
    assert desired_staff(code, at=_at(22), added_today={}) == ["carol"]  # off duty
    assert desired_staff(code, at=_at(10, day=7), added_today={}) == ["carol"]  # Saturday
    assert desired_staff(code, at=_at(10), added_today={"alice": 2}) == ["carol"]  # capped
    windowed = code.model_copy(update={"valid_until": int(_at(8).timestamp())})
    assert desired_staff(windowed, at=_at(10), added_today={}) == ["carol"]


def test_tick_reroutes_only_when_routing_changes(world):
    from chalicelib.channel_codes import items as code_items
    from chalicelib.channel_codes import service as channel_codes

    status, code = _code(world, staff_ids=["alice", "bob"], backup_staff_ids=["carol"], daily_cap=1,
                         schedule=[{"staff_ids": ["alice", "bob"], "start": "00:00", "end": "24:00"}])
    assert status == 201, code
    assert code["routed_staff_ids"] == ["alice", "bob"]
    updates = lambda: len(world.sb.requests("externalcontact/update_contact_way"))  # noqa: E731
    assert channel_codes.tick([CORP_ID]) == {"checked": 1, "changed": 0, "failed": 0}
    assert updates() == 0

    # The add reaching alice's cap switches the code itself (tests/functional/test_daily_caps.py);
    # here WeCom refuses that switch once, and the tick is the safety net.
    world.sb.faults.add(kind="errcode", errcode=41001, path="externalcontact/update_contact_way", count=1)
    world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], userid="alice", name="One")
    assert world.pump() == [{"batchItemFailures": []}]  # the add is done all the same, not failed
    assert _way(world, code["config_id"])["user"] == ["alice", "bob"]
    assert channel_codes.tick([CORP_ID]) == {"checked": 1, "changed": 1, "failed": 0}  # alice reached her cap
    assert code_items.get(CORP_ID, code["state"]).routed_staff_ids == ["bob"]
    assert _way(world, code["config_id"])["user"] == ["bob"]
    assert channel_codes.tick([CORP_ID]) == {"checked": 1, "changed": 0, "failed": 0}
    assert updates() == 2  # the refused one, and the tick's


def test_update_and_delete_follow_wecom(world):
    _, code = _code(world)
    status, updated = world.call("PATCH", f"/api/v1/channel-codes/{code['state']}",
                                 {"staff_ids": ["bob"], "welcome": {"text": "New text"}})
    assert status == 200 and updated["routed_staff_ids"] == ["bob"]
    assert _way(world, code["config_id"])["user"] == ["bob"]
    status, _ = world.call("PATCH", f"/api/v1/channel-codes/{code['state']}", {"staff_ids": ["ghost"]})
    assert status == 400
    status, _ = world.call("DELETE", f"/api/v1/channel-codes/{code['state']}")
    assert status == 204
    assert _way(world, code["config_id"]) is None
    assert world.call("GET", f"/api/v1/channel-codes/{code['state']}")[0] == 404
    assert world.call("GET", "/api/v1/channel-codes")[1]["items"] == []


def test_tags_api_mirrors_wecom_and_marks_customers(world):
    from chalicelib.customers import items as customer_items

    vip, regular = world.tag("level", "vip", "regular")
    status, renamed = world.call("PATCH", f"/api/v1/tags/{vip}", {"name": "VIP"})
    assert status == 200 and renamed["name"] == "VIP"
    _, code = _code(world)
    a = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="A")["external_userid"]
    b = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="B")["external_userid"]
    world.pump()
    status, result = world.call("POST", "/api/v1/customers/tags", {"changes": [
        {"customer_id": a, "staff_id": "alice", "add": [vip]},
        {"customer_id": b, "staff_id": "alice", "add": [regular]},
        {"customer_id": "wmNobody", "staff_id": "alice", "add": [regular]},
    ]})
    assert status == 200
    assert [r["status"] for r in result["results"]] == ["done", "done", "no_relation"]
    assert customer_items.get_relation(CORP_ID, a, "alice").tags == [vip]
    _, vips = world.call("GET", f"/api/v1/customers?tag={vip}")
    assert [r["customer_id"] for r in vips["items"]] == [a]
    unknown, body = world.call("POST", "/api/v1/customers/tags", {"changes": [
        {"customer_id": a, "staff_id": "alice", "add": ["etNope"]}]})
    assert unknown == 400 and body["error"]["code"] == "unknown_tags"
    assert world.call("DELETE", f"/api/v1/tags/{regular}")[0] == 204
    _, library = world.call("GET", "/api/v1/tags")
    assert [t["name"] for g in library["groups"] for t in g["tags"]] == ["VIP"]


def test_tag_callbacks_resync_the_library(world):
    # A tag created in WeCom's admin console (not through us) arrives as change_external_tag.
    from chalicelib.corps import registry as corps
    from chalicelib.wecom.models import AddCorpTagRequest

    world.tag("level", "vip")
    corps.wecom_client(CORP_ID).add_corp_tag(AddCorpTagRequest(group_name="console", tag=[{"name": "new"}]))
    xml = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_tag]]></Event><Id><![CDATA[etX]]></Id>"
           "<TagType><![CDATA[tag]]></TagType><ChangeType><![CDATA[create]]></ChangeType></xml>").encode()
    from tests.helpers import encrypted

    query, body = encrypted(xml)
    assert world.client.http.post(f"/wecom/{CORP_ID}/callback?{query}", body=body).status_code == 200
    world.pump()
    _, library = world.call("GET", "/api/v1/tags")
    assert sorted(t["name"] for g in library["groups"] for t in g["tags"]) == ["new", "vip"]


def test_customer_list_filters_and_paginates(world):
    _, poster = _code(world, name="poster", staff_ids=["alice"])
    _, receipt = _code(world, name="receipt", staff_ids=["bob"], welcome=WELCOME)
    ids = [world.sb.simulator.scan_contact_way(CORP_ID, poster["config_id"], name=f"P{i}")["external_userid"]
           for i in range(5)]
    world.sb.simulator.scan_contact_way(CORP_ID, receipt["config_id"], name="R")
    world.pump()
    seen, sizes, cursor = [], [], None
    while True:
        url = f"/api/v1/customers?channel={poster['state']}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = world.call("GET", url)
        assert status == 200
        seen += [r["customer_id"] for r in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    assert sizes == [2, 2, 1]  # a filtered page reads on past what the filter drops: full pages
    _, bobs = world.call("GET", "/api/v1/customers?staff_id=bob")
    assert len(bobs["items"]) == 1
    assert world.call("GET", "/api/v1/customers?status=bogus")[0] == 400
    assert world.call("GET", "/api/v1/customers?cursor=garbage")[0] == 400
    _, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}&by=day")
    assert stats["rows"][0]["key"] == _today() and stats["total"]["adds"] == 6
    assert world.call("GET", "/api/v1/stats/contacts?from=2026-01-02&to=2026-01-01")[0] == 400


def test_frequency_limit_defers_the_rest_of_the_event_as_a_new_delayed_message(world, monkeypatch):
    """45009 on mark_tag: the welcome (already sent) is not repeated; the event is re-sent as a
    delayed copy (attempt 1) instead of failing toward the DLQ, and the copy finishes the tags."""
    from chalicelib.customers import items as customer_items
    from chalicelib.platform import aws, queues
    from tests.helpers import drain_queue, sqs_event

    sent: list[tuple[str, int]] = []
    real_send = queues.send

    def spy(spec, message, *, delay_seconds=0):  # records, then really sends to (moto's) SQS
        sent.append((message.model_dump_json(), delay_seconds))
        real_send(spec, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", spy)
    tag_ids = world.tag("source", "limited")
    _, code = _code(world, tag_ids=tag_ids)
    world.sb.faults.add(kind="errcode", errcode=45009, path="externalcontact/mark_tag", count=1)
    scan = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Rate Limited")
    customer = scan["external_userid"]
    result = world.client.lambda_.invoke("on_events", sqs_event(drain_queue(world.settings.events_queue))).payload
    assert result == {"batchItemFailures": []}  # not a failure: nothing counts toward the DLQ
    assert len(world.sb.journal.welcomes(customer)) == 1
    body, delay = sent[-1]
    assert delay >= 60 and '"attempt":1' in body
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=queues.queue_url(world.settings.events_queue), AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"

    # The delayed copy arrives (here: now) and completes only what was left: the tags.
    assert world.client.lambda_.invoke("on_events", sqs_event([body])).payload == {"batchItemFailures": []}
    assert len(world.sb.requests("externalcontact/send_welcome_msg")) == 1
    assert customer_items.get_relation(CORP_ID, customer, "alice").tags == tag_ids


def test_tags_edited_by_staff_in_the_wecom_client_flow_back(world):
    from chalicelib.customers import items as customer_items

    first, second = world.tag("interest", "masks", "alcohol")
    _, code = _code(world, tag_ids=[first])
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Pat")["external_userid"]
    world.pump()
    world.sb.simulator.staff_edits_customer(CORP_ID, "alice", customer, add_tag=[second], remove_tag=[first])
    world.pump()
    assert customer_items.get_relation(CORP_ID, customer, "alice").tags == [second]
    _, masks = world.call("GET", f"/api/v1/customers?tag={first}")
    assert masks["items"] == []


def test_tag_one_customer(world):
    from chalicelib.customers import items as customer_items

    vip, = world.tag("level", "vip")
    _, code = _code(world)
    a = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="A")["external_userid"]
    world.pump()
    status, body = world.call("POST", f"/api/v1/customers/{a}/tags", {"staff_id": "alice", "add": [vip]})
    assert (status, body["status"]) == (200, "done")
    assert customer_items.get_relation(CORP_ID, a, "alice").tags == [vip]
    assert world.call("POST", f"/api/v1/customers/{a}/tags", {"staff_id": "bob", "add": [vip]})[0] == 409
    assert world.call("POST", f"/api/v1/customers/{a}/tags", {"staff_id": "alice"})[0] == 400
    status, body = world.call("POST", f"/api/v1/customers/{a}/tags", {"staff_id": "alice", "add": ["etNo"]})
    assert (status, body["error"]["code"]) == (400, "unknown_tags")


def test_oversized_or_odd_ids_in_paths_are_404_without_touching_the_table(world):
    """DynamoDB refuses keys over its size limits (a 500 in AWS; moto is laxer), so such ids are
    answered before any lookup: only the API key is read."""
    from bench.aws_requests import count_aws_requests
    from chalicelib.platform import aws

    for path in ("/api/v1/channel-codes/" + "s" * 2000, "/api/v1/customers/" + "c" * 2000,
                 "/api/v1/customer-syncs/" + "j" * 2000, "/api/v1/customers/a%20b"):
        with count_aws_requests(aws.client("dynamodb")) as counts:
            status, body = world.call("GET", path)
        assert (status, body["error"]["code"]) == (404, "not_found"), path
        assert counts.total == 1, (path, counts)  # the API key's GetItem, nothing else
    with count_aws_requests(aws.client("dynamodb")) as counts:
        assert world.call("GET", "/api/v1/channel-codes/no-such-code")[0] == 404
    assert counts.total == 2  # a plausible id is looked up
    status, _ = world.call("PATCH", "/api/v1/tags/" + "t" * 2000, {"name": "x"})
    assert status == 404


def test_contacts_without_a_channel_code_are_one_kind_and_can_be_listed(world):
    """A walk-in add (no channel code) and a synced contact without one read the same (state
    null), and channel=- lists them, as the stats' '-' row counts them."""
    _, poster = _code(world, name="poster", staff_ids=["alice"])
    coded = world.sb.simulator.scan_contact_way(CORP_ID, poster["config_id"], name="Coded")["external_userid"]
    walk_in = world.sb.simulator.add_staff(CORP_ID, "bob", name="Walk-in")["external_userid"]
    world.pump()
    _, none = world.call("GET", "/api/v1/customers?channel=-")
    assert [(r["customer_id"], r["state"]) for r in none["items"]] == [(walk_in, None)]
    _, coded_rows = world.call("GET", f"/api/v1/customers?channel={poster['state']}")
    assert [r["customer_id"] for r in coded_rows["items"]] == [coded]
    _, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}&by=channel")
    assert {r["key"]: r["adds"] for r in stats["rows"]} == {"-": 1, poster["state"]: 1}
