"""Broadcasts (群发): the API's logic. Create checks everything before anything is stored or
queued (the segment and its filter, the content within WeCom's limits, the send time, groups and
staff of this corp, tags); a broadcast is stored `scheduled` in the due index and, when it is due
now, started at once (otherwise by the minute tick: `tick`). Planning and sending run on the
`sends` queue (planner.py, sender.py).

Entry points other code calls: `create(corp_id, BroadcastCreate)`, `get`, `cancel`, `tick(now=)`.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, Strict, model_validator
from pydantic.json_schema import SkipJsonSchema

from chalicelib.broadcasts import items as bitems
from chalicelib.broadcasts.items import BroadcastItem, Policy
from chalicelib.platform.content import PLACEHOLDER_CUSTOMER_NAME, MessageContent, SendableContent
from chalicelib.platform.errors import FieldError, NotFound
from chalicelib.platform.model import Model, integral
from chalicelib.segments.service import SegmentFilter
from chalicelib.store import ConditionFailed

logger = logging.getLogger(__name__)

SEND_AT_SKEW = 60  # a send_at this far in the past is taken as "now" (clocks differ); further: 400
MAX_AHEAD = 366 * 86400
MOMENT_TEXT_CHARS = 2000
# add_moment_task's link.title: "最多64个字节" (doc 95094, quoted so by WxJava and other SDKs): bytes of
# its UTF-8 (WeCom's JSON), not characters: 21 Chinese characters fit, 22 do not. Other links take 128.
MOMENT_LINK_TITLE_BYTES = 64
MEDIA_LIFETIME = 3 * 86400 - 3600  # a WeCom media_id lives 3 days (an hour's margin)
Id = Annotated[str, Field(min_length=1, max_length=64)]
Epoch = Annotated[int, Strict(), Field(ge=0, lt=10**11), BeforeValidator(integral)]  # "5" and true are not


class CustomersTarget(Model):
    """Customers a saved segment (or a filter given here, as segments take it) selects, each once,
    from one sender (README: the sender rule)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["segment_id"]}, {"required": ["filter"]}]})
    kind: Literal["customers"]
    segment_id: Id | SkipJsonSchema[None] = None
    # not `| None`: a refusal inside the filter is then named `target.customers.filter.<field>`
    filter: SegmentFilter = Field(None, description="a filter as segments take it, instead of a saved segment")

    @model_validator(mode="after")
    def _one(self) -> CustomersTarget:
        if (self.segment_id is None) == (self.filter is None):
            raise ValueError("give exactly one of segment_id, filter")
        return self


class GroupsTarget(Model):
    """Customer groups: all groups of these owners, the groups of a group code's pool, or a list;
    sent by each group's owner."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["owner_ids"]}, {"required": ["group_code_id"]}, {"required": ["chat_ids"]}]})
    kind: Literal["groups"]
    owner_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] | SkipJsonSchema[None] = None
    group_code_id: Id | SkipJsonSchema[None] = None
    chat_ids: Annotated[list[Id], Field(min_length=1, max_length=2000)] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _one(self) -> GroupsTarget:
        if sum(v is not None for v in (self.owner_ids, self.group_code_id, self.chat_ids)) != 1:
            raise ValueError("give exactly one of owner_ids, group_code_id, chat_ids")
        return self


class MomentsTarget(Model):
    """A Moments post (朋友圈): published by these staff members (all with customer contact when
    left out), visible to their customers carrying one of these corp tags (all when left out)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["moments"]
    sender_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)] | SkipJsonSchema[None] = None
    tag_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] | SkipJsonSchema[None] = None


Target = Annotated[CustomersTarget | GroupsTarget | MomentsTarget, Field(discriminator="kind")]


class BroadcastCreate(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    target: Target
    content: SendableContent = Field(description="text (`{staff_name}` is filled in per sender; "
                                                 "`{customer_name}` cannot be, in a mass message: refused) and up "
                                                 "to 9 attachments; Moments: text up to 2000 characters and 9 images "
                                                 "or 1 link")
    send_at: Epoch | SkipJsonSchema[None] = Field(None, description="epoch seconds; left out: now. Not in the past "
                                                                    f"(more than {SEND_AT_SKEW} s), at most a year "
                                                                    "ahead; sent within a minute of it, never before")


class Excluded(Model):
    capped: int = Field(description="over the corp's per-customer daily cap")
    lost_relation: int = Field(description="matched only through relations that are no longer active")
    no_sender: int = Field(description="matched only through staff members no longer in the staff directory")
    not_friend: int = Field(description="WeCom's fail_list: not a customer of the sender when sent")
    over_quota: int = Field(description="skipped by WeCom's own receive quota (read back by tracking)")


class BroadcastView(Model):
    broadcast_id: str
    name: str
    target: dict[str, Any]
    content: MessageContent
    send_at: int
    status: str
    day: str
    cap: int
    created_at: int
    updated_at: int
    planned: int = Field(description="recipients planned (customers or groups)")
    queued: int = Field(description="planned, not yet handed to WeCom")
    sent: int = Field(description="handed to WeCom (tasks created for their senders)")
    confirmed: int = Field(description="in tasks their staff member confirmed (tracking)")
    delivered: int = Field(description="reported delivered by WeCom once confirmed (tracking)")
    failed: int = Field(description="in calls WeCom refused for good")
    excluded: Excluded
    chunks: int
    chunks_settled: int
    progress: float = Field(ge=0, le=1, description="settled chunks / chunks (0 while planning)")
    error: str | None = None
    moment: dict[str, Any] | None = Field(None, description="Moments: moment_id, invalid_senders, invalid_tags "
                                                            "(once WeCom has finished the task)")

    @classmethod
    def of(cls, b: BroadcastItem) -> BroadcastView:
        queued = max(0, b.planned - b.sent - b.ex_not_friend - b.failed - b.cancelled_recipients)
        progress = 1.0 if b.status in ("sent", "failed") else (b.chunks_settled / b.chunks if b.chunks else 0.0)
        return cls(**b.model_dump(include={"broadcast_id", "name", "target", "send_at", "status", "day", "cap",
                                           "created_at", "updated_at", "planned", "sent", "failed", "chunks",
                                           "chunks_settled", "error", "confirmed", "delivered", "moment"}),
                   content=MessageContent.model_validate(b.content), queued=queued,
                   excluded=Excluded(capped=b.ex_capped, lost_relation=b.ex_lost_relation, no_sender=b.ex_no_sender,
                                     not_friend=b.ex_not_friend + b.unreachable, over_quota=b.over_quota),
                   progress=min(1.0, progress))


class BroadcastQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    status: bitems.Status | None = None


class RecipientRow(Model):
    recipient: str = Field(description="customer (external_userid) or group (chat_id)")
    sender: str
    status: str = Field(description="planned, queued, sent (task not confirmed yet), delivered, not_friend, "
                                    "over_quota, unsent (confirmed, WeCom did not send it), failed, cancelled")


class BroadcastNotFound(NotFound):
    what = "broadcast"


class BroadcastFinished(Exception):
    """Cancelling a broadcast that is sent, cancelled or failed already (409)."""


class InvalidBroadcast(FieldError):
    """A request its JSON Schema allows but that cannot be sent as meant (400 validation_error)."""


class UnknownReferences(FieldError):
    """Staff members or groups that are not this corp's (400 `unknown_staff` / `unknown_groups`),
    named at the request's field that lists them (`details`: [{field, message}], as FieldError)."""

    def __init__(self, field_name: str, what: str, ids: list[str]):
        super().__init__(field_name, f"unknown {what}: {', '.join(ids[:20])}"
                                     + (f" and {len(ids) - 20} more" if len(ids) > 20 else ""))
        self.ids = ids


class UnknownStaff(UnknownReferences):
    """Staff members not in the corp's staff directory; `details` names the field listing them."""


class UnknownGroups(UnknownReferences):
    """Groups that are not this corp's (or no longer active); `details` names the field listing them."""


# -- checks ------------------------------------------------------------------------------------------------
def _check_content(target: Any, content: MessageContent, *, ahead: int) -> None:
    if ahead > MEDIA_LIFETIME and any(getattr(a, "media_id", None) or getattr(a, "pic_media_id", None)
                                      for a in content.attachments):
        raise InvalidBroadcast("content.attachments", "a WeCom media_id lives 3 days: a broadcast sent later than "
                                                      "that needs images by pic_url")
    if content.needs_customer_name:
        raise InvalidBroadcast("content.text", f"{PLACEHOLDER_CUSTOMER_NAME} cannot be filled in by a mass "
                                               "message (one text goes to every recipient of a call)")
    if not isinstance(target, MomentsTarget):
        return
    if content.text and len(content.text) > MOMENT_TEXT_CHARS:
        raise InvalidBroadcast("content.text", f"Moments text is longer than {MOMENT_TEXT_CHARS} characters")
    if content.needs_staff_name:
        raise InvalidBroadcast("content.text", "Moments posts cannot fill in {staff_name}")
    kinds = {a.type for a in content.attachments}
    if kinds - {"image", "link"} or len(kinds) > 1 or ("link" in kinds and len(content.attachments) > 1):
        raise InvalidBroadcast("content.attachments", "Moments take up to 9 images, or 1 link")
    # add_moment_task takes images and a link's cover only as media/upload_attachment's ids (attachment
    # type 1): the sender uploads them from their URL just before the post. A media_id given here cannot
    # be known to be one (media/upload's, which the other content takes, would be refused when posting).
    for i, a in enumerate(content.attachments):
        field = f"content.attachments.{i}.{a.type}"  # as a schema refusal names it (the type included)
        if a.type == "image" and a.media_id:
            raise InvalidBroadcast(f"{field}.media_id", "Moments take images by pic_url (uploaded for Moments "
                                                        "just before the post), not by media_id")
        if a.type == "link" and not a.picurl:
            raise InvalidBroadcast(f"{field}.picurl", "a Moments link needs its cover image (picurl)")
        if a.type == "link" and a.desc:
            raise InvalidBroadcast(f"{field}.desc", "Moments links show no description")
        if a.type == "link" and len(a.title.encode()) > MOMENT_LINK_TITLE_BYTES:
            raise InvalidBroadcast(f"{field}.title", f"a Moments link title is at most {MOMENT_LINK_TITLE_BYTES} "
                                                     "bytes (UTF-8: 21 Chinese characters)")


def _check_target(corp_id: str, target: Any, *, at: str = "target") -> None:
    """`at`: where the target is in the caller's request (refusals name `<at>.<kind>.<field>`)."""
    from chalicelib.corps import staff

    def unknown_staff(name: str, ids: list[str]) -> None:
        missing = staff.unknown(corp_id, list(dict.fromkeys(ids)))
        if missing:
            raise UnknownStaff(f"{at}.{target.kind}.{name}", "staff members", missing)

    if isinstance(target, CustomersTarget):
        from chalicelib.segments import service as segments

        if target.filter is not None:
            segments.plan(corp_id, target.filter, at=f"{at}.customers.filter")
        else:
            segments.plan(corp_id, segments.filter_of(segments.get(corp_id, target.segment_id)),
                          at=f"{at}.customers.segment_id", saved=True)
    elif isinstance(target, GroupsTarget):
        if target.owner_ids:
            unknown_staff("owner_ids", target.owner_ids)
        elif target.group_code_id:
            from chalicelib.group_codes import service as group_codes

            group_codes.get(corp_id, target.group_code_id)  # GroupCodeNotFound: 404
        else:
            wanted = list(dict.fromkeys(target.chat_ids or []))
            found = {g.group_id for g in groups_of(corp_id, wanted) if g.status == "active"}
            missing = [c for c in wanted if c not in found]
            if missing:
                raise UnknownGroups(f"{at}.groups.chat_ids", "groups (not this corp's)", missing)
    else:
        if target.sender_ids:
            unknown_staff("sender_ids", target.sender_ids)
        if target.tag_ids:
            from chalicelib.tags import service as tags

            tags.check_known(corp_id, {f"{at}.moments.tag_ids": target.tag_ids})


def groups_of(corp_id: str, chat_ids: list[str]) -> list[Any]:
    """This corp's stored groups among `chat_ids` (100 per read)."""
    from chalicelib.groups import items as group_items
    from chalicelib.store import get_table, keys

    found = get_table().batch_get([keys.group(corp_id, c) for c in chat_ids])
    return [g for g in (group_items.group_of(i) for i in found) if g is not None]


def day_of(corp_id: str, at: int) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from chalicelib.corps import registry

    corp = registry.runtime(corp_id)
    return datetime.fromtimestamp(at, ZoneInfo(corp.time_zone if corp else "Asia/Shanghai")).date().isoformat()


def new_id() -> str:
    import secrets

    return f"b{time.time_ns() // 1_000_000:011x}{secrets.token_hex(3)}"


def check(corp_id: str, target: Any, content: MessageContent, *, ahead: int, at: str = "target") -> None:
    """What create checks of a target and its content sent `ahead` seconds from now (for callers that
    store them to send later: SOP calendars): InvalidBroadcast, UnknownStaff, UnknownGroups, SegmentNotFound, ....
    `at`: where the target is in the caller's request (UnknownStaff / UnknownGroups name the field there)."""
    _check_content(target, content, ahead=ahead)
    _check_target(corp_id, target, at=at)


# -- the API's operations -------------------------------------------------------------------------------------
def create(corp_id: str, req: BroadcastCreate, *, now: float | None = None,
           broadcast_id: str | None = None) -> BroadcastItem:
    """Check, store (scheduled), and start at once when due now. Nothing is stored on bad input.

    `broadcast_id` (a caller's derived id, e.g. an SOP occurrence's): idempotent — a broadcast with
    this id stored already is returned as it is (and started, if it is due and still scheduled:
    a caller that died between storing and starting), never created twice."""
    now_s = int(time.time() if now is None else now)
    if broadcast_id is not None:
        existing = bitems.get(corp_id, broadcast_id)
        if existing is not None:
            return _started_if_due(corp_id, existing, now=now_s)
    send_at = now_s if req.send_at is None else req.send_at
    if send_at < now_s - SEND_AT_SKEW:
        raise InvalidBroadcast("send_at", "send_at is in the past")
    if send_at > now_s + MAX_AHEAD:
        raise InvalidBroadcast("send_at", "send_at is more than a year ahead")
    send_at = max(send_at, now_s)
    _check_content(req.target, req.content, ahead=send_at - now_s)
    _check_target(corp_id, req.target)
    b = BroadcastItem(broadcast_id=broadcast_id or new_id(), name=req.name, target=req.target.model_dump(
                          mode="json", exclude_none=True, by_alias=True),
                      content=req.content.model_dump(mode="json", exclude_none=True), send_at=send_at,
                      day=day_of(corp_id, send_at), cap=bitems.get_policy(corp_id).per_customer_per_day,
                      status="scheduled", created_at=now_s, updated_at=now_s)
    try:
        bitems.put_new(corp_id, b)
    except ConditionFailed:
        if broadcast_id is None:
            raise
        b = get(corp_id, broadcast_id)  # stored meanwhile by another delivery of the same caller
    return _started_if_due(corp_id, b, now=now_s)


def _started_if_due(corp_id: str, b: BroadcastItem, *, now: int) -> BroadcastItem:
    if b.status == "scheduled" and b.send_at <= now:
        try:
            return start(corp_id, b.broadcast_id, now=now) or get(corp_id, b.broadcast_id)
        except Exception:  # stored and scheduled: the minute tick starts it (the caller must not send it twice)
            logger.exception("broadcast %s could not start now; the minute tick will", b.broadcast_id)
    return b


def start(corp_id: str, broadcast_id: str, *, now: int) -> BroadcastItem | None:
    """scheduled -> planning and its first step queued (once, however many ticks fire); when the
    queue refuses, it goes back to scheduled for the next tick."""
    from chalicelib.broadcasts import planner

    b = bitems.start(corp_id, broadcast_id, now=now)
    if b is None:
        return None
    try:
        planner.enqueue_first(corp_id, b)
    except Exception:
        bitems.unstart(corp_id, b, now=now)
        raise
    return b


def tick(*, now: float) -> dict[str, int]:
    """The minute tick: start every scheduled broadcast whose send_at has come (across corps)."""
    from chalicelib.broadcasts import planner

    started = resumed = failures = 0
    for corp_id, broadcast_id in bitems.due(now):
        try:
            b = bitems.get(corp_id, broadcast_id)
            if b is not None and b.status == "planning":  # no progress for STALL_SECONDS: resumed
                planner.resume(corp_id, b)
                bitems.watch(corp_id, broadcast_id, now=int(now))
                resumed += 1
            elif b is not None and b.status == "scheduled":
                started += start(corp_id, broadcast_id, now=int(now)) is not None
        except Exception:
            logger.exception("broadcast %s of %s could not start", broadcast_id, corp_id)
            failures += 1
    from chalicelib.broadcasts import tracking

    tracked = 0
    try:
        tracked = tracking.tick(now=now)
    except Exception:
        logger.exception("broadcast tracking tick failed")
        failures += 1
    return {"started": started, "resumed": resumed, "tracked": tracked, "failures": failures}


def get(corp_id: str, broadcast_id: str) -> BroadcastItem:
    b = bitems.get(corp_id, broadcast_id, totals=True)
    if b is None:
        raise BroadcastNotFound(broadcast_id)
    return b


def cancel(corp_id: str, broadcast_id: str, *, now: float | None = None) -> BroadcastItem:
    """Live -> cancelled. Chunks not yet sent are cancelled by the sends consumer (their claims
    released); tasks already created are recalled (cancel_groupmsg_send) through the queue."""
    now_s = int(time.time() if now is None else now)
    b = get(corp_id, broadcast_id)
    cancelled = bitems.cancel(corp_id, broadcast_id, now=now_s)
    if cancelled is None:
        raise BroadcastFinished(f"broadcast {broadcast_id} is {get(corp_id, broadcast_id).status}: "
                                "nothing left to cancel")
    if b.status != "scheduled":
        from chalicelib.broadcasts import planner

        planner.enqueue_recall(corp_id, broadcast_id)
    return bitems.with_totals(corp_id, cancelled)


class Received(Model):
    """A broadcast that planned a message to one customer (its cap claim held: not given back)."""

    broadcast_id: str
    name: str
    text: str | None = Field(description="the content's text, as written (placeholders unfilled)")
    day: str = Field(description="the cap's day (YYYY-MM-DD, corp time zone)")
    sender: str = Field(description="the staff member it was (to be) sent by")
    status: bitems.Status = Field(description="the broadcast's status (not this customer's own result: "
                                              "GET /broadcasts/{id}/recipients)")


def received(corp_id: str, customer_id: str, *, now: float | None = None,
             days: int = bitems.HISTORY_DAYS) -> list[Received]:
    """The broadcasts that claimed the customer in the last `days` days (corp time zone), newest
    first, from the cap claims (one read) and the broadcasts named (one read): a claim released
    (WeCom's fail list, a failed or cancelled call) is not listed; one WeCom later reported
    over_quota or unsent is (its result is in the broadcast's parts, not read here)."""
    from datetime import date, timedelta

    today = date.fromisoformat(day_of(corp_id, int(time.time() if now is None else now)))
    claims = bitems.held_claims(corp_id, customer_id, [(today - timedelta(days=d)).isoformat() for d in range(days)])
    found = {b.broadcast_id: b for b in bitems.get_many(corp_id, sorted({c.broadcast_id for c in claims}))}
    rows = [Received(broadcast_id=c.broadcast_id, name=b.name, text=b.content.get("text"), day=c.day, sender=c.sender,
                     status=b.status) for c in claims if (b := found.get(c.broadcast_id)) is not None]
    return sorted(rows, key=lambda r: (r.day, r.broadcast_id), reverse=True)


def get_policy(corp_id: str) -> Policy:
    return bitems.get_policy(corp_id)


class PolicyUpdate(Policy):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" and true are not numbers; 5.0 is

    @model_validator(mode="before")
    @classmethod
    def _whole(cls, data: Any) -> Any:
        return {k: integral(v) for k, v in data.items()} if isinstance(data, dict) else data


def put_policy(corp_id: str, policy: PolicyUpdate) -> Policy:
    stored = Policy.model_validate(policy.model_dump())
    bitems.put_policy(corp_id, stored)
    return stored
