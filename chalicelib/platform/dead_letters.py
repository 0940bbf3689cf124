"""Dead-letter queues, for operators: how many messages each holds, what they are, and a redrive
that moves them back to their queue once the cause is fixed (e.g. a corp's secret corrected).

A redriven message is sent as a new message and deleted from the DLQ only after that send, so a
crash in between can duplicate a message but never lose one; the consumers are idempotent.

SQS moves a message here after MAX_RECEIVES failed receives; a consumer sends one here itself, at
once, when it can never be processed (`bury`), with its reason as message attributes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, Field

from chalicelib.platform import aws, queues
from chalicelib.platform.model import Model
from chalicelib.platform.settings import get_settings


class DeadLetterQueue(Model):
    queue: str = Field(description="logical queue: events | sync | sends")
    name: str
    dead_letters: int


class DeadLetter(Model):
    message_id: str
    receive_count: int = Field(description="receives so far, the ones before it reached the DLQ included")
    body: Any
    reason: str | None = Field(None, description="why it failed, when the consumer sent it to the DLQ itself "
                                                 "(its `reason` attribute); null for one moved there by the "
                                                 "queue's redrive policy after its last failed receive")
    attributes: dict[str, str] = Field(default_factory=dict, description="its message attributes")
    sent_at: int | None = Field(None, description="epoch seconds it was first sent")
    first_received_at: int | None = Field(None, description="epoch seconds of its first receive")


def _seconds(millis: str | None) -> int | None:
    return int(millis) // 1000 if millis else None


def _dead_letter(m: dict[str, Any]) -> DeadLetter:
    attrs = m.get("Attributes", {})
    values = {k: v.get("StringValue", v.get("BinaryValue", "")) for k, v in m.get("MessageAttributes", {}).items()}
    values = {k: v if isinstance(v, str) else repr(v) for k, v in values.items()}
    return DeadLetter(message_id=m["MessageId"], body=_body(m["Body"]),
                      receive_count=int(attrs.get("ApproximateReceiveCount", 0)), reason=values.get("reason"),
                      attributes=values, sent_at=_seconds(attrs.get("SentTimestamp")),
                      first_received_at=_seconds(attrs.get("ApproximateFirstReceiveTimestamp")))


class UnknownQueue(Exception):
    pass


def _spec(logical: str) -> queues.QueueSpec:
    for spec in queues.ALL_QUEUES:
        if spec.logical_name == logical:
            return spec
    raise UnknownQueue(f"no queue {logical!r}; one of {[s.logical_name for s in queues.ALL_QUEUES]}")


def summary() -> list[DeadLetterQueue]:
    out = []
    for spec in queues.ALL_QUEUES:
        name = queues.dlq_name(spec.name(get_settings()))
        out.append(DeadLetterQueue(queue=spec.logical_name, name=name, dead_letters=queues.depth(name).visible))
    return out


def _body(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


MAX_REASON_CHARS = 1000


def bury(spec: queues.QueueSpec, body: str, *, reason: str, error: str, message_id: str) -> None:
    """Put a message that can never be processed on `spec`'s DLQ now, its body unchanged (a redrive
    sends it back as it was) and the reason beside it. The caller then acknowledges the original."""
    def text(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value[:MAX_REASON_CHARS] or "-"}

    aws.client("sqs").send_message(
        QueueUrl=queues.queue_url(queues.dlq_name(spec.name(get_settings()))), MessageBody=body,
        MessageAttributes={"reason": text(reason), "error": text(error), "message_id": text(message_id)})


def peek(logical: str, *, limit: int = 10) -> list[DeadLetter]:
    """Look at up to `limit` dead letters without removing them (they reappear at once)."""
    name = queues.dlq_name(_spec(logical).name(get_settings()))
    resp = aws.client("sqs").receive_message(
        QueueUrl=queues.queue_url(name), MaxNumberOfMessages=min(limit, 10), VisibilityTimeout=0,
        AttributeNames=["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp"],
        MessageAttributeNames=["All"])
    return [_dead_letter(m) for m in resp.get("Messages", [])]


def redrive(logical: str, *, max_messages: int = 1000) -> int:
    spec = _spec(logical)
    source = queues.queue_url(spec.name(get_settings()))
    dlq = queues.queue_url(queues.dlq_name(spec.name(get_settings())))
    sqs = aws.client("sqs")
    moved = 0
    while moved < max_messages:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=min(10, max_messages - moved),
                                       VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        for m in messages:
            sqs.send_message(QueueUrl=source, MessageBody=m["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    return moved


# -- the dead-letter API's requests and views (routes in corps/routes.py) --------------------------
class DeadLetterSummary(Model):
    queues: list = Field(description="per queue: its DLQ and how many messages it holds")


class DeadLetterPeek(Model):
    messages: list[DeadLetter]


class RedriveRequest(Model):
    model_config = ConfigDict(extra="forbid")
    max_messages: int = Field(1000, ge=1, le=100_000)


class RedriveResult(Model):
    queue: str
    moved: int


class DeadLetterQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(10, ge=1, le=10)
