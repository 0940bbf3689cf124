"""Welcome messages (欢迎语): the channel's own welcome, sent with WeCom's one-time welcome code.

The code is single-use and dies about 20 seconds after the add, so this handler runs first for
a new contact, and a code that is already too old is not sent at all: it is logged and counted
as a missed welcome (never deferred, never sent to the DLQ). WeCom's single-use rule also makes a
repeated send harmless: a second attempt is refused with 41051, so a redelivered event can never
greet a customer twice, and a send WeCom answered busy, 5xx, not at all, or with a frequency limit
(45009) is retried in place while the code lives and the batch has time. A message that can never
be sent (WeCom refuses it, or stored content breaks a limit) is a miss with its reason at once.

Placeholders: {customer_name} (read from WeCom, ec/get) and {staff_name} (the staff member's
name, WeCom user/get, cached per instance: chalicelib/corps/staff.py). A name that cannot be read
in time is left out, with the gap it leaves.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, ValidationError

from chalicelib.customers import items as customer_items
from chalicelib.platform import caches
from chalicelib.platform.content import MessageContent, SendableContent
from chalicelib.platform.context import EventContext
from chalicelib.platform.model import Model
from chalicelib.platform.router import ROUTER
from chalicelib.store import counters

if TYPE_CHECKING:
    from chalicelib.wecom.events import AddExternalContact, AddHalfExternalContact


logger = logging.getLogger(__name__)

EVENT = "change_external_contact"
WELCOME_WINDOW_SECONDS = 20.0
# Leave time for the send itself: a code this old is treated as already lost.
SEND_DEADLINE_SECONDS = WELCOME_WINDOW_SECONDS - 1.0
DEFAULT_TTL = 60.0
NAME_LOOKUP_MIN_SECONDS_LEFT = 8.0
# Waits between attempts of a send WeCom answered busy, 5xx or not at all, while the code lives
# and the batch has time for one more attempt (at most the WeCom client's timeout).
SEND_RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)
SEND_ATTEMPT_SECONDS = 5.0

_default_cache: caches.Expiring[MessageContent | None] = caches.Expiring("welcome:defaults", DEFAULT_TTL)


class DefaultWelcome(Model):
    """The welcome for contacts that came through no channel code, or through a code without a
    welcome of its own, as WeCom's console default does (None: no welcome)."""

    model_config = ConfigDict(extra="forbid")
    welcome: MessageContent | None


class DefaultWelcomeUpdate(DefaultWelcome):
    """The default welcome as the API accepts it: only content that can always be sent."""

    welcome: SendableContent | None


def default_welcome(corp_id: str) -> MessageContent | None:
    def load() -> MessageContent | None:
        from chalicelib.corps import items as corp_items

        raw = corp_items.get_default_welcome(corp_id)
        return MessageContent.model_validate(raw) if raw else None

    return _default_cache.get(corp_id, load)


def _now() -> float:
    """Wall-clock time, the welcome code's clock (a seam for tests)."""
    return time.time()


def _sleep(seconds: float) -> None:
    """The wait between send attempts (a seam for tests)."""
    time.sleep(seconds)


def set_default_welcome(corp_id: str, content: MessageContent | None) -> None:
    from chalicelib.corps import items as corp_items

    corp_items.set_default_welcome(corp_id, content.model_dump(mode="json") if content else None)
    _default_cache.forget(corp_id)


def _outcome(ctx: EventContext, channel: str, outcome: str, **details: Any) -> list[Any]:
    ev = ctx.event
    field = f"welcomes_{outcome}"
    counts = [counters.count(ctx.day, "corp", "all", **{field: 1}),
              counters.count(ctx.day, "channel", channel or "-", **{field: 1}),
              counters.count(ctx.day, "staff", ev.user_id, **{field: 1})]
    from chalicelib.customers.items import TimelineEntry

    entry = TimelineEntry(customer_id=ev.external_user_id, at=ev.create_time, kind=f"welcome_{outcome}",
                          staff_id=ev.user_id, details={k: v for k, v in details.items() if v is not None})
    return [customer_items.timeline(ctx.corp_id, entry, ctx.identity), *counts]


def _missed_before_send(ctx: EventContext, state: str) -> list[Any]:
    age = _now() - ctx.event.create_time
    logger.warning("welcome for %s missed: event %.1fs old", ctx.event.external_user_id, age)
    return _outcome(ctx, state, "missed", reason="expired_before_send", age_seconds=round(age, 1))


def _customer_name(ctx: EventContext) -> str | None:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors

    try:
        resp = corps.wecom_client(ctx.corp_id).get_external_contact(ctx.event.external_user_id)
        ctx.external_contact = resp.external_contact  # the profile: customers.on_add stores it
        return resp.external_contact.name
    except errors.WeComError as exc:  # greet without the name rather than not at all
        logger.warning("no name for %s: %r", ctx.event.external_user_id, exc)
        return None


def _staff_name(ctx: EventContext) -> str | None:
    from chalicelib.corps import staff

    return staff.name(ctx.corp_id, ctx.event.user_id)


@ROUTER.register(EVENT, "add_external_contact", urgent=True)
@ROUTER.register(EVENT, "add_half_external_contact", urgent=True)
def send_welcome(ctx: EventContext[AddExternalContact | AddHalfExternalContact]) -> list[Any]:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import WelcomeMessage
    from chalicelib.welcome import items as welcome_items

    ev = ctx.event
    if not ev.welcome_code:  # WeCom gives none when the console welcome is set or a chat exists
        return []
    state = ev.state or ""
    code = ctx.channel_code
    content = code.welcome if code and code.welcome else default_welcome(ctx.corp_id)
    if content is None:
        return []
    deadline = ev.create_time + SEND_DEADLINE_SECONDS
    if _now() > deadline:
        return _missed_before_send(ctx, state)
    # A name costs a WeCom call (and maybe a wait for a pacing slot): only with time to spare.
    name = (_customer_name(ctx) if content.needs_customer_name
            and deadline - _now() > NAME_LOOKUP_MIN_SECONDS_LEFT else None)
    staff_name = (_staff_name(ctx) if content.needs_staff_name
                  and deadline - _now() > NAME_LOOKUP_MIN_SECONDS_LEFT else None)
    if _now() > deadline:  # the lookup ate the window: don't spend a send slot on a dead code
        return _missed_before_send(ctx, state)
    try:
        text = content.render_text(customer_name=name, staff_name=staff_name)
        message = WelcomeMessage(welcome_code=ev.welcome_code, text={"content": text} if text else None,
                                 attachments=content.wecom_attachments() or None)
    except ValidationError as exc:  # content stored before today's rules: no retry can fix it
        logger.error("welcome for %s can never be sent: %s", ev.external_user_id, exc)
        return _outcome(ctx, state, "missed", reason="invalid_message",
                        error="; ".join(e["msg"] for e in exc.errors(include_url=False)))
    # Claim the code before the send. Two deliveries of one event (a WeCom retry, an SQS
    # duplicate) may run at once, and only one of their commits counts: the refused one must then
    # still count "sent", because the welcome WeCom refuses to send twice was ours.
    first = welcome_items.claim(ctx.corp_id, ev.welcome_code, now=_now())
    client = corps.wecom_client(ctx.corp_id)
    attempts, maybe_delivered = 0, False
    while True:
        attempts += 1
        try:
            client.send_welcome_msg(message)
            return _outcome(ctx, state, "sent", attempts=attempts if attempts > 1 else None)
        except errors.WelcomeCodeExpired:
            return _outcome(ctx, state, "missed", reason="code_expired")
        except errors.WelcomeAlreadySent:  # another delivery's, our own earlier attempt's, or another app's
            ours = not first or maybe_delivered
            return _outcome(ctx, state, "sent" if ours else "already_sent")
        except errors.InvalidArgument as exc:  # WeCom refuses the message itself: the same send never passes
            return _outcome(ctx, state, "missed", reason=type(exc).__name__, errcode=exc.errcode,
                            attempts=attempts)
        except (errors.FrequencyLimited, errors.WeComTimeout, errors.WeComUnavailable, errors.SystemBusy) as exc:
            # Deferring would outlive the code: retry here while it lives. Safe even after an
            # attempt that did deliver: the code is single-use, the retry then gets 41051.
            maybe_delivered = maybe_delivered or isinstance(exc, errors.WeComUnavailable)
            wait = _retry_wait(exc, attempts)
            if wait is None or _now() + wait > deadline or not ctx.has_time(wait + SEND_ATTEMPT_SECONDS):
                return _outcome(ctx, state, "missed", reason=type(exc).__name__, attempts=attempts)
            logger.info("welcome for %s: %r, retrying in %.1fs", ev.external_user_id, exc, wait)
            _sleep(wait)


def _retry_wait(exc: Exception, attempts: int) -> float | None:
    """How long to wait before attempt `attempts + 1` of a send that failed with `exc` (None: no more).

    Busy, 5xx or no answer: the waits of SEND_RETRY_WAITS, then give up (WeCom advises at most 3
    retries). 45009: WeCom's limits are counted per minute and the code lives 20 s, so waiting out
    the block (retry_after, 60 s) is never possible: keep trying, at the longest wait, for as long as
    the code lives; a refusal by our own pacing waits at least until its next slot."""
    from chalicelib.wecom import errors

    if isinstance(exc, errors.FrequencyLimited):
        wait = SEND_RETRY_WAITS[min(attempts, len(SEND_RETRY_WAITS)) - 1]
        return max(wait, exc.retry_after) if exc.local else wait
    return SEND_RETRY_WAITS[attempts - 1] if attempts <= len(SEND_RETRY_WAITS) else None
