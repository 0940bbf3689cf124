"""Group codes (群活码): one permanent WeCom join way per poster, whose groups never show full.

A code has a pool of groups (any number; a join way lists at most 5), optional time windows
that switch which pool is listed, optionally WeCom's auto_create_room, and a member threshold
below the 200 a scan can join. The product keeps the join way's list filled with open groups
(member count below the threshold) from the active pool:

- on the crossing callback (change_external_chat add_member pushing a listed group to the
  threshold; steps.py), and
- by the minute tick (a lost callback, a member leaving, a window boundary), and
- when the consumer is behind (a burst's backlog): a join handled more than BEHIND_SECONDS after
  its callback arrived reads WeCom's count of the code's listed groups (each at most every
  CATCH_UP_MIN_SECONDS per instance, less often far from the threshold), so the rotation does not
  wait for the crossing's own callback to come out of the queue (_catch_up).

Who rotates: the writer whose conditional update moves the code's `rotation` from n to n+1
(items.claim_rotation). Hundreds of joins at once may all see the crossing; one claim succeeds,
the others find the group no longer listed when they re-read. Only the claimer calls WeCom
(update_join_way is a full overwrite: the whole list), and only when the list changes. A push
that failed after its claim (`synced_rotation < rotation`) is pushed again by the next step or
tick once PUSH_GRACE has passed.
"""

from __future__ import annotations

import logging
import secrets as pysecrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from chalicelib.group_codes import items as code_items
from chalicelib.group_codes.items import Alert, AutoCreate, GroupCodeItem, GroupWelcome, PoolWindow
from chalicelib.platform import caches
from chalicelib.platform.model import Model, integral
from chalicelib.store import ConditionFailed
from chalicelib.wecom import models as wm

logger = logging.getLogger(__name__)

SCAN_JOIN_CAP = 200  # joins by scanning stop at 200 members (wecom-api.md section 4)
JOIN_WAY_MAX_CHATS = 5  # chat_id_list max 5 (doc 99547)
REOPEN_MARGIN = 10  # a group that reached the threshold is listed again only below threshold - 10
PUSH_GRACE = 10  # s: a claimed rotation not yet in WeCom after this is pushed again
VERIFY_MARGIN = 10  # the tick reads WeCom's member list for listed groups this close to the threshold
STATE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$"
LINKS_TTL = 30.0
UNKNOWN_NAMED = 10  # a refused pool names at most this many unknown groups (each one WeCom read)
# A join handled this long after its callback arrived means the queue is behind: WeCom's count of
# the group may be past the threshold through joins whose callbacks are still queued.
BEHIND_SECONDS = 1.0
CATCH_UP_MIN_SECONDS = 0.5  # per listed group and instance: the rotation's latency in a backlog
CATCH_UP_MAX_SECONDS = 5.0  # a group far from the threshold (at the rate it fills) is read this rarely
CATCH_UP_COST_FACTOR = 4  # and at most a quarter of the time goes to reading it (WeCom slow, pacing)

# Whole numbers as JSON Schema counts them (5.0 is one); lists the server refuses to repeat say so.
Weekday = Annotated[int, Field(ge=1, le=7), BeforeValidator(integral)]
Threshold = Annotated[int, Field(ge=1, le=SCAN_JOIN_CAP), BeforeValidator(integral)]
Seats = Annotated[int, Field(ge=1, le=100_000), BeforeValidator(integral)]
RoomBaseId = Annotated[int, Field(ge=0, le=1_000_000), BeforeValidator(integral)]
UNIQUE = {"uniqueItems": True}
_ATTACHMENTS = ("image", "link", "miniprogram", "file", "video")
ChatId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


# -- request models -------------------------------------------------------------------------------
def _unique(v: list[str]) -> list[str]:
    if len(set(v)) != len(v):
        raise ValueError("must not repeat a group")
    return v


class PoolWindowIn(PoolWindow):
    """Weekdays 1-7 and HH:MM in the corp's time zone, as channel codes' schedule rules."""

    model_config = ConfigDict(extra="forbid", strict=True)
    weekdays: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7,
                                    json_schema_extra=UNIQUE)
    start: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", description="after start")
    pool: list[ChatId] = Field(min_length=1, max_length=1000, json_schema_extra=UNIQUE)

    @model_validator(mode="after")
    def _check(self) -> PoolWindowIn:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("weekdays must not repeat")
        if self.end != "24:00" and self.end <= self.start:
            raise ValueError("a window must end after it starts")
        _unique(self.pool)
        return self


class AutoCreateIn(AutoCreate):
    model_config = ConfigDict(extra="forbid", strict=True)
    room_base_name: str = Field(min_length=1, max_length=40)
    room_base_id: RoomBaseId | None = None


# The welcome's parts as WeCom takes them (doc 92366): unknown fields (a typo) and what WeCom would
# refuse are refused at their field, before WeCom is touched. Its byte limits (UTF-8) are the
# template's own, not a welcome message's: text.content 3000 (send_welcome_msg takes 4000), link
# title 128 and desc 512, miniprogram title 64 (doc 92366 as QQ::weixin::work and the doc page quote it).
WELCOME_TEXT_BYTES = 3000


def _at_most_bytes(limit: int) -> Any:
    def check(v: str | None) -> str | None:
        if v is not None and len(v.encode()) > limit:
            raise ValueError(f"at most {limit} bytes (UTF-8: a Chinese character takes 3)")
        return v
    return AfterValidator(check)


class TextIn(wm.Text):
    model_config = ConfigDict(extra="forbid")
    content: Annotated[str, _at_most_bytes(WELCOME_TEXT_BYTES)]

    @field_validator("content")
    @classmethod
    def _not_filled_in(cls, v: str) -> str:
        from chalicelib.platform.content import PLACEHOLDERS

        if found := [p for p in PLACEHOLDERS if p in v]:
            raise ValueError(f"{', '.join(found)} is not filled in in a group welcome (WeCom sends its template as "
                             "it is): WeCom's %NICKNAME% stands for the member's name")
        return v


class ImageIn(wm.Image):
    model_config = ConfigDict(extra="forbid")
    media_id: str | None = Field(None, min_length=1, max_length=256)
    pic_url: str | None = Field(None, max_length=2048, pattern=r"^https?://")

    @model_validator(mode="after")
    def _source(self) -> ImageIn:
        if not (self.media_id or self.pic_url):
            raise ValueError("an image needs a media_id or a pic_url")
        return self


class LinkIn(wm.Link):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1), _at_most_bytes(128)]
    desc: Annotated[str | None, _at_most_bytes(512)] = None
    url: str = Field(max_length=2048, pattern=r"^https?://")
    picurl: str | None = Field(None, max_length=2048, pattern=r"^https?://")


class MiniProgramIn(wm.MiniProgram):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1), _at_most_bytes(64)]
    pic_media_id: str = Field(min_length=1)
    appid: str = Field(min_length=1)
    page: str = Field(min_length=1)


class MediaIn(wm.Media):
    model_config = ConfigDict(extra="forbid")
    media_id: str = Field(min_length=1)


class GroupWelcomeIn(GroupWelcome):
    """Text (<= 3000 bytes) and at most one of image, link, miniprogram, file, video (doc 92366)."""

    text: TextIn | None = None
    image: ImageIn | None = None
    link: LinkIn | None = None
    miniprogram: MiniProgramIn | None = None
    file: MediaIn | None = None
    video: MediaIn | None = None

    # As the schema states it: text or an attachment, and no two attachments.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": ["text"], "properties": {"text": {
                      "type": "object", "required": ["content"], "properties": {"content": {"minLength": 1}}}}},
                  *({"required": [k], "properties": {k: {"type": "object"}}} for k in _ATTACHMENTS)],
        "not": {"anyOf": [{"required": [a, b], "properties": {a: {"type": "object"}, b: {"type": "object"}}}
                          for i, a in enumerate(_ATTACHMENTS) for b in _ATTACHMENTS[i + 1:]]},
    })

    @model_validator(mode="after")
    def _limits(self) -> GroupWelcomeIn:
        attachments = [k for k in ("image", "link", "miniprogram", "file", "video") if getattr(self, k)]
        if len(attachments) > 1:
            raise ValueError("a group welcome has at most one attachment")
        if not (self.text and self.text.content) and not attachments:
            raise ValueError("a group welcome needs text or an attachment")
        return self


class GroupCodeCreate(Model):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=30, description="also the join way's remark (<= 30)")
    state: str | None = Field(None, pattern=STATE_PATTERN, description="for attribution; generated if absent; "
                                                                       "unique across channel and group codes")
    owner: str | None = Field(None, min_length=1, max_length=64, description="staff member alerted by app message")
    pool: list[ChatId] = Field(min_length=1, max_length=1000, description="groups listed outside windows",
                               json_schema_extra=UNIQUE)
    windows: list[PoolWindowIn] = Field(default_factory=list, max_length=20)
    auto_create: AutoCreateIn | None = None
    threshold: Threshold = Field(description="a group leaves the list at this member count")
    low_seats: Seats | None = Field(None, description="alert below this many open seats")
    welcome: GroupWelcomeIn | None = None

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: list[str]) -> list[str]:
        return _unique(v)


class GroupCodeUpdate(Model):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(None, min_length=1, max_length=30)
    owner: str | None = Field(None, min_length=1, max_length=64)
    pool: list[ChatId] | None = Field(None, min_length=1, max_length=1000, json_schema_extra=UNIQUE)
    windows: list[PoolWindowIn] | None = Field(None, max_length=20)
    auto_create: AutoCreateIn | None = None
    threshold: Threshold | None = None
    low_seats: Seats | None = None


class GroupCodeView(Model):
    code_id: str
    name: str
    state: str
    owner: str | None
    pool: list[str]
    windows: list[PoolWindow]
    auto_create: AutoCreate | None
    threshold: int
    low_seats: int | None
    welcome: GroupWelcome | None
    welcome_template_id: str | None
    config_id: str
    qr_code: str | None = Field(description="the permanent QR code to print")
    rooms: list[str] = Field(description="rooms WeCom auto-created for the code, taken into its pool")
    listed: list[str]
    status: str
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, item: GroupCodeItem) -> GroupCodeView:
        return cls.model_validate(item.model_dump())


class ListedGroup(Model):
    chat_id: str
    member_count: int | None
    open_seats: int


class GroupCodeStatus(Model):
    code_id: str
    status: str
    threshold: int
    listed: list[ListedGroup]
    pool: list[ListedGroup] = Field(description="the active pool (the window's, if one is open)")
    open_seats: int = Field(description="seats below the threshold in the active pool's open groups")
    auto_create: bool
    alerts: list[Alert]
    welcome: GroupWelcome | None
    welcome_template_id: str | None
    rotation: int
    synced: bool = Field(description="whether WeCom's join way has the latest list")


# -- errors -------------------------------------------------------------------------------------
class InvalidGroupCode(Exception):
    def __init__(self, message: str, details: Any = None):
        super().__init__(message)
        self.details = details


class GroupCodeNotFound(Exception):
    pass


class InvalidUpdate(Exception):
    def __init__(self, error: ValidationError):
        super().__init__("the group code after this change is invalid")
        self.error = error


# -- counts -------------------------------------------------------------------------------------
def member_counts(corp_id: str, chat_ids: list[str], *, store: bool = False,
                  unknown_max: int | None = None) -> dict[str, int | None]:
    """Members per group: the group item's exact `member_count` (chalicelib.groups keeps it from
    the change_external_chat callbacks), else WeCom's groupchat/get. None: no such group. `store`:
    keep such a read as the group's (groups' record_read), so its next event finds the count at
    its own version and reads WeCom no more (a pool group counted for a rotation before its first
    join; not for a request's checks, which write nothing). `unknown_max`: WeCom is read no more
    once that many groups were found to be none (a request's check of made-up ids); the groups
    left unread are left out."""
    from chalicelib.groups import items as group_items
    from chalicelib.store import get_table, keys

    wanted = list(dict.fromkeys(chat_ids))
    if not wanted:
        return {}
    found = {i["group_id"]: i for i in get_table().batch_get([keys.group(corp_id, c) for c in wanted])
             if "group_id" in i}
    counts: dict[str, int | None] = {}
    for chat_id in wanted:
        item = found.get(chat_id)
        if item is not None and item.get("status") == "dismissed":
            counts[chat_id] = None
        elif item is not None and item.get("member_count") is not None:
            counts[chat_id] = int(item["member_count"])
        elif unknown_max is not None and list(counts.values()).count(None) >= unknown_max:
            continue
        else:
            read_at = int(time.time())
            chat = _group_chat(corp_id, chat_id)
            counts[chat_id] = len(chat.member_list) if chat is not None else None
            if store and chat is not None:
                _store_read(corp_id, chat, seen=group_items.group_of(item), read_at=read_at)
    return counts


def _store_read(corp_id: str, chat: Any, *, seen: Any, read_at: int) -> bool:
    """Keep a read of groupchat/get as the group's stored read, over `seen` (the GroupItem as read
    before it; None: none stored). False when the stored group moved meanwhile: its events and
    reads keep it exact without this one."""
    from chalicelib.groups import items as group_items

    try:
        group_items.record_read(corp_id, chat, seen=seen, read_at=read_at)
    except ConditionFailed:
        return False
    return True


def _client(corp_id: str) -> Any:
    from chalicelib.corps import registry as corps

    return corps.wecom_client(corp_id)


# -- the plan -----------------------------------------------------------------------------------
def _local(corp_id: str, now: float) -> datetime:
    from chalicelib.corps import registry as corps

    corp = corps.runtime(corp_id)
    return datetime.fromtimestamp(now, ZoneInfo(corp.time_zone if corp else "Asia/Shanghai"))


def active_pool(code: GroupCodeItem | GroupCodeCreate, at: datetime) -> list[str]:
    """The pool of the windows open at local time `at` (in window order), else the default pool; then
    the rooms auto-created for the code."""
    hhmm = at.strftime("%H:%M")
    pool: list[str] = []
    for window in code.windows:
        if at.isoweekday() in window.weekdays and window.start <= hhmm < window.end:
            pool += [c for c in window.pool if c not in pool]
    rooms = getattr(code, "rooms", [])  # auto-created for the code: open whatever the window
    return list(dict.fromkeys([*(pool or code.pool), *rooms]))


@dataclass(frozen=True)
class Plan:
    listed: list[str]
    full: list[str]
    status: str
    open_seats: int


def plan(*, threshold: int, listed: list[str], full: list[str], pool: list[str], auto_create: bool,
         low_seats: int | None, counts: dict[str, int | None]) -> Plan:
    """What the join way should list. Pure: the same counts give the same list (so concurrent
    deciders agree, and nothing flaps: a full group is open again only REOPEN_MARGIN below)."""
    was_full = set(full)

    def is_open(chat_id: str) -> bool:
        n = counts.get(chat_id)
        return n is not None and n < (threshold - REOPEN_MARGIN if chat_id in was_full else threshold)

    open_groups = [c for c in pool if is_open(c)]
    keep = [c for c in listed if c in open_groups]
    new_listed = (keep + [c for c in open_groups if c not in keep])[:JOIN_WAY_MAX_CHATS]
    new_full = sorted({c for c, n in counts.items() if n is not None and n >= threshold}
                      | {c for c in was_full if counts.get(c) is not None and not is_open(c)})
    seats = sum(threshold - (counts[c] or 0) for c in open_groups)
    status = "active"
    if not new_listed:
        # No open group. Chosen so already (every listed group was full before this plan): kept while
        # they still take scans, or with auto-create until WeCom fills them and opens a room, so the
        # list does not flap between full groups as their counts move. Else the least-full ones;
        # auto-create: the fullest one, so WeCom opens a room soonest (fewest joins past the threshold).
        existing = sorted((c for c in dict.fromkeys([*listed, *pool]) if counts.get(c) is not None),
                          key=lambda c: (-counts[c], c) if auto_create else (counts[c], c))
        kept = [c for c in listed if c in was_full and counts.get(c) is not None]
        if kept and kept == listed and (auto_create or any(counts[c] < SCAN_JOIN_CAP for c in kept)):
            new_listed = kept
        else:
            new_listed = existing[:1 if auto_create else JOIN_WAY_MAX_CHATS] or list(listed)
        status = "low_capacity" if auto_create else "exhausted"
    elif low_seats and seats < low_seats:
        status = "low_capacity"
    return Plan(new_listed, new_full, status, seats)


def _plan_for(corp_id: str, code: GroupCodeItem, now: float, known: dict[str, int] | None = None,
              verify: bool = False) -> tuple[Plan, dict[str, int | None], list[str]]:
    pool = active_pool(code, _local(corp_id, now))
    counts = {**member_counts(corp_id, [c for c in dict.fromkeys([*pool, *code.listed]) if c not in (known or {})],
                              store=True),
              **(known or {})}
    if verify:
        counts.update(_verified(corp_id, code, counts))
    counts.update(_reopening(corp_id, code, counts, known or {}))
    return plan(threshold=code.threshold, listed=code.listed, full=code.full, pool=pool,
                auto_create=code.auto_create is not None, low_seats=code.low_seats, counts=counts), counts, pool


def _join_way(code: GroupCodeItem | GroupCodeCreate, listed: list[str], *, state: str,
              config_id: str | None = None) -> Any:
    from chalicelib.wecom.models import JoinWay

    auto = code.auto_create
    return JoinWay(config_id=config_id, scene=2, remark=code.name, auto_create_room=1 if auto else 0,
                   room_base_name=auto.room_base_name if auto else None,
                   room_base_id=auto.room_base_id if auto else None, chat_id_list=listed, state=state)


# -- rotation -----------------------------------------------------------------------------------
def _verified(corp_id: str, code: GroupCodeItem, counts: dict[str, int | None]) -> dict[str, int | None]:
    """The tick's check against a lost callback: listed groups within VERIFY_MARGIN of the threshold
    are read from WeCom (groups.service.refresh_members stores the read), the others trusted."""
    from chalicelib.groups import service as groups

    out: dict[str, int | None] = {}
    for chat_id in code.listed:
        n = counts.get(chat_id)
        if n is not None and n < code.threshold - VERIFY_MARGIN:
            continue
        try:
            group = groups.refresh_members(corp_id, chat_id, client=_client(corp_id))
        except groups.MembersMoving:
            continue  # changing as we read: the callbacks are flowing, the stored count will do
        out[chat_id] = group.member_count if group is not None else None
    return out


def _reopening(corp_id: str, code: GroupCodeItem, counts: dict[str, int | None],
               known: dict[str, int]) -> dict[str, int | None]:
    """Full groups whose stored count says they reopened are read from WeCom first: in a burst a
    group delisted on WeCom's count keeps a stored count far behind it while its callbacks queue,
    and listing it again on that count would flap (rare otherwise: members leaving)."""
    from chalicelib.groups import service as groups

    out: dict[str, int | None] = {}
    for chat_id in code.full:
        n = counts.get(chat_id)
        if chat_id in known or n is None or n >= code.threshold - REOPEN_MARGIN:
            continue
        try:
            group = groups.refresh_members(corp_id, chat_id, client=_client(corp_id))
        except groups.MembersMoving:
            out[chat_id] = code.threshold  # changing as we read: not reopened now, the next re-plan sees
            continue
        out[chat_id] = group.member_count if group is not None else None
    return out


def rotate(corp_id: str, code: GroupCodeItem, *, now: float, reason: str, known: dict[str, int] | None = None,
           verify: bool = False) -> bool:
    """Re-plan `code`; if the list or status changes, claim the change (exactly one writer wins)
    and push the whole list to WeCom. True if this call changed the code. `known`: counts the
    caller has that the store does not have yet (the event being handled commits after its steps)."""
    for _ in range(3):
        p, _counts, _pool = _plan_for(corp_id, code, now, known, verify)
        if p.listed == code.listed and p.status == code.status and p.full == code.full:
            _push_if_stale(corp_id, code, now=now)
            return False
        changes: dict[str, Any] = {"listed": p.listed, "full": p.full, "status": p.status}
        alert = None
        if p.status in ("low_capacity", "exhausted") and p.status != code.status:
            alert = Alert(at=int(now), kind=p.status, open_seats=p.open_seats)
            changes["alerts"] = [*code.alerts, alert][-code_items.MAX_ALERTS:]
        try:
            claimed = code_items.claim_rotation(corp_id, code, changes, now=int(now))
        except ConditionFailed:
            fresh = code_items.get(corp_id, code.code_id, consistent=True)
            if fresh is None or fresh.status == "deleted":
                return False
            code = fresh
            continue
        logger.info("group code %s/%s rotation %d (%s): %s -> %s", corp_id, code.code_id, claimed.rotation,
                    reason, code.listed, p.listed)
        if p.listed != code.listed:
            _push(corp_id, claimed, now=now)
        elif code.synced_rotation == code.rotation:  # same list, already in WeCom: nothing to send
            code_items.mark_synced(corp_id, code.code_id, claimed.rotation, now=int(now))
        # else the last list's push is under way (its pusher finds this rotation and pushes again)
        # or failed (pushed again after PUSH_GRACE): marking this one synced would hide it
        if alert is not None:
            _notify(corp_id, claimed, alert)
        return True
    return False


MAX_REPUSHES = 5  # pushes in a row each overtaken by a newer claim: then logged (not seen even in a burst)


def _push(corp_id: str, code: GroupCodeItem, *, now: float) -> None:
    """Send `code`'s whole list (update_join_way overwrites), then mark its rotation synced. Pushes
    of rotations n and n+1 by different consumers may land in either order: when a newer rotation
    was claimed by the time this push is answered, the newer push may have landed first, so the
    newest list is pushed again; the push that lands last is then always the newest rotation's
    (docs/architecture.md, "Group codes")."""
    for _ in range(MAX_REPUSHES):
        _client(corp_id).update_join_way(_join_way(code, code.listed, state=code.state, config_id=code.config_id))
        if code_items.mark_synced(corp_id, code.code_id, code.rotation, now=int(now)):
            return
        fresh = code_items.get(corp_id, code.code_id, consistent=True)
        if fresh is None or fresh.status == "deleted":
            return
        logger.info("group code %s/%s: rotation %d claimed during the push of %d, pushing it again", corp_id,
                    code.code_id, fresh.rotation, code.rotation)
        code = fresh
    logger.warning("group code %s/%s: rotations kept moving during %d pushes; synced_rotation may claim a list "
                   "WeCom does not have", corp_id, code.code_id, MAX_REPUSHES)


def _push_if_stale(corp_id: str, code: GroupCodeItem, *, now: float) -> None:
    """A claimed rotation whose push failed (the claimer crashed, WeCom refused): push it again."""
    if code.synced_rotation < code.rotation and now - code.pushed_at >= PUSH_GRACE:
        _push(corp_id, code, now=now)


def _notify(corp_id: str, code: GroupCodeItem, alert: Alert) -> None:
    """Low capacity / exhausted: an app message to the code's owner when the corp has an agent id.
    Best effort: the alert is recorded (and listed in the status) whatever WeCom answers."""
    from chalicelib.corps import items as corp_items
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import AppTextMessage, Text

    corp = corp_items.get_corp(corp_id)
    if not code.owner or corp is None or not corp.agent_id:
        return
    text = (f"Group code \"{code.name}\": {alert.kind.replace('_', ' ')}, {alert.open_seats} open seats left. "
            f"Add groups to its pool.")
    try:
        _client(corp_id).send_app_message(AppTextMessage(touser=code.owner, agentid=int(corp.agent_id),
                                                         text=Text(content=text)))
    except (errors.WeComError, ValueError):
        logger.exception("alert for group code %s/%s not sent", corp_id, code.code_id)


@dataclass(frozen=True)
class JoinHandled:
    ops: list[Any]  # for the event's commit
    read_stored: bool = False  # WeCom's member list was read and stored as the group's: its item moved


def after_join(corp_id: str, code_id: str, chat_id: str, *, members: list[str], scene: int | None,
               versions: tuple[str | None, str | None], group: Any, day: str, now: float, at: int,
               behind: bool = False) -> JoinHandled:
    """One add_member callback (member versions `versions` = LastMemVer, CurMemVer) for a group in
    `code_id`'s pool (`group`: its item as the event read it; `at`: its CreateTime): count joins past the threshold (a
    counter op for the event's commit) and rotate if a listed group reached it. The code comes from
    a per-instance cache; a crossing re-reads it before deciding (claim_rotation decides anyway).
    A read of WeCom's member list made for a group never counted is stored as the group's read
    (`read_stored`), so groups' step counts the event from it rather than reading WeCom again.
    `behind`: the event waited in the queue (BEHIND_SECONDS): WeCom's counts may be ahead (_catch_up)."""
    from chalicelib.store import counters

    code = cached_code(corp_id, code_id)
    if code is None or code.status == "deleted":
        return JoinHandled([])
    joined = len(members) or 1
    read_stored = read = False
    around = _count_around(group, versions, joined)
    ops: list[Any] = []
    if around is not None:
        before, count = around
        over = max(0, count - max(code.threshold, before)) if scene == 3 else 0
        crossed = before < code.threshold <= count
    elif _counted_below(group, code.threshold, at=at, members=members):
        count, over, crossed = None, 0, False  # a stored read after this join still had seats left
    else:  # no stored count at this event's version: WeCom's member list (join order) decides
        read_at, read = int(time.time()), True
        chat = _group_chat(corp_id, chat_id)
        member_list = list(chat.member_list) if chat is not None else None
        # A group never counted (its first versioned event) keeps the read: groups' step would
        # read WeCom for it next. A gap in a counted group (a burst out of order) does not: a
        # later event's read soon counts it, and storing each would cost more than it saves.
        uncounted = group is None or group.member_count is None
        read_stored = chat is not None and uncounted and _store_read(corp_id, chat, seen=group, read_at=read_at)
        count = len(member_list) if member_list is not None else None
        place = {m.userid: i + 1 for i, m in enumerate(member_list or [])}
        places = [place[m] for m in members if m in place]
        over = sum(1 for p in places if p > code.threshold) if scene == 3 else 0
        crossed = bool(places) and min(places) - 1 < code.threshold <= max(places)
    if over:
        ops.append(counters.count(day, "group_code", code_id, over_threshold_joins=over))
    if count is not None and count >= code.threshold and (crossed or chat_id in code.listed):
        _delist_full(corp_id, code_id, chat_id, count, now=now)
    elif code.synced_rotation < code.rotation and now - code.pushed_at >= PUSH_GRACE:
        fresh = code_items.get(corp_id, code_id, consistent=True)  # never push a cached (older) list
        if fresh is not None and fresh.status != "deleted":
            _code_cache.put((corp_id, code_id), fresh)
            _push_if_stale(corp_id, fresh, now=now)
    elif behind:
        _catch_up(corp_id, code, chat_id, read=chat_id if read else None, now=now)
    return JoinHandled(ops, read_stored)


def _delist_full(corp_id: str, code_id: str, chat_id: str, count: int, *, now: float) -> None:
    """`chat_id` has `count` members, at or past the code's threshold: rotate it out, unless the
    code (read again: the cached copy may predate a rotation) no longer lists it."""
    fresh = code_items.get(corp_id, code_id, consistent=True)
    if fresh is not None and fresh.status != "deleted" and chat_id in fresh.listed:
        rotate(corp_id, fresh, now=now, reason=f"{chat_id} reached {count}", known={chat_id: count})
        _code_cache.forget((corp_id, code_id))  # re-read by the next join: the rotation moved it
    else:  # already rotated (by another join or instance): later joins into the group need no read
        _code_cache.put((corp_id, code_id), fresh)


@dataclass
class _CatchUp:
    """The last catch-up read of a listed group on this instance: when, what WeCom counted, how
    fast the group was filling between the two last reads (members per second; None: one read yet)."""

    at: float
    count: int
    rate: float | None = None
    took: float = 0.0  # seconds the read took


def _catch_up_due(corp_id: str, chat_id: str, threshold: int) -> bool:
    """Whether a join handled behind the queue should read WeCom's count of its group now: at
    least CATCH_UP_MIN_SECONDS after the last read; a group that was far from the threshold at the
    rate it filled waits half the time it needed to get there (at most CATCH_UP_MAX_SECONDS); and at
    least CATCH_UP_COST_FACTOR times what the last read took."""
    last = _catch_ups.get((corp_id, chat_id))
    if last is None:
        return True
    seats = max(0, threshold - last.count)
    if last.rate is None or seats <= VERIFY_MARGIN:
        wait = 0.0  # the first rate is measured soon; a group this close is read at the minimum interval
    else:
        wait = seats / last.rate / 2 if last.rate > 0 else CATCH_UP_MAX_SECONDS
    least = max(CATCH_UP_MIN_SECONDS, CATCH_UP_COST_FACTOR * last.took)
    return time.monotonic() >= last.at + min(CATCH_UP_MAX_SECONDS, max(least, wait))


def _catch_up(corp_id: str, code: GroupCodeItem, chat_id: str, *, read: str | None, now: float) -> None:
    """The queue is behind: WeCom's groups may have filled through joins whose callbacks are still
    queued, the crossing's among them. A join of any of the code's groups (`chat_id`), handled
    late, reads WeCom's counts (each group when due) and rotates out a group that reached the
    threshold, rather than wait for its callbacks to come out of the backlog: the listed groups in
    turn up to the first open one (WeCom fills them in turn, so the next may be filling with none
    of its callbacks out of the queue yet, and those after an open one take no one), then the join's
    own group. `read`: a group this join just read (open, or it would have rotated). Best effort (a
    refused read leaves the rotation to the crossing's event and the minute tick); a read is not
    stored as the group's (its count moves by its queued events), and the rotation's claim keeps
    it exactly once, whoever else sees the crossing."""
    listed = [c for c in code.listed if c not in code.full]  # (full: an exhausted pool keeps full groups listed)

    def check(chat: str) -> str | None:
        """'rotated', 'open', or None (not known)."""
        if chat == read:
            return "open"
        if not _catch_up_due(corp_id, chat, code.threshold):
            last = _catch_ups.get((corp_id, chat))
            return "open" if last is not None and last.count < code.threshold else None
        count = _catch_up_count(corp_id, chat)
        if count is None:
            return None
        if count < code.threshold:
            return "open"
        _delist_full(corp_id, code.code_id, chat, count, now=now)
        return "rotated"  # the code moved: the next late join reads its new list

    seen = set()
    for chat in listed:
        seen.add(chat)
        state = check(chat)
        if state == "rotated":
            return
        if state == "open":
            break
    if chat_id in listed and chat_id not in seen:  # in case WeCom fills them otherwise: its own group
        check(chat_id)


def _catch_up_count(corp_id: str, chat_id: str) -> int | None:
    """WeCom's member count of `chat_id` now, noted for _catch_up_due (None: not read)."""
    from chalicelib.wecom import errors

    mono = time.monotonic()
    last = _catch_ups.get((corp_id, chat_id))
    _catch_ups[(corp_id, chat_id)] = _CatchUp(mono, last.count, last.rate) if last else _CatchUp(mono, 0)
    try:
        chat = _group_chat(corp_id, chat_id)
    except errors.WeComError as exc:  # WeCom's limits included: this read is never worth a retry
        logger.info("group codes: catch-up read of %s/%s refused: %s", corp_id, chat_id, exc)
        return None
    if chat is None:
        return None
    count = len(chat.member_list)
    rate = max(0.0, (count - last.count) / (mono - last.at)) if last is not None and mono > last.at else None
    _catch_ups[(corp_id, chat_id)] = _CatchUp(mono, count, rate, took=time.monotonic() - mono)
    return count


def _counted_below(group: Any, threshold: int, *, at: int, members: list[str]) -> bool:
    """Whether the stored count already includes this join (a read of WeCom's member list after it)
    and is below the threshold: the join crossed nothing and joined below the threshold (a count
    only rises between the join and the read, unless members left, which WeCom's list would not
    show either), so WeCom's list need not be read for it."""
    from chalicelib.groups import items as group_items

    return (group is not None and group.member_count is not None and group.member_count < threshold
            and group_items.in_read(group, at=at, joined=members))


def _count_around(group: Any, versions: tuple[str | None, str | None], joined: int) -> tuple[int, int] | None:
    """(members before, after) this add_member event from the exact stored count (chalicelib.groups
    moves it in the event's own commit, which comes after this step): stored at the event's
    LastMemVer -> count, count + joined; at its CurMemVer -> count - joined, count. None when the
    stored count is elsewhere (a gap, concurrent events, not counted yet)."""
    last, cur = versions
    if not (last and cur) or group is None or group.member_count is None:
        return None
    if group.member_version == last:
        return group.member_count, group.member_count + joined
    if group.member_version == cur:
        return group.member_count - joined, group.member_count
    return None


def cached_code(corp_id: str, code_id: str) -> GroupCodeItem | None:
    """The code item, cached per instance for LINKS_TTL: a join only needs its threshold, pool and
    listed groups, and every decision that changes it re-reads it (crossings, stale pushes)."""
    return _code_cache.get((corp_id, code_id), lambda: code_items.get(corp_id, code_id))


ROOM_CHECK_TTL = 600.0  # s: a group found not to be an auto-created room is not read again meanwhile
JOIN_SCENE_SCAN = 3


def adopt_room(corp_id: str, chat_id: str, *, members: list[str], seen: Any, now: float) -> str | None:
    """A scan join into a group in no code's pool: if it is a room WeCom's auto_create_room opened
    for a group code, take it into that code's rooms and return the code's id. WeCom's callback does
    not say which join way a member came through; groupchat/get does (member `state`, the join way's):
    a member who joined by scan with the state of a code that auto-creates rooms makes the group
    that code's room, which is listed now (the next full-overwrite update keeps it until it fills).
    The read is stored as groups' read (over `seen`, the group as the event read
    it), so the event's count needs no second read."""
    from chalicelib.groups import items as group_items

    mono = time.monotonic()
    if _not_rooms.get((corp_id, chat_id), 0.0) > mono:
        return None
    read_at = int(time.time())
    chat = _group_chat(corp_id, chat_id)
    if chat is None:
        return None
    joined = set(members)
    states = {m.state for m in chat.member_list if m.state and m.join_scene == JOIN_SCENE_SCAN
              and (m.userid in joined or not joined)}
    for state in sorted(states):
        code_id = code_items.code_of_state(corp_id, state)
        code = code_items.get(corp_id, code_id, consistent=True) if code_id else None
        if code is None or code.status == "deleted" or code.auto_create is None:
            continue
        try:
            group_items.record_read(corp_id, chat, seen=seen, read_at=read_at)
        except ConditionFailed:
            pass  # the stored group moved meanwhile: groups' step reads it as it would have
        if code_items.add_room(corp_id, code_id, chat_id):
            logger.info("group code %s/%s: auto-created room %s taken into its rooms", corp_id, code_id, chat_id)
        _links.forget((corp_id, chat_id))
        _code_cache.forget((corp_id, code_id))
        fresh = code_items.get(corp_id, code_id, consistent=True)
        if fresh is not None and fresh.status != "deleted":
            rotate(corp_id, fresh, now=now, reason=f"room {chat_id} auto-created")  # list it
        return code_id
    _not_rooms[(corp_id, chat_id)] = mono + ROOM_CHECK_TTL
    return None


def _group_chat(corp_id: str, chat_id: str) -> Any:
    from chalicelib.wecom import errors

    try:
        return _client(corp_id).get_groupchat(chat_id).group_chat
    except errors.ApiError as exc:
        if isinstance(exc, (errors.InvalidArgument, errors.NotFound)) or exc.errcode == 90501:
            return None
        raise


def codes_of_chat(corp_id: str, chat_id: str) -> list[str]:
    """The codes whose pool holds `chat_id`, cached per instance for LINKS_TTL (a code changed on
    another instance is seen by the minute tick meanwhile)."""
    return _links.get((corp_id, chat_id), lambda: code_items.codes_of_chat(corp_id, chat_id))


_links: caches.Expiring[list[str]] = caches.Expiring("group_codes:links", LINKS_TTL)
_code_cache: caches.Expiring[GroupCodeItem | None] = caches.Expiring("group_codes:codes", LINKS_TTL)
_not_rooms: dict[tuple[str, str], float] = {}
caches.register("group_codes:not_rooms", _not_rooms.clear)
_catch_ups: dict[tuple[str, str], _CatchUp] = {}
caches.register("group_codes:catch_ups", _catch_ups.clear)


def _forget() -> None:
    """A code was created, edited or deleted on this instance: its links and item are read again."""
    _links.clear()
    _code_cache.clear()


def tick(corp_id: str, *, now: float | None = None) -> dict[str, int]:
    """Re-check every active code of the corp: counts (one BatchGetItem per code; groupchat/get
    for listed groups within VERIFY_MARGIN of the threshold, so a lost callback cannot leave a full
    group listed), windows, stale pushes. update_join_way only for a code whose list changes."""
    now = time.time() if now is None else now
    result = {"checked": 0, "rotated": 0, "failed": 0}
    for code in code_items.active_codes(corp_id):
        result["checked"] += 1
        try:
            result["rotated"] += rotate(corp_id, code, now=now, reason="tick", verify=True)
        except Exception:  # one broken code (deleted in WeCom, 45009) must not stop the others
            logger.exception("group code %s/%s: tick failed", corp_id, code.code_id)
            result["failed"] += 1
    return result


# -- operator operations ------------------------------------------------------------------------
def _check_chats(corp_id: str, chat_ids: list[str]) -> None:
    """Every group must be one of this corp's customer groups (another corp's chat id is unknown
    here): read-only checks, before anything is written or WeCom is changed. A pool of made-up ids
    costs at most UNKNOWN_NAMED groupchat/get calls (WeCom's quota; a request outlasting API
    Gateway's 29 s would answer 504): the 400 names the first ones found."""
    counts = member_counts(corp_id, chat_ids, unknown_max=UNKNOWN_NAMED)
    unknown = [c for c in chat_ids if c in counts and counts[c] is None]
    if unknown:
        raise InvalidGroupCode("unknown groups (not this corp's customer groups)", {"chat_ids": unknown})


def _check_owner(corp_id: str, owner: str | None) -> None:
    from chalicelib.corps import staff

    if owner and staff.unknown(corp_id, [owner]):
        raise InvalidGroupCode("unknown staff member", {"owner": owner})


def create(corp_id: str, req: GroupCodeCreate, *, now: float | None = None) -> GroupCodeItem:
    """Validate, claim the state, create the welcome template and the join way, save. A refusal
    anywhere undoes what was done in WeCom and releases the state."""
    from chalicelib.wecom import errors

    now = time.time() if now is None else now
    chats = list(dict.fromkeys([*req.pool, *(c for w in req.windows for c in w.pool)]))
    _check_chats(corp_id, chats)
    _check_owner(corp_id, req.owner)
    code_id = f"g{pysecrets.token_hex(6)}"
    state = req.state or code_id
    code_items.claim_state(corp_id, state, code_id)
    client = _client(corp_id)
    undo: list[Any] = [lambda: code_items.release_state(corp_id, state, code_id)]
    try:
        template_id = None
        if req.welcome is not None:
            template_id = client.add_group_welcome_template(_template(req.welcome)).template_id
            undo.append(lambda: client.del_group_welcome_template(template_id))
        counts = member_counts(corp_id, chats, store=True)
        p = plan(threshold=req.threshold, listed=[], full=[], pool=active_pool(req, _local(corp_id, now)),
                 auto_create=req.auto_create is not None, low_seats=req.low_seats, counts=counts)
        added = client.add_join_way(_join_way(req, p.listed, state=state))
        undo.append(lambda: client.del_join_way(added.config_id))
        qr = client.get_join_way(added.config_id).join_way.qr_code
        item = GroupCodeItem(**req.model_dump(exclude={"state", "welcome"}), welcome=req.welcome, code_id=code_id,
                             state=state, welcome_template_id=template_id, config_id=added.config_id, qr_code=qr,
                             listed=p.listed, full=p.full, status=p.status, created_at=int(now), updated_at=int(now))
        code_items.save_new(corp_id, item)
    except errors.WeComTimeout as exc:
        if not exc.maybe_executed:
            _undo(undo)
        raise
    except BaseException:
        _undo(undo)
        raise
    _forget()
    return item


def _undo(steps: list[Any]) -> None:
    for step in reversed(steps):
        try:
            step()
        except Exception:  # noqa: BLE001  (logged; the original error is what the caller sees)
            logger.exception("undo step failed")


def _template(welcome: GroupWelcome, template_id: str | None = None) -> Any:
    from chalicelib.wecom.models import GroupWelcomeTemplate

    return GroupWelcomeTemplate(template_id=template_id, **welcome.model_dump(exclude_none=True))


def get(corp_id: str, code_id: str) -> GroupCodeItem:
    code = code_items.get(corp_id, code_id)
    if code is None or code.status == "deleted":
        raise GroupCodeNotFound(code_id)
    return code


def update(corp_id: str, code_id: str, req: GroupCodeUpdate, *, now: float | None = None) -> GroupCodeItem:
    """Change the definition, then re-plan: WeCom's join way is updated only if its list or
    settings change. Retried on a concurrent rotation (the edit is applied to the fresh code)."""
    now = time.time() if now is None else now
    changes = req.model_dump(exclude_unset=True)
    for _ in range(3):
        current = get(corp_id, code_id)
        try:
            merged = GroupCodeCreate.model_validate(
                {**current.model_dump(include=set(GroupCodeCreate.model_fields) - {"state", "welcome"},
                                      mode="json"), **changes})
        except ValidationError as exc:
            raise InvalidUpdate(exc) from exc
        new_chats = [c for c in dict.fromkeys([*merged.pool, *(c for w in merged.windows for c in w.pool)])
                     if c not in current.all_chats()]
        _check_chats(corp_id, new_chats)
        if "owner" in changes:
            _check_owner(corp_id, merged.owner)
        updated = GroupCodeItem.model_validate({
            **current.model_dump(), **merged.model_dump(exclude={"state", "welcome"}),
            "updated_at": int(now), "version": current.version + 1})
        try:
            code_items.save(corp_id, updated, expected=current)
        except code_items.EditConflict:
            continue
        _forget()
        settings_changed = (merged.name != current.name or merged.auto_create != current.auto_create)
        if not rotate(corp_id, updated, now=now, reason="edit") and settings_changed:
            _client(corp_id).update_join_way(_join_way(updated, updated.listed, state=updated.state,
                                                       config_id=updated.config_id))
        return get(corp_id, code_id)
    raise code_items.EditConflict(code_id)


def delete(corp_id: str, code_id: str, *, now: float | None = None) -> None:
    """Delete the join way (and the welcome template) in WeCom; keep the code as deleted, and its
    state claimed, so members it brought stay attributed to it."""
    from chalicelib.wecom import errors

    now = time.time() if now is None else now
    current = get(corp_id, code_id)
    client = _client(corp_id)
    try:
        client.del_join_way(current.config_id)
    except errors.InvalidArgument:
        logger.warning("join way %s was already gone in WeCom", current.config_id)
    if current.welcome_template_id:
        try:
            client.del_group_welcome_template(current.welcome_template_id)
        except errors.InvalidArgument:
            logger.warning("group welcome template %s was already gone", current.welcome_template_id)
    code_items.save(corp_id, current.model_copy(update={
        "status": "deleted", "welcome_template_id": None, "updated_at": int(now), "version": current.version + 1}),
        expected=current)
    _forget()


def status(corp_id: str, code_id: str, *, now: float | None = None) -> GroupCodeStatus:
    now = time.time() if now is None else now
    code = get(corp_id, code_id)
    pool = active_pool(code, _local(corp_id, now))
    counts = member_counts(corp_id, [*code.listed, *pool])

    def row(chat_id: str) -> ListedGroup:
        n = counts.get(chat_id)
        return ListedGroup(chat_id=chat_id, member_count=n, open_seats=max(0, code.threshold - (n or 0))
                           if n is not None else 0)

    p = plan(threshold=code.threshold, listed=code.listed, full=code.full, pool=pool,
             auto_create=code.auto_create is not None, low_seats=code.low_seats, counts=counts)
    return GroupCodeStatus(code_id=code.code_id, status=code.status, threshold=code.threshold,
                           listed=[row(c) for c in code.listed], pool=[row(c) for c in pool],
                           open_seats=p.open_seats, auto_create=code.auto_create is not None, alerts=code.alerts,
                           welcome=code.welcome, welcome_template_id=code.welcome_template_id,
                           rotation=code.rotation, synced=code.synced_rotation == code.rotation)


# -- group welcome (group_welcome_template/add|edit|get|del) --------------------------------------
def set_welcome(corp_id: str, code_id: str, welcome: GroupWelcomeIn, *, now: float | None = None) -> GroupCodeItem:
    """Add the code's template in WeCom, or edit it; the code records it (shown in its status)."""
    now = time.time() if now is None else now
    current = get(corp_id, code_id)
    client = _client(corp_id)
    template_id = current.welcome_template_id
    if template_id:
        client.edit_group_welcome_template(_template(welcome, template_id))
    else:
        template_id = client.add_group_welcome_template(_template(welcome)).template_id
    updated = current.model_copy(update={"welcome": welcome, "welcome_template_id": template_id,
                                         "updated_at": int(now), "version": current.version + 1})
    try:
        code_items.save(corp_id, updated, expected=current)
    except code_items.EditConflict:
        if not current.welcome_template_id:  # nothing may stay in WeCom that the code does not record
            client.del_group_welcome_template(template_id)
        raise
    return updated


def get_welcome(corp_id: str, code_id: str) -> GroupWelcome:
    """The template as WeCom holds it (group_welcome_template/get)."""
    current = get(corp_id, code_id)
    if not current.welcome_template_id:
        raise GroupCodeNotFound(f"{code_id}/welcome")
    got = _client(corp_id).get_group_welcome_template(current.welcome_template_id)
    return GroupWelcome.model_validate(got.model_dump(include=set(GroupWelcome.model_fields), exclude_none=True))


def delete_welcome(corp_id: str, code_id: str, *, now: float | None = None) -> None:
    from chalicelib.wecom import errors

    now = time.time() if now is None else now
    current = get(corp_id, code_id)
    if not current.welcome_template_id:
        raise GroupCodeNotFound(f"{code_id}/welcome")
    try:
        _client(corp_id).del_group_welcome_template(current.welcome_template_id)
    except errors.InvalidArgument:
        logger.warning("group welcome template %s was already gone", current.welcome_template_id)
    code_items.save(corp_id, current.model_copy(update={"welcome": None, "welcome_template_id": None,
                                                        "updated_at": int(now), "version": current.version + 1}),
                    expected=current)
