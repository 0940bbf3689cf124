"""SQS: the queues, their message models and the helpers that send to them.

Three standard queues, each with a dead-letter queue (redrive after `MAX_RECEIVES`):
- events: decoded WeCom callbacks (`EventMessage`), consumed in small batches for latency;
- sends:  one WeCom call to make per message (`SendMessage`), for fan-out (broadcasts, later);
- sync:   one page of a long job per message (`SyncPageMessage`): full customer sync, tag sync.
A WeCom frequency-limit block outlasts SQS's 15-minute maximum delay and must not count toward the
DLQ's receive limit, so retry-later work is re-sent as a *new* delayed message (`defer`), never
left to the visibility timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.platform import aws, caches
from chalicelib.platform.model import Model
from chalicelib.platform.settings import Settings, get_settings

MAX_RECEIVES = 5
MAX_DELAY_SECONDS = 900  # SQS's own maximum
BACKOFF_BASE_SECONDS = 5  # first wait of work deferred because WeCom was busy, 5xx or unreachable


def backoff_delay(attempt: int) -> int:
    """Seconds before the retry after deferral number `attempt` (0-based): doubling, capped at
    what SQS can delay a message (an outage is waited out, not polled every few seconds)."""
    return min(BACKOFF_BASE_SECONDS * 2 ** min(attempt, 20), MAX_DELAY_SECONDS)


@dataclass(frozen=True)
class QueueSpec:
    logical_name: str  # the name infra/ and app.py use
    visibility_timeout: int
    batch_size: int
    batching_window: int

    def name(self, settings: Settings) -> str:
        return getattr(settings, f"{self.logical_name}_queue")

    def configured_url(self, settings: Settings) -> str | None:
        return getattr(settings, f"{self.logical_name}_queue_url")


EVENTS = QueueSpec("events", visibility_timeout=180, batch_size=10, batching_window=0)
SENDS = QueueSpec("sends", visibility_timeout=120, batch_size=5, batching_window=1)
SYNC = QueueSpec("sync", visibility_timeout=300, batch_size=1, batching_window=0)
ALL_QUEUES = (EVENTS, SENDS, SYNC)


def dlq_name(queue_name: str) -> str:
    return f"{queue_name}-dlq"


class EventMessage(Model):
    """A verified, decrypted, parsed WeCom callback on its way to the consumer."""

    corp_id: str
    received_at_ms: int
    event: dict[str, Any]  # CallbackEvent.to_dict(); rebuilt with events.event_from_dict
    attempt: int = 0  # how many times it was deferred (frequency limits, WeCom busy)


class SyncPageMessage(Model):
    """One page of a resumable job; the job record in DynamoDB holds the progress."""

    corp_id: str
    job_id: str
    kind: str
    cursor: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 0


_urls: dict[str, str] = {}


def queue_url(name: str) -> str:
    """The queue's URL: from the environment when the deployment set it, else asked of SQS once
    per instance."""
    url = _urls.get(name)
    if url is None:
        url = _urls[name] = _configured_url(name) or aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return url


@dataclass(frozen=True)
class Depth:
    """SQS's approximate counts of one queue (eventually consistent: a few seconds behind)."""

    visible: int  # waiting to be received
    in_flight: int  # received, not yet deleted: they come back if their consumer fails
    delayed: int  # sent with a delay (deferred work), not yet visible

    @property
    def empty(self) -> bool:
        return not (self.visible or self.in_flight or self.delayed)


def depth(name: str) -> Depth:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return Depth(visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
                 in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                 delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)))


def _configured_url(name: str) -> str | None:
    settings = get_settings()
    return next((spec.configured_url(settings) for spec in ALL_QUEUES if spec.name(settings) == name), None)


caches.register("queues:urls", _urls.clear)


def send(spec: QueueSpec, message: BaseModel, *, delay_seconds: int = 0) -> None:
    aws.client("sqs").send_message(
        QueueUrl=queue_url(spec.name(get_settings())),
        MessageBody=message.model_dump_json(),
        DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY_SECONDS)),
    )


def send_batch(spec: QueueSpec, messages: list[BaseModel]) -> None:
    """Send many messages, 10 per SendMessageBatch request (fan-out: SQS requests stay ~1/10 per
    message); entries SQS could not take are sent again, and a failure that persists raises."""
    sqs = aws.client("sqs")
    url = queue_url(spec.name(get_settings()))
    for start in range(0, len(messages), 10):
        entries = [{"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(messages[start:start + 10])]
        for _ in range(3):
            failed = {f["Id"] for f in sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                break
        if entries:
            raise RuntimeError(f"SQS did not take {len(entries)} message(s) of a batch")


def defer(spec: QueueSpec, message: BaseModel, *, delay_seconds: float) -> None:
    """Send a delayed copy with its attempt count raised: retry later without touching the DLQ
    counter of the message being handled (which the caller then reports as done)."""
    copy = message.model_copy(update={"attempt": getattr(message, "attempt", 0) + 1})
    send(spec, copy, delay_seconds=int(delay_seconds) + 1)


def create_queues(sqs_client: Any, settings: Settings) -> dict[str, str]:
    """Create every queue with its DLQ and redrive policy (local stack and tests; infra/ does AWS)."""
    import json

    urls = {}
    for spec in ALL_QUEUES:
        name = spec.name(settings)
        dlq_url = sqs_client.create_queue(QueueName=dlq_name(name))["QueueUrl"]
        dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        urls[name] = sqs_client.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(spec.visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
                ),
            },
        )["QueueUrl"]
    return urls
