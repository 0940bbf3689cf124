"""The events consumer: SQS batch of decoded callbacks -> dedupe -> capability handlers.

For each message: rebuild the typed event, ask the router for its handlers, skip the steps
already committed for this event identity (WeCom retries a callback as a new message, SQS
redelivers, Lambda retries), run the others, and commit their DynamoDB effects with the steps in
one transaction. A WeCom frequency limit or outage defers the event as a new delayed message (so
waiting never counts toward the DLQ), and any other failure is reported as a partial batch
failure for that message alone.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.router import ROUTER

logger = logging.getLogger(__name__)

# Capability modules whose handlers the router dispatches to; imported on the first batch.
# Order matters: welcome first, its code dies 20 s after the add.
CAPABILITIES = ("welcome", "contacts", "tags", "groups")
_loaded: list[str] = []

MAX_DEFERRALS = 24  # a day of hourly frequency-limit blocks; then the event fails to the DLQ


def load_capabilities() -> None:
    if not _loaded:
        for name in CAPABILITIES:
            importlib.import_module(f"chalicelib.{name}")
        _loaded.extend(CAPABILITIES)


@dataclass
class EventContext:
    """What a handler gets: the event, its identity, and the corp's settings."""

    corp_id: str
    event: Any  # wecom.events.CallbackEvent
    identity: str
    received_at_ms: int
    now: float = field(default_factory=time.time)
    _corp: Any = None

    @property
    def corp(self) -> Any:
        if self._corp is None:
            from chalicelib import corps

            self._corp = corps.runtime(self.corp_id)
            if self._corp is None:
                raise LookupError(f"corp {self.corp_id} is not registered")
        return self._corp

    @property
    def day(self) -> str:
        """The event's calendar day in the corp's time zone."""
        return datetime.fromtimestamp(self.event.create_time, ZoneInfo(self.corp.time_zone)).date().isoformat()


class Outcome:
    DONE = "done"
    DUPLICATE = "duplicate"
    UNROUTED = "unrouted"
    DEFERRED = "deferred"


def _retry_after(exc: Exception) -> float | None:
    """Seconds to wait for errors that mean "WeCom is busy or limiting us, try later"."""
    try:
        from chalicelib.wecom import errors
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, errors.FrequencyLimited):
        return float(getattr(exc, "retry_after", 60) or 60)
    if isinstance(exc, (errors.SystemBusy, errors.WeComUnavailable)):
        return 5.0
    return None


def handle_message(body: str) -> str:
    from chalicelib import queues
    from chalicelib.settings import get_settings
    from chalicelib.store import events as event_store
    from chalicelib.wecom.events import event_from_dict

    load_capabilities()
    message = queues.EventMessage.model_validate_json(body)
    event = event_from_dict(message.event)
    routes = ROUTER.fetch(*event.route_key)
    if not routes:
        return Outcome.UNROUTED
    identity = event.identity()
    done = event_store.done_steps(message.corp_id, identity)
    todo = [r for r in routes if r.step not in done]
    if not todo:
        return Outcome.DUPLICATE
    ctx = EventContext(message.corp_id, event, identity, message.received_at_ms)
    committed_steps: list[str] = []
    ops: list[Any] = []
    failure: Exception | None = None
    for route in todo:
        try:
            ops.extend(route.handler(ctx) or [])
            committed_steps.append(route.step)
        except Exception as exc:  # noqa: BLE001  (decided below: defer, or fail this message)
            failure = exc
            break
    if committed_steps:
        expires_at = int(ctx.now) + get_settings().dedupe_ttl_days * 86400
        try:
            event_store.commit(message.corp_id, identity, steps=committed_steps, ops=ops,
                               expires_at=expires_at, route="/".join(map(str, event.route_key)))
        except event_store.Duplicate:
            return Outcome.DUPLICATE
    if failure is None:
        return Outcome.DONE
    wait = _retry_after(failure)
    if wait is None or message.attempt >= MAX_DEFERRALS:
        raise failure
    logger.warning("deferring event %s by %.0fs: %r", identity, wait, failure)
    queues.defer(queues.EVENTS, message, delay_seconds=wait)
    return Outcome.DEFERRED


def handle_each(records: list[tuple[str, str]], handler: Any) -> dict[str, list[dict[str, str]]]:
    """records: (message_id, body). Runs `handler(body)` per record; returns Lambda's partial
    batch response, so one poison message never redelivers the good ones."""
    failures = []
    for message_id, body in records:
        try:
            outcome = handler(body)
            logger.info("message %s: %s", message_id, outcome)
        except Exception:
            logger.exception("message %s failed", message_id)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def handle_batch(records: list[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    return handle_each(records, handle_message)
