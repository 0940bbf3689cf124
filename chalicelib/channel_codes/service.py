"""Channel codes (渠道活码): one permanent WeCom contact-way QR per store / poster / campaign /
staff member, carrying a `state` that attributes every new contact to its source, and
configuring the tags and the welcome message that contact gets.

Routing: a code routes to its staff members, or by a schedule (which staff in which hours), with
an optional daily cap per staff member and backup staff for when everyone is capped or off duty
(or the code is outside its validity window). The add that reaches a cap re-routes its code at
once (`enforce_cap`, from channel_codes/steps.py). `tick` re-evaluates routing every minute and calls
WeCom's update_contact_way only when the routed staff actually change: WeCom's frequency limits
are per corp per API, and rewriting every code on every tick (as some SCRMs do) burns them.
"""

from __future__ import annotations

import logging
import secrets as pysecrets
import time
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from chalicelib.channel_codes import items as code_items
from chalicelib.channel_codes.items import ChannelCodeItem, ScheduleRule
from chalicelib.platform import caches
from chalicelib.platform.content import MessageContent, SendableContent
from chalicelib.platform.errors import NotFound
from chalicelib.platform.model import Change, Model, integral
from chalicelib.store import counters

logger = logging.getLogger(__name__)

MAX_STAFF = 100  # contact way type 2 ("multi") user list
STATE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$"  # WeCom: <= 30 chars; not "-", the no-channel marker
LOOKUP_TTL = 60.0
MAX_EPOCH = 10**10  # Unix seconds: anything at or past this (year 2286) is a unit mistake (ms, µs)

# Request models are strict: JSON true is not 1, "5" is not 5, "yes" is not true. Their errors
# name the field (a field validator's error carries its field's location; a model validator's
# would carry none). Integers may be written 5.0 (JSON Schema's `integer` includes it).
Weekday = Annotated[int, Field(ge=1, le=7, description="1 = Monday ... 7 = Sunday"), BeforeValidator(integral)]
EpochSeconds = Annotated[int, Field(ge=0, lt=MAX_EPOCH, description="Unix time, seconds"), BeforeValidator(integral)]
DailyCap = Annotated[int, Field(ge=1, le=100_000, description="new contacts per staff member per day"),
                     BeforeValidator(integral)]
# Staff and tag ids: 1-64 characters, each at most once in a list (the schema says so too).
Ids = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                Field(json_schema_extra={"uniqueItems": True})]


def _ids(v: list[str]) -> list[str]:
    if len(set(v)) != len(v):
        raise ValueError("must not repeat an id")
    if any(not s or len(s) > 64 for s in v):
        raise ValueError("ids must be 1-64 characters")
    return v


class ScheduleRuleIn(ScheduleRule):
    """A schedule rule as operators write it: weekdays 1-7 without repeats, start before end."""

    model_config = ConfigDict(extra="forbid", strict=True)
    staff_ids: Ids = Field(min_length=1, max_length=100)
    weekdays: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7,
                                    description="1 = Monday ... 7 = Sunday, each at most once",
                                    json_schema_extra={"uniqueItems": True})
    end: str = Field("24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$",
                     description="HH:MM, later than `start` (24:00: the end of the day)")

    @field_validator("staff_ids")
    @classmethod
    def _staff(cls, v: list[str]) -> list[str]:
        return _ids(v)

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("must not repeat a weekday")
        return v

    @field_validator("end")
    @classmethod
    def _after_start(cls, v: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and v != "24:00" and v <= start:
            raise ValueError("a schedule rule must end after it starts")
        return v


class ChannelCodeCreate(Model):
    """Validation context (optional): `now` (epoch seconds, default the clock) and
    `check_future` (default true): valid_until must then be later than now."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=30, description="also WeCom's remark (<= 30 chars)")
    store: str | None = Field(None, max_length=64, description="store label, for stats")
    channel: str | None = Field(None, max_length=64, description="channel label (poster, receipt, ad…)")
    state: str | None = Field(None, pattern=STATE_PATTERN, description="custom state; generated if absent")
    staff_ids: Ids = Field(min_length=1, max_length=MAX_STAFF)
    backup_staff_ids: Ids = Field(default_factory=list, max_length=MAX_STAFF)
    schedule: list[ScheduleRuleIn] = Field(default_factory=list, max_length=50)
    daily_cap: DailyCap | None = None
    skip_verify: bool = True
    tag_ids: Ids = Field(default_factory=list, max_length=100)
    welcome: SendableContent | None = None
    valid_from: EpochSeconds | None = None
    valid_until: EpochSeconds | None = Field(None, description="Unix time, seconds; after valid_from, in the future")

    @field_validator("staff_ids", "backup_staff_ids", "tag_ids")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return _ids(v)

    @field_validator("valid_until")
    @classmethod
    def _window(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None:
            return v
        start = info.data.get("valid_from")
        if start is not None and v <= start:
            raise ValueError("valid_until must be after valid_from")
        ctx = info.context or {}
        now = ctx.get("now")
        if ctx.get("check_future", True) and v <= (time.time() if now is None else now):
            raise ValueError("valid_until must be in the future")
        return v

    def all_staff(self) -> list[str]:
        seen = dict.fromkeys([*self.staff_ids, *self.backup_staff_ids,
                              *(s for r in self.schedule for s in r.staff_ids)])
        return list(seen)


class ChannelCodeUpdate(Change):
    """Fields to change; absent fields stay as they are, null clears store, channel, daily_cap,
    welcome, valid_from and valid_until (the others cannot be null). The changed code as a whole is
    then validated as a ChannelCodeCreate (window order, and valid_until in the future if changed)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(None, min_length=1, max_length=30)
    store: str | None = Field(None, max_length=64)
    channel: str | None = Field(None, max_length=64)
    staff_ids: Ids = Field(None, min_length=1, max_length=MAX_STAFF)
    backup_staff_ids: Ids = Field(None, max_length=MAX_STAFF)
    schedule: list[ScheduleRuleIn] = Field(None, max_length=50)
    daily_cap: DailyCap | None = None
    skip_verify: bool = None
    tag_ids: Ids = Field(None, max_length=100)
    welcome: SendableContent | None = None
    valid_from: EpochSeconds | None = None
    valid_until: EpochSeconds | None = Field(None, description="Unix time, seconds; after valid_from, in the future "
                                                               "if changed")


class ChannelCodeView(Model):
    state: str
    name: str
    store: str | None
    channel: str | None
    staff_ids: list[str]
    backup_staff_ids: list[str]
    schedule: list[ScheduleRule]
    daily_cap: int | None
    skip_verify: bool
    tag_ids: list[str]
    welcome: MessageContent | None
    valid_from: int | None
    valid_until: int | None
    qr_code: str | None = Field(description="the permanent QR code URL to print")
    config_id: str
    routed_staff_ids: list[str]
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, item: ChannelCodeItem) -> ChannelCodeView:
        return cls.model_validate(item.model_dump())


class InvalidChannelCode(Exception):
    """The definition refers to staff members that do not exist (unknown tags: `unknown_tags`)."""

    def __init__(self, message: str, details: Any = None):
        super().__init__(message)
        self.details = details


class ChannelCodeNotFound(NotFound):
    what = "channel code"


class InvalidUpdate(Exception):
    """The changed code as a whole is invalid (e.g. its window now ends before it starts)."""

    def __init__(self, error: ValidationError):
        super().__init__("the channel code after this change is invalid")
        self.error = error


def _validate_references(corp_id: str, staff_ids: list[str], tag_ids: list[str]) -> None:
    from chalicelib.corps import staff
    from chalicelib.tags import service as tags

    tags.check_known(corp_id, {"tag_ids": tag_ids})  # unknown_tags, as wherever a request lists tags
    if staff_ids:
        missing = staff.unknown(corp_id, staff_ids)
        if missing:
            raise InvalidChannelCode("unknown staff members (not in WeCom's customer-contact list)",
                                     {"staff_ids": missing})


# -- routing -------------------------------------------------------------------------------------
def desired_staff(code: ChannelCodeItem | ChannelCodeCreate, *, at: datetime,
                  added_today: dict[str, int]) -> list[str]:
    """Who the code should route to at local time `at`, given today's adds per staff member."""
    epoch = at.timestamp()
    in_window = (not code.valid_from or epoch >= code.valid_from) and (
        not code.valid_until or epoch < code.valid_until)
    if not in_window:
        candidates = list(code.backup_staff_ids)
    elif code.schedule:
        hhmm = at.strftime("%H:%M")
        candidates = []
        for rule in code.schedule:
            if at.isoweekday() in rule.weekdays and rule.start <= hhmm < rule.end:
                candidates += [s for s in rule.staff_ids if s not in candidates]
    else:
        candidates = list(code.staff_ids)
    if code.daily_cap:
        candidates = [s for s in candidates if added_today.get(s, 0) < code.daily_cap]
    if not candidates:
        candidates = list(code.backup_staff_ids) or list(code.staff_ids)
    return sorted(dict.fromkeys(candidates))


def _local_now(corp_id: str, now: float) -> datetime:
    from chalicelib.corps import registry as corps

    corp = corps.runtime(corp_id)
    zone = ZoneInfo(corp.time_zone if corp else "Asia/Shanghai")
    return datetime.fromtimestamp(now, zone)


def _added_today(corp_id: str, state: str, day: str) -> dict[str, int]:

    return counters.channel_staff_adds(corp_id, day, state)


def _contact_way(code: ChannelCodeItem | None, *, req: ChannelCodeCreate | None = None,
                 routed: list[str], state: str, config_id: str | None = None) -> Any:
    from chalicelib.wecom.models import ContactWay

    src = req or code
    return ContactWay(
        config_id=config_id,
        type=None if config_id else 2,  # multi: routing may change the staff list later
        scene=None if config_id else 2,
        remark=src.name,
        skip_verify=src.skip_verify,
        state=None if config_id else state,
        user=routed,
    )


# -- operations ----------------------------------------------------------------------------------
def create(corp_id: str, req: ChannelCodeCreate, *, now: float | None = None) -> ChannelCodeItem:
    """Validate, reserve the state, create the contact way in WeCom, save. A refusal anywhere
    leaves WeCom and the store untouched (the reservation is released)."""
    from chalicelib.corps import registry as corps

    now = time.time() if now is None else now
    _validate_references(corp_id, req.all_staff(), req.tag_ids)
    state = req.state or f"c{pysecrets.token_hex(6)}"
    from chalicelib.wecom import errors

    code_items.reserve_state(corp_id, state)  # StateTaken if another code has it
    routed = desired_staff(req, at=_local_now(corp_id, now), added_today={})
    client = corps.wecom_client(corp_id)
    try:
        result = client.add_contact_way(_contact_way(None, req=req, routed=routed, state=state))
    except errors.WeComTimeout as exc:
        if not exc.maybe_executed:
            code_items.release_state(corp_id, state)
        # else WeCom may hold a contact way with this state: the reservation stays, so no second
        # code can ever share the state (the caller sees the error and picks another state).
        raise
    except BaseException:
        code_items.release_state(corp_id, state)
        raise
    item = ChannelCodeItem(
        **req.model_dump(exclude={"state"}), state=state, config_id=result.config_id,
        qr_code=result.qr_code, routed_staff_ids=routed, created_at=int(now), updated_at=int(now))
    try:
        code_items.save_new(corp_id, item)
    except BaseException:  # undo in WeCom what we could not record: no untracked contact way
        try:
            client.del_contact_way(result.config_id)
        except errors.WeComError:
            logger.exception("contact way %s created but neither saved nor deleted", result.config_id)
            raise
        code_items.release_state(corp_id, state)
        raise
    forget(corp_id, state)
    return item


def get(corp_id: str, state: str) -> ChannelCodeItem:
    item = code_items.get(corp_id, state)
    if item is None or item.status != "active":
        raise ChannelCodeNotFound(state)
    return item


def update(corp_id: str, state: str, req: ChannelCodeUpdate, *, now: float | None = None) -> ChannelCodeItem:
    from chalicelib.corps import registry as corps

    now = time.time() if now is None else now
    current = get(corp_id, state)
    changes = req.model_dump(exclude_unset=True)
    # The change is valid only together with what it leaves unchanged; an unchanged valid_until
    # may lie in the past (an expired code can still be renamed or given new staff).
    context = {"now": now, "check_future": changes.get("valid_until", current.valid_until) != current.valid_until}
    try:
        merged = ChannelCodeCreate.model_validate(
            {**current.model_dump(include=set(ChannelCodeCreate.model_fields) - {"state"}), **changes},
            context=context)
    except ValidationError as exc:
        raise InvalidUpdate(exc) from exc
    new_refs_staff = [s for s in merged.all_staff() if s not in set(current.staff_ids + current.backup_staff_ids)]
    _validate_references(corp_id, new_refs_staff, [t for t in merged.tag_ids if t not in current.tag_ids])
    routed = desired_staff(merged, at=_local_now(corp_id, now),
                           added_today=_added_today(corp_id, state, _local_now(corp_id, now).date().isoformat()))
    updated = ChannelCodeItem.model_validate({
        **current.model_dump(), **merged.model_dump(exclude={"state"}), "routed_staff_ids": routed,
        "updated_at": int(now), "version": current.version + 1})
    wecom_fields_changed = (routed != current.routed_staff_ids or merged.name != current.name
                            or merged.skip_verify != current.skip_verify)
    if wecom_fields_changed:
        corps.wecom_client(corp_id).update_contact_way(
            _contact_way(updated, routed=routed, state=state, config_id=current.config_id))
    code_items.save(corp_id, updated, expected_version=current.version)
    forget(corp_id, state)
    return updated


def delete(corp_id: str, state: str, *, now: float | None = None) -> None:
    """Delete the contact way in WeCom; keep the code (status deleted) so that contacts it
    brought stay attributed to it."""
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors

    now = time.time() if now is None else now
    current = get(corp_id, state)
    try:
        corps.wecom_client(corp_id).del_contact_way(current.config_id)
    except errors.InvalidArgument:
        logger.warning("contact way %s was already gone in WeCom", current.config_id)
    code_items.save(corp_id, current.model_copy(update={"status": "deleted", "updated_at": int(now),
                                                   "version": current.version + 1}),
               expected_version=current.version)
    forget(corp_id, state)


def tick(corp_ids: list[str], *, now: float | None = None) -> dict[str, int]:
    """Re-route scheduled / capped / windowed codes; WeCom is called only on a change."""
    now = time.time() if now is None else now
    checked = changed = failed = 0
    for corp_id in corp_ids:
        local = _local_now(corp_id, now)
        for code in code_items.routed_codes(corp_id):
            checked += 1
            try:
                changed += _reroute(corp_id, code, local=local, now=now)
            except Exception:  # one broken code (deleted in WeCom's console, 45009) must not stop the rest
                logger.exception("re-routing channel code %s/%s failed", corp_id, code.state)
                failed += 1
    return {"checked": checked, "changed": changed, "failed": failed}


def _reroute(corp_id: str, code: ChannelCodeItem, *, local: datetime, now: float,
             added_today: dict[str, int] | None = None) -> int:
    from chalicelib.corps import registry as corps

    if added_today is None:
        added_today = _added_today(corp_id, code.state, local.date().isoformat()) if code.daily_cap else {}
    routed = desired_staff(code, at=local, added_today=added_today)
    if routed == code.routed_staff_ids:
        return 0
    corps.wecom_client(corp_id).update_contact_way(
        _contact_way(code, routed=routed, state=code.state, config_id=code.config_id))
    try:
        code_items.save(corp_id, code.model_copy(update={
            "routed_staff_ids": routed, "updated_at": int(now), "version": code.version + 1}),
            expected_version=code.version)
    except code_items.VersionConflict:
        return 0  # an operator edit won; the next tick re-checks
    forget(corp_id, code.state)
    return 1


def enforce_cap(corp_id: str, state: str, staff_id: str, *, cap: int, day: str, now: float) -> int:
    """After an add through code `state` to `staff_id` was committed (counted on `day`): if it
    brought the staff member to the code's daily cap, re-route the code now rather than at the
    next minute tick. Reads after the add's commit, consistently: of adds committed concurrently
    on several instances, the last one sees them all, so no cap is passed by unnoticed. Calls
    WeCom only if the capped staff member is still routed (a replay, or a second add past the cap,
    changes nothing). Returns 1 if the contact way was changed."""
    local = _local_now(corp_id, now)
    if local.date().isoformat() != day:  # an add counted on another day caps nobody today
        return 0
    added = counters.channel_staff_adds(corp_id, day, state, consistent=True)
    if added.get(staff_id, 0) < cap:
        return 0
    code = code_items.get(corp_id, state, consistent=True)  # routed_staff_ids as switched anywhere
    if code is None or code.status != "active" or not code.daily_cap or staff_id not in code.routed_staff_ids:
        return 0
    return _reroute(corp_id, code, local=local, now=now, added_today=added)


# -- lookups on the hot path (welcome, tags) ------------------------------------------------------
_lookup_cache: caches.Expiring[ChannelCodeItem | None] = caches.Expiring("channel_codes:lookup", LOOKUP_TTL)


def lookup(corp_id: str, state: str | None) -> ChannelCodeItem | None:
    """The code a new contact came through, cached per instance for a minute: a burst of adds
    through one poster costs one GetItem, not one per add."""
    if not state:
        return None
    return _lookup_cache.get((corp_id, state), lambda: code_items.get(corp_id, state))


def forget(corp_id: str, state: str | None) -> None:
    """After a change to one code: this instance reads it afresh."""
    _lookup_cache.forget((corp_id, state or ""))
