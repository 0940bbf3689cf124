"""A message that can never be processed goes to its dead-letter queue at once, with its reason,
instead of failing MAX_RECEIVES times over a quarter of an hour first."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import ADMIN, CORP_ID, contact_xml, drain_queue, sqs_event


def _event_body(**event_overrides) -> str:
    from chalicelib.platform import queues
    from chalicelib.wecom.events import parse_event

    event = {**parse_event(contact_xml("edit_external_contact")).to_dict(), **event_overrides}
    return queues.EventMessage(corp_id=CORP_ID, received_at_ms=int(time.time() * 1000),
                               event=event).model_dump_json()


def _dead_letters(world) -> list[dict]:
    from chalicelib.platform import aws, queues

    url = queues.queue_url(queues.dlq_name(world.settings.events_queue))
    msgs = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                             MessageAttributeNames=["All"]).get("Messages", [])
    return msgs


@pytest.mark.parametrize("body, reason", [
    # queued before the callback enforced WeCom's id lengths: DynamoDB would refuse its keys
    (lambda: _event_body(external_user_id="wm" + "x" * 2998), "too long: external_user_id"),
    (lambda: "this is not a message", "cannot be read"),
    (lambda: json.dumps({"corp_id": CORP_ID, "received_at_ms": 1, "event": {"kind": "nope"}}), "unknown event kind"),
])
def test_a_message_that_cannot_be_rebuilt_is_dead_lettered_at_once(world, body, reason):
    body = body()
    result = world.client.lambda_.invoke("on_events", sqs_event([body])).payload
    assert result == {"batchItemFailures": []}  # not redelivered: it could never succeed
    dead = _dead_letters(world)
    assert [m["Body"] for m in dead] == [body]
    assert reason in dead[0]["MessageAttributes"]["reason"]["StringValue"]
    status, peek = world.call("GET", "/api/v1/dead-letters/events")
    assert status == 403  # a corp's key does not see them; the admin's does
    peek = json.loads(world.client.http.get("/api/v1/dead-letters/events", headers=ADMIN).body)
    assert reason in peek["messages"][0]["reason"]
    assert drain_queue(world.settings.events_queue) == []


def _queued_add(world) -> str:
    """A customer adds alice: WeCom's real callback, queued by our route."""
    world.sb.simulator.add_staff(CORP_ID, "alice")
    [body] = drain_queue(world.settings.events_queue)
    return body


def test_an_item_dynamodb_refuses_dead_letters_the_message_at_once(world, monkeypatch):
    """DynamoDB's ValidationException (a key over its size limit) never passes by retrying."""
    from chalicelib.store import keys

    body = _queued_add(world)
    monkeypatch.setattr(keys, "relation", lambda corp_id, customer_id, staff_id: {
        "PK": keys.corp_partition(corp_id), "SK": "REL#" + "k" * 2000})
    result = world.client.lambda_.invoke("on_events", sqs_event([body])).payload
    assert result == {"batchItemFailures": []}
    dead = _dead_letters(world)
    assert [m["Body"] for m in dead] == [body]
    assert "DynamoDB refused" in dead[0]["MessageAttributes"]["reason"]["StringValue"]


def test_an_ordinary_failure_is_still_retried_by_sqs(world, monkeypatch):
    """Only what can never succeed skips the redeliveries: a bug or an outage may pass."""
    from chalicelib.store import keys

    def boom(*args, **kwargs):
        raise RuntimeError("something transient")

    body = _queued_add(world)
    monkeypatch.setattr(keys, "relation", boom)
    result = world.client.lambda_.invoke("on_events", sqs_event([body])).payload
    assert len(result["batchItemFailures"]) == 1
    assert _dead_letters(world) == []


@pytest.mark.parametrize("body, reason", [
    (lambda: "not json at all", "not a sync page message"),
    (lambda: json.dumps({"corp_id": CORP_ID, "job_id": "j1", "kind": "nope", "cursor": {}}), "unknown sync kind"),
])
def test_a_sync_message_that_cannot_be_read_is_dead_lettered_at_once(world, body, reason):
    from chalicelib.platform import aws, queues

    body = body()
    result = world.client.lambda_.invoke("on_sync", sqs_event([body])).payload
    assert result == {"batchItemFailures": []}
    url = queues.queue_url(queues.dlq_name(world.settings.sync_queue))
    dead = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                             MessageAttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in dead] == [body]
    assert reason in dead[0]["MessageAttributes"]["reason"]["StringValue"]
