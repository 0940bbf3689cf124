"""The events consumer: SQS batch of decoded callbacks -> dedupe -> capability handlers.

For each message: rebuild the typed event, ask the router for its handlers, skip the steps
already committed for this event identity (WeCom retries a callback as a new message, SQS
redelivers, Lambda retries), run the others, and commit their DynamoDB effects with the steps in
one transaction; then the after-commit steps (they read what that committed), committed in turn.
A WeCom frequency limit or outage defers the event as a new delayed message (so waiting never
counts toward the DLQ). A message that can never be processed (`Unprocessable`: its body cannot
be rebuilt, or DynamoDB refuses its data) goes to the DLQ at once with its reason; any other
failure is reported as a partial batch failure for that message alone (SQS redelivers it, up to
MAX_RECEIVES times).
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from chalicelib.platform import context
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER

logger = logging.getLogger(__name__)

# Capability modules whose handlers the router dispatches to, imported on the first batch. An
# event's steps run in this order (urgent ones, the welcome, first regardless), whatever order
# the modules happened to be imported in (the operator API imports `tags` early, for one).
CAPABILITIES = ("welcome", "customers", "tags", "groups", "group_codes", "channel_codes", "handovers", "churn")
_loaded: list[str] = []

MAX_DEFERRALS = 24  # then the event fails to the DLQ (hours of WeCom refusing one of its calls)
# on_events' Lambda timeout (.chalice/config.json; a test keeps them equal), and what a batch keeps
# of it for its second pass: the welcome's in-place retries stop in time for every commit.
BATCH_SECONDS = 30.0
SECOND_PASS_RESERVE_SECONDS = 8.0


def load_capabilities() -> None:
    if not _loaded:
        for name in CAPABILITIES:
            importlib.import_module(f"chalicelib.{name}.steps")
        _loaded.extend(CAPABILITIES)


class Outcome:
    DONE = "done"
    DUPLICATE = "duplicate"
    UNROUTED = "unrouted"
    DEFERRED = "deferred"
    DEAD_LETTERED = "dead_lettered"


class Unprocessable(Exception):
    """This message can never be processed as it is: redelivering it only delays the DLQ."""


def _never_succeeds(exc: Exception) -> bool:
    from chalicelib.store import RequestRejected

    return isinstance(exc, (Unprocessable, RequestRejected))


def _retry_after(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait for errors that mean "WeCom is busy or limiting us, try later"; None for
    the rest. An outage is waited out with a doubling delay, not polled every few seconds."""
    from chalicelib.platform import queues
    from chalicelib.wecom import errors

    if isinstance(exc, errors.FrequencyLimited):
        return float(getattr(exc, "retry_after", 60) or 60)
    if isinstance(exc, (errors.SystemBusy, errors.WeComUnavailable)):
        return float(queues.backoff_delay(attempt))
    return None


def _step_order(route: Any) -> tuple[bool, int]:
    module = route.step.split(".", 1)[0]
    return (not route.urgent, CAPABILITIES.index(module) if module in CAPABILITIES else len(CAPABILITIES))


@dataclass
class _Work:
    """One message of a batch between its two passes."""

    message: Any
    ctx: EventContext
    todo: list[Any]
    body: str
    step_ops: list[tuple[str, list[Any]]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def run(self, *, urgent: bool, after_commit: bool = False) -> None:
        # Steps are independent: one failing (WeCom refusing mark_tag) does not hold back the
        # others (the relation, the counts), which commit now; only the failed step is retried.
        for route in [r for r in self.todo if r.urgent == urgent and r.after_commit == after_commit]:
            try:
                self.step_ops.append((route.step, list(route.handler(self.ctx) or [])))
            except Exception as exc:  # noqa: BLE001  (decided in finish: defer, or fail this message)
                self.failures.append(exc)

    def skip_unneeded(self) -> None:
        """After-commit steps this event gives nothing to do: marked done with the other steps."""
        for route in [r for r in self.todo if r.after_commit and r.needed is not None]:
            try:
                if route.needed(self.ctx):
                    continue
            except Exception as exc:  # noqa: BLE001  (the step stays to do: retried with the event)
                self.failures.append(exc)
                continue
            self.todo.remove(route)
            self.step_ops.append((route.step, []))


@dataclass
class _Parsed:
    """One message read: its event, the steps it routes to, the items they read."""

    message: Any
    event: Any
    identity: str  # the event's exactly-once identity
    routes: list[Any]
    reads: list[dict[str, str]]


def _parse(body: str) -> _Parsed | str:
    from chalicelib.platform import queues
    from chalicelib.wecom.events import EventInvalid, event_from_dict

    load_capabilities()
    try:
        message = queues.EventMessage.model_validate_json(body)
    except ValueError as exc:  # pydantic's ValidationError included
        raise Unprocessable(f"the message cannot be read: {exc}") from exc
    try:
        event = event_from_dict(message.event)
    except EventInvalid as exc:  # queued by an older version, or by hand
        raise Unprocessable(f"the event cannot be rebuilt: {exc}") from exc
    routes = sorted(ROUTER.fetch(*event.route_key), key=_step_order)
    if not routes:
        return Outcome.UNROUTED
    reads = [k for r in routes if r.reads for k in r.reads(message.corp_id, event)]
    return _Parsed(message, event, event.identity(), routes, reads)


@dataclass(frozen=True)
class _Read:
    """What the batch read for one message before its first pass."""

    done: set[str]  # its event's committed steps
    items: dict[Any, Any]  # the items its steps read
    writes: dict[Any, int]  # the batch's write counts at the read (EventContext.preload)


def _prepare(body: str, budget_until: float | None = None, parsed: _Parsed | None = None,
             read: _Read | None = None) -> _Work | str:
    """The message's work: `parsed` and `read` when the batch already has them, else here."""
    from chalicelib.store import events as event_store

    parsed = _parse(body) if parsed is None else parsed
    if isinstance(parsed, str):
        return parsed
    message, event, identity = parsed.message, parsed.event, parsed.identity
    if read is None:
        read = _Read(*event_store.done_steps_and_items(message.corp_id, identity, parsed.reads), context.write_counts())
    todo = [r for r in parsed.routes if r.step not in read.done]
    if not todo:
        return Outcome.DUPLICATE
    ctx = EventContext(message.corp_id, event, identity, message.received_at_ms, budget_until=budget_until)
    ctx.preload(read.items, read.writes)
    return _Work(message, ctx, todo, body)


def _read_all(parsed: list[_Parsed]) -> list[_Read | None]:
    """Every message's committed steps and items in one request for the batch (one BatchGetItem
    instead of one per message: a tenth message's urgent step no longer waits for nine reads). If
    that request fails, each message reads its own (one failing then fails alone)."""
    from chalicelib.store import events as event_store

    if len(parsed) < 2:
        return [None] * len(parsed)
    try:
        writes = context.write_counts()
        return [_Read(done, items, writes) for done, items in event_store.done_steps_and_items_of(
            [(p.message.corp_id, p.identity, p.reads) for p in parsed])]
    except Exception:  # noqa: BLE001  (each message reads again, and fails on its own if it must)
        logger.exception("the batch's records could not be read at once")
        return [None] * len(parsed)


def _commit(work: _Work) -> bool:
    """Commit the steps run so far (their writes, and the steps marked done); False when another
    delivery of the event committed them first."""
    from chalicelib.platform.settings import get_settings
    from chalicelib.store import events as event_store

    ctx = work.ctx
    if work.step_ops:
        expires_at = int(ctx.now) + get_settings().dedupe_ttl_days * 86400
        try:
            event_store.commit(ctx.corp_id, ctx.identity, steps=[s for s, _ in work.step_ops],
                               ops=[op for _, ops in work.step_ops for op in ops], expires_at=expires_at,
                               route=_route(ctx))
        except event_store.Duplicate:
            return False
        work.step_ops = []
    return True


def _finish(work: _Work) -> str:
    from chalicelib.platform import queues
    from chalicelib.wecom import errors

    work.run(urgent=False)
    work.skip_unneeded()
    ctx, message = work.ctx, work.message
    if not _commit(work):
        return Outcome.DUPLICATE
    # After-commit steps read what the others committed. While one of those is to be retried
    # they run now all the same (what was committed may be all they need) but are not marked
    # done: they run again with the retry, so they must be idempotent.
    if any(r.after_commit for r in work.todo):
        retried = bool(work.failures)
        work.run(urgent=False, after_commit=True)
        if retried:
            work.step_ops = []
        elif not _commit(work):
            return Outcome.DUPLICATE
    if not work.failures:
        return Outcome.DONE
    waits = [_retry_after(exc, message.attempt) for exc in work.failures]
    permanent = [exc for exc, wait in zip(work.failures, waits, strict=True) if wait is None]
    if permanent or message.attempt >= MAX_DEFERRALS:  # SQS redelivers the message; then the DLQ
        if any(isinstance(exc, errors.AuthError) for exc in permanent):
            from chalicelib.corps import registry as corps

            corps.refresh(ctx.corp_id)  # a secret changed through another instance: redelivery uses the new one
        raise ([exc for exc in permanent if _never_succeeds(exc)] or permanent or work.failures)[0]
    wait = max(w for w in waits if w is not None)
    logger.warning("deferring event %s by %.0fs: %r", ctx.identity, wait, work.failures,
                   extra=_log_fields(ctx, Outcome.DEFERRED))
    queues.defer(queues.EVENTS, message, delay_seconds=wait)
    return Outcome.DEFERRED


def _log_fields(ctx: EventContext, outcome: str) -> dict[str, str]:
    """Keys of Lambda's JSON log record (infra/ sets LogFormat JSON): filter by corp, event, outcome."""
    return {"corp_id": ctx.corp_id, "event": ctx.identity, "route": _route(ctx), "outcome": outcome}


def _route(ctx: EventContext) -> str:
    return "/".join(map(str, ctx.event.route_key))


def _guard(queue: Any, message_id: str, body: str, failures: list[dict[str, str]], fn: Any, *args: Any) -> Any:
    """Run one message's work; a failure is logged and reported for that message alone, or, when
    the message can never succeed, the message goes to `queue`'s DLQ now (and is acknowledged)."""
    try:
        return fn(*args)
    except Exception as exc:
        if queue is not None and _never_succeeds(exc) and _bury(queue, message_id, body, exc):
            return Outcome.DEAD_LETTERED
        logger.exception("message %s failed", message_id)
        failures.append({"itemIdentifier": message_id})
        return None


def _bury(queue: Any, message_id: str, body: str, exc: Exception) -> bool:
    """True once the message is on the DLQ; False (SQS redelivers it) if that send failed."""
    from chalicelib.platform import dead_letters

    try:
        dead_letters.bury(queue, body, reason=str(exc), error=type(exc).__name__, message_id=message_id)
    except Exception:
        logger.exception("message %s could not be dead-lettered", message_id)
        return False
    logger.error("message %s can never be processed, dead-lettered: %s", message_id, exc,
                 extra={"outcome": Outcome.DEAD_LETTERED})
    return True


def handle_each(records: list[tuple[str, str]], handler: Any, *, queue: Any = None) -> dict[str, list[dict[str, str]]]:
    """records: (message_id, body). Runs `handler(body)` per record; returns Lambda's partial
    batch response, so one poison message never redelivers the good ones. With `queue` (a
    QueueSpec), a message the handler finds `Unprocessable` goes to its DLQ at once."""
    failures: list[dict[str, str]] = []
    for message_id, body in records:
        outcome = _guard(queue, message_id, body, failures, handler, body)
        if outcome is not None:
            logger.info("message %s: %s", message_id, outcome)
    return {"batchItemFailures": failures}


def _first_pass(body: str, budget_until: float | None = None, parsed: _Parsed | None = None,
                read: _Read | None = None) -> _Work | str:
    work = _prepare(body, budget_until, parsed, read)
    if not isinstance(work, str):
        work.run(urgent=True)
    return work


def handle_batch(records: list[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Two passes over the batch: the urgent steps (welcomes) of every message first, then the
    rest of each message and its commit. The tenth welcome of a batch then waits for nine welcome
    sends, not for nine whole events (tags, transactions). The messages' records and items are
    read for the whole batch at once, before the first pass."""
    from chalicelib.platform import queues

    context.start_batch()
    failures: list[dict[str, str]] = []
    parsed: list[tuple[str, str, _Parsed]] = []
    prepared: list[tuple[str, _Work]] = []
    budget_until = time.monotonic() + BATCH_SECONDS - SECOND_PASS_RESERVE_SECONDS
    for message_id, body in records:
        one = _guard(queues.EVENTS, message_id, body, failures, _parse, body)
        if isinstance(one, _Parsed):
            parsed.append((message_id, body, one))
        elif one is not None:
            logger.info("message %s: %s", message_id, one)
    reads = _read_all([p for _, _, p in parsed])
    for (message_id, body, one), read in zip(parsed, reads, strict=True):  # pass 1: dedupe, urgent steps
        work = _guard(queues.EVENTS, message_id, body, failures, _first_pass, body, budget_until, one, read)
        if isinstance(work, _Work):
            prepared.append((message_id, work))
        elif work is not None:
            logger.info("message %s: %s", message_id, work)
    for message_id, work in prepared:  # pass 2: the other steps, then one commit each
        outcome = _guard(queues.EVENTS, message_id, work.body, failures, _finish, work)
        if outcome is not None:  # fields for Lambda's JSON log records (infra/: LogFormat JSON)
            logger.info("message %s: %s", message_id, outcome,
                        extra=_log_fields(work.ctx, outcome))
    return {"batchItemFailures": failures}
