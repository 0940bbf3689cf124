"""Callback -> queue -> consumer -> DynamoDB, in-process (moto + chalice's test client)."""

from __future__ import annotations

import json

from chalicelib.store import counters
from tests.conftest import both_aws_backends
from tests.helpers import CORP_ID, contact_xml, drain_queue, encrypted, register, sqs_event

aws_backend = both_aws_backends  # the store under these tests: moto and bench/fake_aws.py


def _post(client, xml: bytes, corp_id: str = CORP_ID):
    query, body = encrypted(xml, corp_id)
    return client.http.post(f"/wecom/{corp_id}/callback?{query}", body=body,
                            headers={"Content-Type": "text/xml"})


def _consume(client, bodies):
    return client.lambda_.invoke("on_events", sqs_event(bodies)).payload


def test_add_contact_recorded_once_despite_retries_and_redelivery(chalice_client, aws):
    from chalicelib.customers import items as customer_items

    register(chalice_client)
    xml = contact_xml(create_time=1_700_000_000)
    for _ in range(3):  # WeCom re-posts the same callback
        resp = _post(chalice_client, xml)
        assert resp.status_code == 200 and resp.body == b""
    bodies = drain_queue(aws.events_queue)
    assert len(bodies) == 3
    result = _consume(chalice_client, bodies + bodies[:1])  # and SQS redelivers one
    assert result == {"batchItemFailures": []}

    rel = customer_items.get_relation(CORP_ID, "wmCustomer0001", "zhangsan")
    assert rel is not None and rel.status == "active" and rel.state == "store-001"
    rows = counters.read(CORP_ID, "2023-11-15", "2023-11-15")
    corp_row = next(r for r in rows if r["dimension"] == "corp")
    assert corp_row["adds"] == 1
    channel_row = next(r for r in rows if r["dimension"] == "channel")
    assert channel_row["value"] == "store-001" and channel_row["adds"] == 1


def test_poison_message_fails_alone(chalice_client, aws):
    from chalicelib.customers import items as customer_items
    from chalicelib.platform import queues

    register(chalice_client)
    _post(chalice_client, contact_xml(customer="wmGood", create_time=1_700_000_100))
    good = drain_queue(aws.events_queue)
    event = sqs_event(["{not json", *good])
    result = chalice_client.lambda_.invoke("on_events", event).payload
    # Unreadable, it can never succeed: dead-lettered at once (not redelivered), the good one done.
    assert result == {"batchItemFailures": []}
    assert drain_queue(queues.dlq_name(aws.events_queue)) == ["{not json"]
    assert customer_items.get_relation(CORP_ID, "wmGood", "zhangsan") is not None


def test_customer_with_two_staff_is_one_customer_with_two_relations(chalice_client, aws):
    from chalicelib.customers import items as customer_items

    register(chalice_client)
    _post(chalice_client, contact_xml(staff="alice", customer="wmShared", create_time=1_700_000_200))
    _post(chalice_client, contact_xml(staff="bob", customer="wmShared", create_time=1_700_000_300))
    _consume(chalice_client, drain_queue(aws.events_queue))
    rels = customer_items.relations_of_customer(CORP_ID, "wmShared")
    assert sorted(r.staff_id for r in rels) == ["alice", "bob"]
    items = customer_items.items_of_customer(CORP_ID, "wmShared")
    assert sum(1 for i in items if i["type"] == "customer") == 1


def _five_adds(chalice_client, aws) -> list[str]:
    register(chalice_client)
    for i in range(5):
        _post(chalice_client, contact_xml(customer=f"wmBatch{i}", create_time=1_700_000_400 + i))
    bodies = drain_queue(aws.events_queue)
    return bodies + bodies[:1]  # and one delivered twice in the batch


def _assert_five_adds_recorded_once(aws) -> None:
    from chalicelib.customers import items as customer_items

    assert all(customer_items.get_relation(CORP_ID, f"wmBatch{i}", "zhangsan") for i in range(5))
    corp_row = next(r for r in counters.read(CORP_ID, "2023-11-14", "2023-11-15") if r["dimension"] == "corp")
    assert corp_row["adds"] == 5


def test_a_batch_reads_all_its_event_records_in_one_request(chalice_client, aws, monkeypatch):
    """The consumer reads every message's exactly-once record (and its steps' items) for the whole
    batch at once, not one request per message before its first pass."""
    from chalicelib.store import events as event_store

    batch_reads, single_reads = [], []
    of, single = event_store.done_steps_and_items_of, event_store.done_steps_and_items
    monkeypatch.setattr(event_store, "done_steps_and_items_of", lambda ev: batch_reads.append(len(ev)) or of(ev))
    monkeypatch.setattr(event_store, "done_steps_and_items", lambda *a: single_reads.append(a) or single(*a))
    bodies = _five_adds(chalice_client, aws)
    assert _consume(chalice_client, bodies) == {"batchItemFailures": []}
    assert batch_reads == [6] and single_reads == []
    _assert_five_adds_recorded_once(aws)


def test_a_failed_batch_read_falls_back_to_one_read_per_message(chalice_client, aws, monkeypatch):
    from chalicelib.store import events as event_store

    read = event_store.done_steps_and_items_of

    def refuse(events):  # the batch's read fails; one message's read goes through
        if len(events) > 1:
            raise RuntimeError("throttled")
        return read(events)

    monkeypatch.setattr(event_store, "done_steps_and_items_of", refuse)
    assert _consume(chalice_client, _five_adds(chalice_client, aws)) == {"batchItemFailures": []}
    _assert_five_adds_recorded_once(aws)


def test_lost_removed_and_transfer_are_counted_apart(chalice_client, aws):
    from chalicelib.customers import items as customer_items

    register(chalice_client)
    t = 1_700_000_000
    _post(chalice_client, contact_xml(customer="wmA", create_time=t))
    _post(chalice_client, contact_xml(customer="wmB", create_time=t))
    _post(chalice_client, contact_xml(customer="wmC", create_time=t))
    _post(chalice_client, contact_xml("del_follow_user", customer="wmA", create_time=t + 10))
    _post(chalice_client, contact_xml("del_external_contact", customer="wmB", create_time=t + 10))
    _post(chalice_client, contact_xml("del_external_contact", customer="wmC", create_time=t + 10,
                                      extra="<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>"))
    _consume(chalice_client, drain_queue(aws.events_queue))
    statuses = {c: customer_items.get_relation(CORP_ID, c, "zhangsan").status for c in ("wmA", "wmB", "wmC")}
    assert statuses == {"wmA": "lost", "wmB": "removed", "wmC": "transferred"}
    corp_row = next(r for r in counters.read(CORP_ID, "2023-11-15", "2023-11-15")
                    if r["dimension"] == "corp")
    assert (corp_row["adds"], corp_row["lost"], corp_row["removed"], corp_row["transferred"]) == (3, 1, 1, 1)


def test_stale_add_does_not_revive_a_lost_relation(chalice_client, aws):
    from chalicelib.customers import items as customer_items

    register(chalice_client)
    t = 1_700_000_000
    _post(chalice_client, contact_xml("del_follow_user", customer="wmLate", create_time=t + 50))
    _consume(chalice_client, drain_queue(aws.events_queue))
    _post(chalice_client, contact_xml(customer="wmLate", create_time=t))  # arrives late
    assert _consume(chalice_client, drain_queue(aws.events_queue)) == {"batchItemFailures": []}
    rel = customer_items.get_relation(CORP_ID, "wmLate", "zhangsan")
    # still lost, but the late add says when the relation began, and lists it at that time
    assert (rel.status, rel.added_at, rel.ended_at) == ("lost", t, t + 50)
    listed, _ = customer_items.search_relations(CORP_ID, added_from=t, added_to=t, limit=10, cursor=None)
    assert [(r.customer_id, r.status) for r in listed] == [("wmLate", "lost")]
    _post(chalice_client, contact_xml(customer="wmLate", create_time=t - 10))  # an even older add
    assert _consume(chalice_client, drain_queue(aws.events_queue)) == {"batchItemFailures": []}
    assert customer_items.get_relation(CORP_ID, "wmLate", "zhangsan").added_at == t  # the first one kept


def test_group_events_record_groups_and_members(chalice_client, aws):
    from chalicelib.groups import items as group_items

    register(chalice_client)
    base = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
            "<ChatId><![CDATA[wrChat1]]></ChatId>")
    _post(chalice_client,
          (base + "<CreateTime>1700000000</CreateTime><ChangeType><![CDATA[create]]></ChangeType></xml>").encode())
    _post(chalice_client, (base + "<CreateTime>1700000010</CreateTime><ChangeType><![CDATA[update]]></ChangeType>"
                           "<UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>3</JoinScene>"
                           "<MemChangeCnt>2</MemChangeCnt><MemChangeList><Item>wmX</Item><Item>wmY</Item></MemChangeList>"
                           "</xml>").encode())
    _consume(chalice_client, drain_queue(aws.events_queue))
    assert group_items.get_group(CORP_ID, "wrChat1").status == "active"
    assert sorted(m.member_id for m in group_items.members(CORP_ID, "wrChat1")) == ["wmX", "wmY"]


def test_unknown_event_is_accepted_and_ignored(chalice_client, aws):
    register(chalice_client)
    xml = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>1700000000</CreateTime>"
           "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[brand_new_event]]></Event></xml>").encode()
    assert _post(chalice_client, xml).status_code == 200
    bodies = drain_queue(aws.events_queue)
    assert json.loads(bodies[0])["event"]["event"] == "brand_new_event"
    assert _consume(chalice_client, bodies) == {"batchItemFailures": []}


def test_log_records_carry_corp_event_and_outcome_fields(chalice_client, aws, caplog):
    """Lambda's JSON log format (infra/) turns `extra=` fields into keys: one query per corp."""
    import logging

    register(chalice_client)
    caplog.set_level(logging.INFO, logger="chalicelib")
    _post(chalice_client, contact_xml(customer="wmLogged", create_time=1_700_000_900))
    _post(chalice_client, contact_xml(customer="wmLogged", create_time=1_700_000_900))  # WeCom's retry
    query, _ = encrypted(contact_xml(), CORP_ID)
    chalice_client.http.post(f"/wecom/{CORP_ID}/callback?{query}", body=b"<xml><Encrypt>AAAA</Encrypt></xml>",
                             headers={"Content-Type": "text/xml"})
    _consume(chalice_client, drain_queue(aws.events_queue))

    fields = [(r.corp_id, getattr(r, "outcome", None), getattr(r, "rejected", None))
              for r in caplog.records if hasattr(r, "corp_id")]
    assert sorted(fields, key=str) == sorted([(CORP_ID, None, "signature_invalid"), (CORP_ID, "done", None),
                                              (CORP_ID, "duplicate", None)], key=str)
    by_outcome = {getattr(r, "outcome", None): r for r in caplog.records}
    done, duplicate = by_outcome["done"], by_outcome["duplicate"]
    assert done.event == duplicate.event and done.route == "change_external_contact/add_external_contact"


def test_blanks_around_values_and_a_skewed_clock_are_tolerated(chalice_client, aws):
    """A sender that pads values (pretty-printing) or whose clock runs a minute ahead is still
    understood: blanks are layout, and CreateTime may lead ours by up to 10 minutes."""
    import time

    from chalicelib.customers import items as customer_items

    register(chalice_client)
    xml = contact_xml(change_type="\n  add_external_contact ", staff=" zhangsan\n", customer=" wmPadded ",
                      create_time=int(time.time()) + 60)
    assert _post(chalice_client, xml).status_code == 200
    assert _consume(chalice_client, drain_queue(aws.events_queue)) == {"batchItemFailures": []}
    rel = customer_items.get_relation(CORP_ID, "wmPadded", "zhangsan")
    assert rel is not None and rel.status == "active"
