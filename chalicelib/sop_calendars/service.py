"""SOP calendars (社群 SOP): rules of what to send, to whom, when; the API's logic and the
calendar arithmetic (local times in the corp's zone -> due times). The minute tick that turns due
rules into broadcasts or reminders, each occurrence exactly once, is schedule.py.

A rule's id is a hash of the rule itself: an edit that leaves a rule as it was keeps its schedule
and its occurrences; a changed rule is a new rule, due from the time of the edit on.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, Strict, model_validator
from pydantic.json_schema import SkipJsonSchema

from chalicelib.broadcasts.service import GroupsTarget
from chalicelib.platform.content import MessageContent, SendableContent
from chalicelib.platform.errors import FieldError, NotFound
from chalicelib.platform.model import Change, Model, integral
from chalicelib.sop_calendars import items as sitems
from chalicelib.sop_calendars.items import CalendarItem, OccurrenceItem, RuleState

MAX_RULES = 50
MAX_SKIPPED = 100  # occurrences per rule a resume records as skipped (a longer pause: the latest 100)
DEFAULT_GRACE_MINUTES = 120
FOREVER = 10 * 366 * 86400  # how far ahead a recurring rule sends, for the content's checks
Id = Annotated[str, Field(min_length=1, max_length=64)]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, the corp's time zone")]
# A JSON integer (5.0 is one); "5" and true are not.
Whole = Annotated[int, Strict(), BeforeValidator(integral)]


def clock() -> float:
    """The API's clock (tests replace it to simulate days)."""
    return time.time()


# -- the API's models -----------------------------------------------------------------------------------------------
class Weekly(Model):
    """Every week on `weekday` at `time`."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["weekly"]
    weekday: Whole = Field(ge=1, le=7, description="ISO weekday: 1 Monday .. 7 Sunday")
    time: HHMM


class OnDate(Model):
    """Once, on `date` at `time` (a local time that exists in the corp's zone, not in the past)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["date"]
    date: date
    time: HHMM


class After(Model):
    """`days` after an event, at `time`: every day at `time` the rule targets those whose event
    (a customer added, a member joined a group, a group created) fell on the day `days` days before."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["after"]
    event: Literal["customer_added", "member_joined", "group_created"]
    days: Whole = Field(ge=0, le=365)
    time: HHMM


When = Annotated[Weekly | OnDate | After, Field(discriminator="kind")]


class Customers(Model):
    """Customers of a saved segment, or added through a channel code (its `state`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["segment_id"]}, {"required": ["channel_code"]}]})
    kind: Literal["customers"]
    segment_id: Id | SkipJsonSchema[None] = None
    channel_code: Id | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _one(self) -> Customers:
        if (self.segment_id is None) == (self.channel_code is None):
            raise ValueError("give exactly one of segment_id, channel_code")
        return self


Whom = Annotated[Customers | GroupsTarget, Field(discriminator="kind")]


class Rule(Model):
    model_config = ConfigDict(extra="forbid")
    name: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=100)
    when: When
    whom: Whom = Field(description="customers (a segment, a channel code) or groups (owners, a group code, a "
                                   "list); `after` rules: `customer_added` takes customers, `member_joined` and "
                                   "`group_created` take groups")
    content: SendableContent = Field(description="as broadcasts take it; `member_joined` rules become a reminder to "
                                                 "each group's owner with this content to forward")


class CalendarCreate(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    grace_minutes: Whole = Field(DEFAULT_GRACE_MINUTES, ge=0, le=1440,
                               description="an occurrence found late (the system was down) is still sent within "
                                           "this many minutes of its time, else recorded as missed")
    rules: list[Rule] = Field(min_length=1, max_length=MAX_RULES)


class CalendarUpdate(Change):
    model_config = ConfigDict(extra="forbid")
    min_changes = 1
    name: str = Field(None, min_length=1, max_length=100)
    grace_minutes: Whole = Field(None, ge=0, le=1440)
    rules: list[Rule] = Field(None, min_length=1, max_length=MAX_RULES)


class RuleView(Rule):
    rule_id: str
    content: MessageContent
    next_due: int | None = Field(description="epoch seconds of its next occurrence (null: none left, or paused)")


class CalendarView(Model):
    calendar_id: str
    name: str
    status: sitems.CalendarStatus
    grace_minutes: int
    rules: list[RuleView]
    created_at: int
    updated_at: int
    version: int

    @classmethod
    def of(cls, cal: CalendarItem, states: dict[str, RuleState]) -> CalendarView:
        rules = [RuleView(**r, next_due=None if cal.status == "paused" or r["rule_id"] not in states
                          else states[r["rule_id"]].next_due) for r in cal.rules]
        return cls(**cal.model_dump(exclude={"rules", "paused_at"}), rules=rules)


class OccurrenceView(Model):
    rule_id: str
    due: int = Field(description="epoch seconds")
    due_local: str = Field(description="the due time in the corp's time zone (ISO 8601)")
    status: Literal["pending", "done", "missed", "skipped", "failed"] = Field(
        description="pending: next, or being handled; done: its broadcast created / reminders sent; missed: "
                    "found past the grace; skipped: while the calendar was paused; failed: see reason")
    kind: Literal["broadcast", "reminder", "none"] | None = Field(None, description="none: nobody to send to")
    broadcast_id: str | None = None
    target: tuple[int, int] | None = Field(None, description="relative rules: the window of events targeted "
                                                             "(epoch seconds, inclusive)")
    reminders: dict[str, str] = Field(default_factory=dict)
    late_seconds: int | None = None
    reason: str | None = None


class OccurrencesPage(Model):
    items: list[OccurrenceView] = Field(description="past occurrences (and those being handled), newest first")
    next_cursor: str | None = None
    upcoming: list[OccurrenceView] = Field(description="each rule's next occurrence (none while paused)")


class OccurrenceQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class CalendarNotFound(NotFound):
    what = "SOP calendar"


class InvalidCalendar(FieldError):
    """A calendar its JSON Schema allows but that cannot run as meant (400 validation_error)."""


class CalendarState(Exception):
    """Pausing a paused calendar / resuming an active one (409)."""


# -- calendar arithmetic ----------------------------------------------------------------------------------------------
def zone_of(corp_id: str) -> Any:
    from zoneinfo import ZoneInfo

    from chalicelib.corps import registry

    corp = registry.runtime(corp_id)
    return ZoneInfo(corp.time_zone if corp else "Asia/Shanghai")


def _hhmm(value: str) -> clock_time:
    h, m = value.split(":")
    return clock_time(int(h), int(m))


def exists(zone: Any, day: date, hhmm: str) -> bool:
    """False for a local time skipped by a DST change (02:30 on a spring-forward day)."""
    from datetime import UTC

    naive = datetime.combine(day, _hhmm(hhmm))
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def at(zone: Any, day: date, hhmm: str) -> int:
    """Epoch seconds of a local time. A time a DST change skips is taken past the gap (02:30 -> 03:30);
    a repeated one (fall back) at its first instance."""
    return int(datetime.combine(day, _hhmm(hhmm)).replace(tzinfo=zone).timestamp())


def local_day(zone: Any, epoch: float) -> date:
    return datetime.fromtimestamp(epoch, zone).date()


def day_range(zone: Any, day: date) -> tuple[int, int]:
    """First and last second of a local day."""
    start = int(datetime.combine(day, clock_time()).replace(tzinfo=zone).timestamp())
    return start, int(datetime.combine(day + timedelta(days=1), clock_time()).replace(tzinfo=zone).timestamp()) - 1


def next_after(rule: dict[str, Any], zone: Any, after: float) -> int | None:
    """The rule's first due time strictly after `after` (None: a date rule that is past)."""
    w = rule["when"]
    if w["kind"] == "date":
        due = at(zone, date.fromisoformat(w["date"]), w["time"])
        return due if due > after else None
    start = local_day(zone, after)
    for d in range(0, 9):
        day = start + timedelta(days=d)
        if w["kind"] == "weekly" and day.isoweekday() != w["weekday"]:
            continue
        due = at(zone, day, w["time"])
        if due > after:
            return due
    raise AssertionError("a weekly or daily rule always has a next time")


def window(rule: dict[str, Any], zone: Any, due: int) -> tuple[int, int] | None:
    """Relative rules: the events (customers added, members joined, groups created) an occurrence due
    at `due` (HH:MM on local day D) targets: those after HH:MM on day D-N-1, up to HH:MM on day D-N
    (inclusive epochs). The windows of consecutive days tile time, so each event gets each rule
    exactly once, at the first HH:MM at least N days after it."""
    w = rule["when"]
    if w["kind"] != "after":
        return None
    end_day = local_day(zone, due) - timedelta(days=w["days"])
    return at(zone, end_day - timedelta(days=1), w["time"]) + 1, at(zone, end_day, w["time"])


def rule_id_of(rule: dict[str, Any]) -> str:
    raw = json.dumps({k: v for k, v in rule.items() if k != "rule_id"}, sort_keys=True, separators=(",", ":"))
    return "r" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def is_reminder(rule: dict[str, Any]) -> bool:
    """WeCom cannot send these automatically: a group member who joined is reached one by one, by hand."""
    return rule["when"]["kind"] == "after" and rule["when"]["event"] == "member_joined"


# -- checks ---------------------------------------------------------------------------------------------------------
def _check_rules(corp_id: str, rules: list[Rule], *, now: float) -> list[dict[str, Any]]:
    from chalicelib.broadcasts import service as broadcasts

    zone = zone_of(corp_id)
    stored: list[dict[str, Any]] = []
    for i, rule in enumerate(rules):
        field = f"rules.{i}"
        w, whom = rule.when, rule.whom
        if isinstance(w, OnDate):
            if not exists(zone, w.date, w.time):
                raise InvalidCalendar(f"{field}.when", f"{w.date} {w.time} does not exist in {zone.key} (a daylight "
                                                       "saving time change skips it)")
            if at(zone, w.date, w.time) <= now:
                raise InvalidCalendar(f"{field}.when", f"{w.date} {w.time} ({zone.key}) is in the past")
        if isinstance(w, After):
            wanted = "customers" if w.event == "customer_added" else "groups"
            if whom.kind != wanted:
                raise InvalidCalendar(f"{field}.whom", f"`{w.event}` rules take {wanted}, not {whom.kind}")
        data = rule.model_dump(mode="json", exclude_none=True, by_alias=True)
        # sent until the calendar stops (a date: at its time): a media_id (3 days) may not live that long
        ahead = at(zone, w.date, w.time) - int(now) if isinstance(w, OnDate) else FOREVER
        try:
            _check_target(corp_id, data, whom, rule.content, field, ahead=ahead)
        except broadcasts.InvalidBroadcast as exc:
            raise InvalidCalendar(f"{field}.{exc.field}", str(exc)) from exc
        data["rule_id"] = rule_id_of(data)
        if any(_unnamed(r) == _unnamed(data) for r in stored):  # a name is a label: the same sends twice
            raise InvalidCalendar(field, "the same rule is given twice")
        stored.append(data)
    return stored


def _unnamed(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k not in ("name", "rule_id")}


def _check_target(corp_id: str, data: dict[str, Any], whom: Any, content: MessageContent, field: str, *,
                  ahead: int) -> None:
    """As a broadcast would check it (reminders: the groups and the corp's app)."""
    from chalicelib.broadcasts import service as broadcasts

    if is_reminder(data):
        _check_agent(corp_id, field)
        broadcasts.check(corp_id, whom, MessageContent(text="x"), ahead=0, at=f"{field}.whom")
    elif isinstance(whom, Customers):
        if whom.channel_code is not None:
            from chalicelib.channel_codes import service as channel_codes

            channel_codes.get(corp_id, whom.channel_code)  # ChannelCodeNotFound: 404
            target = broadcasts.CustomersTarget(kind="customers", filter={"channels": [whom.channel_code]})
        else:
            target = broadcasts.CustomersTarget(kind="customers", segment_id=whom.segment_id)
        broadcasts.check(corp_id, target, content, ahead=ahead, at=f"{field}.whom")
    else:
        broadcasts.check(corp_id, whom, content, ahead=ahead, at=f"{field}.whom")


def _check_agent(corp_id: str, field: str) -> None:
    from chalicelib.corps import items as corp_items

    corp = corp_items.get_corp(corp_id)
    if corp is None or not corp.agent_id:
        raise InvalidCalendar(f"{field}.when", "reminders are WeCom app messages: set the corp's agent_id first")


# -- the API's operations ---------------------------------------------------------------------------------------------
def _new_states(calendar_id: str, rules: list[dict[str, Any]], zone: Any, now: float) -> list[RuleState]:
    return [RuleState(calendar_id=calendar_id, rule_id=r["rule_id"], next_due=next_after(r, zone, now)) for r in rules]


def create(corp_id: str, req: CalendarCreate) -> tuple[CalendarItem, dict[str, RuleState]]:
    import secrets

    now = clock()
    rules = _check_rules(corp_id, req.rules, now=now)
    cal = CalendarItem(calendar_id=f"c{time.time_ns() // 1_000_000:011x}{secrets.token_hex(3)}", name=req.name,
                       grace_minutes=req.grace_minutes, rules=rules, created_at=int(now), updated_at=int(now))
    states = _new_states(cal.calendar_id, rules, zone_of(corp_id), now)
    sitems.put_new(corp_id, cal, states)
    return cal, {s.rule_id: s for s in states}


def get(corp_id: str, calendar_id: str, *, consistent: bool = False) -> CalendarItem:
    cal = sitems.get(corp_id, calendar_id, consistent=consistent)
    if cal is None:
        raise CalendarNotFound(calendar_id)
    return cal


def view(corp_id: str, cal: CalendarItem) -> CalendarView:
    return CalendarView.of(cal, sitems.states(corp_id, cal.calendar_id))


def update(corp_id: str, calendar_id: str, req: CalendarUpdate) -> CalendarItem:
    """Rules left as they were keep their schedules; new rules are due from now on; removed ones stop."""
    now = clock()
    cal = get(corp_id, calendar_id, consistent=True)
    changes: dict[str, Any] = {"updated_at": int(now), "version": cal.version + 1}
    added: list[RuleState] = []
    removed: list[str] = []
    if req.name is not None:
        changes["name"] = req.name
    if req.grace_minutes is not None:
        changes["grace_minutes"] = req.grace_minutes
    if req.rules is not None:
        rules = _check_rules(corp_id, req.rules, now=now)
        old = {r["rule_id"] for r in cal.rules}
        new = [r for r in rules if r["rule_id"] not in old]
        added = [s.model_copy(update={"paused": cal.status == "paused"})
                 for s in _new_states(calendar_id, new, zone_of(corp_id), now)]
        removed = sorted(old - {r["rule_id"] for r in rules})
        changes["rules"] = rules
    changed = cal.model_copy(update=changes)
    sitems.save(corp_id, changed, expected_version=cal.version, added=added, removed=removed)
    return changed


def delete(corp_id: str, calendar_id: str) -> None:
    """The calendar and its schedules (its occurrences stay, with the broadcasts they became)."""
    sitems.delete(corp_id, get(corp_id, calendar_id, consistent=True))


def pause(corp_id: str, calendar_id: str) -> CalendarItem:
    """Out of the due index: no occurrence is claimed until resumed."""
    now = int(clock())
    cal = get(corp_id, calendar_id, consistent=True)
    if cal.status == "paused":
        raise CalendarState(f"calendar {calendar_id} is paused already")
    states = sitems.states(corp_id, calendar_id)
    paused = cal.model_copy(update={"status": "paused", "paused_at": now, "updated_at": now,
                                    "version": cal.version + 1})
    sitems.set_paused(corp_id, paused, expected_version=cal.version,
                      rules=[s.model_copy(update={"paused": True}) for s in states.values()])
    return paused


def resume(corp_id: str, calendar_id: str) -> CalendarItem:
    """Back in the due index from now on: the occurrences of the paused time are recorded as
    skipped (never sent late: a paused calendar is the operator's decision)."""
    now = clock()
    cal = get(corp_id, calendar_id, consistent=True)
    if cal.status != "paused":
        raise CalendarState(f"calendar {calendar_id} is not paused")
    zone, states = zone_of(corp_id), sitems.states(corp_id, calendar_id)
    resumed = cal.model_copy(update={"status": "active", "paused_at": None, "updated_at": int(now),
                                     "version": cal.version + 1})
    fresh = []
    for rule in cal.rules:
        state = states.get(rule["rule_id"]) or RuleState(calendar_id=calendar_id, rule_id=rule["rule_id"])
        _record_skipped(corp_id, cal, rule, zone, since=state.next_due, until=now)
        fresh.append(state.model_copy(update={"paused": False, "next_due": next_after(rule, zone, now)}))
    sitems.set_paused(corp_id, resumed, expected_version=cal.version, rules=fresh)
    return resumed


def _record_skipped(corp_id: str, cal: CalendarItem, rule: dict[str, Any], zone: Any, *, since: int | None,
                    until: float) -> None:
    """Each occurrence from `since` (the first one the pause kept from being handled) to `until`."""
    if since is None or since > until:
        return
    dues, due = [], since
    while due is not None and due <= until:
        dues.append(due)
        due = next_after(rule, zone, due)
    for due in dues[-MAX_SKIPPED:]:
        sitems.put_occurrence(corp_id, OccurrenceItem(
            calendar_id=cal.calendar_id, rule_id=rule["rule_id"], due=due, status="skipped", settled_at=int(until),
            target=window(rule, zone, due), reason="the calendar was paused"))


def occurrences(corp_id: str, calendar_id: str, q: OccurrenceQuery) -> OccurrencesPage:
    from datetime import datetime as dt

    cal = get(corp_id, calendar_id)
    zone = zone_of(corp_id)

    def local(epoch: int) -> str:
        return dt.fromtimestamp(epoch, zone).isoformat()

    found, cursor = sitems.occurrences(corp_id, calendar_id, limit=q.limit, cursor=q.cursor)
    items = [OccurrenceView(**o.model_dump(exclude={"calendar_id", "claimed_at", "settled_at"}),
                            due_local=local(o.due)) for o in found]
    upcoming: list[OccurrenceView] = []
    if cal.status == "active":
        states = sitems.states(corp_id, calendar_id)
        for rule in cal.rules:
            s = states.get(rule["rule_id"])
            if s is not None and s.next_due is not None:
                upcoming.append(OccurrenceView(rule_id=s.rule_id, due=s.next_due, due_local=local(s.next_due),
                                               status="pending", kind="reminder" if is_reminder(rule) else "broadcast",
                                               target=window(rule, zone, s.next_due)))
    upcoming.sort(key=lambda o: o.due)
    return OccurrencesPage(items=items, next_cursor=cursor, upcoming=upcoming)
