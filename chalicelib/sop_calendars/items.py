"""SOP calendars' stored items (docs/architecture.md "SOP calendars"): the calendar (its rules), one
schedule item per rule (its next due time, in the due index while the calendar is active), and one
item per occurrence (claimed before anything is sent). Key shapes live in store/keys.py only."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema

CalendarStatus = Literal["active", "paused"]
OccurrenceStatus = Literal["pending", "done", "missed", "skipped", "failed"]
FINAL = ("done", "missed", "skipped", "failed")


class CalendarItem(Model):
    calendar_id: str
    name: str
    status: CalendarStatus = "active"
    grace_minutes: int
    rules: list[dict[str, Any]]  # each the API's Rule as JSON plus its `rule_id`
    created_at: int
    updated_at: int
    paused_at: int | None = None
    version: int = 1

    def rule(self, rule_id: str) -> dict[str, Any] | None:
        return next((r for r in self.rules if r["rule_id"] == rule_id), None)


class RuleState(Model):
    calendar_id: str
    rule_id: str
    next_due: int | None = Field(None, description="epoch seconds; None: the rule has no occurrence left")
    paused: bool = False


class OccurrenceItem(Model):
    calendar_id: str
    rule_id: str
    due: int
    status: OccurrenceStatus
    kind: Literal["broadcast", "reminder", "none"] | None = None
    broadcast_id: str | None = None
    target: tuple[int, int] | None = Field(None, description="relative rules: the window (epoch seconds, "
                                                             "inclusive) of the customers added, members joined or "
                                                             "groups created the occurrence targets")
    reminders: dict[str, str] = Field(default_factory=dict, description="staff id -> WeCom msgid (`calling`: "
                                                                        "the call's outcome is unknown)")
    claimed_at: int | None = None
    settled_at: int | None = None
    late_seconds: int | None = None
    reason: str | None = None


# -- calendars -----------------------------------------------------------------------------------------------------
def _calendar_item(corp_id: str, cal: CalendarItem) -> dict[str, Any]:
    return {**keys.sop_calendar(corp_id, cal.calendar_id), "type": "sop_calendar", **cal.model_dump(mode="json")}


def _due_sk(corp_id: str, calendar_id: str, rule_id: str, due: int) -> str:
    return f"{due:012d}#{corp_id}#{calendar_id}#{rule_id}"


def _rule_item(corp_id: str, state: RuleState) -> dict[str, Any]:
    item = {**keys.sop_rule(corp_id, state.calendar_id, state.rule_id), "type": "sop_rule", "corp_id": corp_id,
            **state.model_dump(mode="json")}
    if state.next_due is not None and not state.paused:
        item |= {schema.GSI1_PK: keys.due_sop_rules_partition(),
                 schema.GSI1_SK: _due_sk(corp_id, state.calendar_id, state.rule_id, state.next_due)}
    return item


class VersionConflict(Exception):
    """The calendar changed (or was deleted) between our read and our write (409)."""


def put_new(corp_id: str, cal: CalendarItem, states: list[RuleState]) -> None:
    """The calendar and its rules' schedules, in one transaction."""
    table = get_table()
    table.transact([table.op_put(_calendar_item(corp_id, cal), condition="attribute_not_exists(PK)"),
                    *(table.op_put(_rule_item(corp_id, s)) for s in states)])


def save(corp_id: str, cal: CalendarItem, *, expected_version: int, added: list[RuleState] = (),
         changed: list[RuleState] = (), removed: list[str] = ()) -> None:
    """The calendar (under its version) and its rules' schedules, in one transaction."""
    table = get_table()
    ops = [table.op_put(_calendar_item(corp_id, cal), condition="version = :v", values={":v": expected_version}),
           *(table.op_put(_rule_item(corp_id, s)) for s in [*added, *changed]),
           *(_op_delete(keys.sop_rule(corp_id, cal.calendar_id, r)) for r in removed)]
    try:
        table.transact(ops)
    except ConditionFailed as exc:
        raise VersionConflict(f"calendar {cal.calendar_id} was changed meanwhile; read it again") from exc


def _op_delete(key: dict[str, str], *, condition: str | None = None,
               values: dict[str, Any] | None = None) -> dict[str, Any]:
    table = get_table()
    from chalicelib.store.table import to_attrs

    return {"Delete": {"TableName": table.name, "Key": to_attrs(key), **table._conditional(condition, None, values)}}


def get(corp_id: str, calendar_id: str, *, consistent: bool = False) -> CalendarItem | None:
    item = get_table().get(keys.sop_calendar(corp_id, calendar_id), consistent=consistent)
    return CalendarItem.model_validate(item) if item and item.get("type") == "sop_calendar" else None


def list_calendars(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[CalendarItem], str | None]:
    items, next_cursor = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.sop_calendar_prefix(),
                                           limit=limit, cursor=cursor)
    return [CalendarItem.model_validate(i) for i in items], next_cursor


def delete(corp_id: str, cal: CalendarItem) -> None:
    table = get_table()
    ops = [_op_delete(keys.sop_calendar(corp_id, cal.calendar_id), condition="version = :v",
                      values={":v": cal.version}),
           *(_op_delete(keys.sop_rule(corp_id, cal.calendar_id, r["rule_id"])) for r in cal.rules)]
    try:
        table.transact(ops)
    except ConditionFailed as exc:
        raise VersionConflict(f"calendar {cal.calendar_id} was changed meanwhile; read it again") from exc


# -- rule schedules and the due index ----------------------------------------------------------------------------
def states(corp_id: str, calendar_id: str) -> dict[str, RuleState]:
    return {i["rule_id"]: RuleState.model_validate(i) for i in get_table().query_all(
        keys.corp_partition(corp_id), sk_prefix=keys.sop_rule_prefix(calendar_id), consistent=True)}


Due = tuple[str, str, str, int]


def due(now: float, *, limit: int = 100, cursor: str | None = None) -> tuple[list[Due], str | None]:
    """(corp, calendar, rule, due) of rules due at or before `now`, oldest first: only those are read."""
    items, next_cursor = get_table().query(keys.due_sop_rules_partition(), index=schema.GSI1,
                                           sk_between=("0", f"{int(now):012d}#\uffff"), limit=limit, cursor=cursor)
    out = []
    for i in items:
        at, corp_id, calendar_id, rule_id = i[schema.GSI1_SK].split("#", 3)
        out.append((corp_id, calendar_id, rule_id, int(at)))
    return out, next_cursor


def advance(corp_id: str, calendar_id: str, rule_id: str, *, from_due: int, to: int | None) -> bool:
    """The rule's next due time moves from `from_due` to `to` (None: out of the index for good);
    False if another tick moved it already, or the calendar was paused meanwhile."""
    expression = "SET next_due = :to" if to is not None else "REMOVE next_due"
    values: dict[str, Any] = {":from": from_due, ":t": True}
    if to is not None:
        expression += f", {schema.GSI1_PK} = :pk, {schema.GSI1_SK} = :sk"
        values |= {":to": to, ":pk": keys.due_sop_rules_partition(),
                   ":sk": _due_sk(corp_id, calendar_id, rule_id, to)}
    else:
        expression += f", {schema.GSI1_PK}, {schema.GSI1_SK}"
    try:
        get_table().update(keys.sop_rule(corp_id, calendar_id, rule_id), expression=expression, values=values,
                           condition="next_due = :from AND paused <> :t")
    except ConditionFailed:
        return False
    return True


def set_paused(corp_id: str, cal: CalendarItem, *, expected_version: int, rules: list[RuleState]) -> None:
    """The calendar's status and its rules' schedules (out of / back in the due index) together."""
    save(corp_id, cal, expected_version=expected_version, changed=rules)


def drop_rule(corp_id: str, calendar_id: str, rule_id: str) -> None:
    """A schedule whose rule is gone (a crash between a calendar's write and its rules'): removed."""
    get_table().delete(keys.sop_rule(corp_id, calendar_id, rule_id))


# -- occurrences ------------------------------------------------------------------------------------------------
def _occ_key(corp_id: str, o: OccurrenceItem | tuple[str, int, str]) -> dict[str, str]:
    calendar_id, due_at, rule_id = (o.calendar_id, o.due, o.rule_id) if isinstance(o, OccurrenceItem) else o
    return keys.sop_occurrence(corp_id, calendar_id, due_at, rule_id)


def get_occurrence(corp_id: str, calendar_id: str, due_at: int, rule_id: str) -> OccurrenceItem | None:
    item = get_table().get(_occ_key(corp_id, (calendar_id, due_at, rule_id)), consistent=True)
    return OccurrenceItem.model_validate(item) if item else None


def put_occurrence(corp_id: str, o: OccurrenceItem) -> OccurrenceItem:
    """Written once (the claim, or a final missed / skipped record): the occurrence as stored first
    is returned when it exists already."""
    try:
        get_table().put({**_occ_key(corp_id, o), "type": "sop_occurrence", **o.model_dump(mode="json")},
                        condition="attribute_not_exists(PK)")
    except ConditionFailed:
        found = get_occurrence(corp_id, o.calendar_id, o.due, o.rule_id)
        assert found is not None
        return found
    return o


def settle(corp_id: str, o: OccurrenceItem, *, status: str, now: int, **fields: Any) -> OccurrenceItem | None:
    """pending -> a final status with its fields; None if it was settled already (by another tick)."""
    sets = {"status": status, "settled_at": now, **{k: v for k, v in fields.items() if v is not None}}
    try:
        item = get_table().update(_occ_key(corp_id, o), expression="SET " + ", ".join(f"#{k} = :{k}" for k in sets),
                                  names={f"#{k}": k for k in sets}, values={**{f":{k}": v for k, v in sets.items()},
                                                                            ":pending": "pending"},
                                  condition="#status = :pending", return_new=True)
    except ConditionFailed:
        return None
    return OccurrenceItem.model_validate(item)


def mark_reminder(corp_id: str, o: OccurrenceItem, staff_id: str, value: str, *, first: bool) -> bool:
    """`first`: claim the reminder to `staff_id` (only if none was tried); otherwise record its msgid."""
    try:
        get_table().update(_occ_key(corp_id, o), expression="SET reminders.#s = :v", names={"#s": staff_id},
                           values={":v": value}, condition="attribute_not_exists(reminders.#s)" if first else None)
    except ConditionFailed:
        return False
    return True


def unmark_reminder(corp_id: str, o: OccurrenceItem, staff_id: str) -> None:
    """A reminder WeCom did not send (45009, busy): tried again by the next tick."""
    get_table().update(_occ_key(corp_id, o), expression="REMOVE reminders.#s", names={"#s": staff_id},
                       values={":c": "calling"}, condition="reminders.#s = :c")


def occurrences(corp_id: str, calendar_id: str, *, limit: int,
                cursor: str | None) -> tuple[list[OccurrenceItem], str | None]:
    """Newest due first."""
    items, next_cursor = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.sop_occurrence_prefix(
        calendar_id), limit=limit, cursor=cursor, newest_first=True)
    return [OccurrenceItem.model_validate(i) for i in items], next_cursor
