"""Contact stats (数据复盘), read from the daily counters that the event consumer keeps in the same
exactly-once commit as each event: never recounted by scanning relations."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from chalicelib.platform.model import Model
from chalicelib.store import counters

MAX_DAYS = 366
FIELDS = ("adds", "half_adds", "lost", "removed", "transferred", "welcomes_sent", "welcomes_missed",
          "welcomes_already_sent", "tags_marked")


class ContactStatsQuery(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: date = Field(alias="from", description="first day, YYYY-MM-DD (corp time zone)")
    to: date = Field(description=f"last day, inclusive: not before `from`, at most {MAX_DAYS} days from it")
    by: Literal["day", "channel", "staff"] = "day"

    @field_validator("to")
    @classmethod
    def _range(cls, to: date, info: ValidationInfo) -> date:
        start = info.data.get("from_")
        if start is not None and to < start:
            raise ValueError("`to` is before `from`")
        if start is not None and (to - start).days >= MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days per query")
        return to


class ContactStatsRow(Model):
    key: str = Field(description="the day, channel state or staff id")
    adds: int = Field(0, description="relations added (a handover's new staff member counts one too)")
    half_adds: int = Field(0, description="skip-verify adds, counted when they happen (acceptance: in adds)")
    lost: int = Field(0, description="customers who removed the staff member (churn)")
    removed: int = Field(0, description="customers the staff member removed")
    transferred: int = Field(0, description="moved away by a handover (not churn)")
    net: int = Field(0, description="the change in active relations: adds - lost - removed - transferred "
                                    "(a handover moves a relation: transferred here, an add for the new staff member)")
    welcomes_sent: int = 0
    welcomes_missed: int = 0
    welcomes_already_sent: int = 0
    tags_marked: int = Field(0, description="new relations tagged with their channel code's tags")


class ContactStats(Model):
    by: str
    from_: date = Field(serialization_alias="from")
    to: date
    rows: list[ContactStatsRow]
    total: ContactStatsRow


def _net(v: dict[str, int]) -> int:
    return v.get("adds", 0) - v.get("lost", 0) - v.get("removed", 0) - v.get("transferred", 0)


def _row(key: str, v: dict[str, int]) -> ContactStatsRow:
    return ContactStatsRow(key=key, **{f: v.get(f, 0) for f in FIELDS}, net=_net(v))


def _add(row: dict[str, int], item: dict[str, Any]) -> None:
    for f in FIELDS:
        row[f] = row.get(f, 0) + int(item.get(f, 0))


def contact_stats(corp_id: str, q: ContactStatsQuery) -> ContactStats:

    dimension = {"day": "corp", "channel": "channel", "staff": "staff"}[q.by]
    rows: dict[str, dict[str, int]] = {}
    total: dict[str, int] = {}
    for item in counters.read(corp_id, q.from_.isoformat(), q.to.isoformat()):
        # The total always comes from the corp-wide rows (each event counted once there), so it
        # cannot depend on `by`; the rows of a dimension add up to it as long as every handler
        # counts on corp, channel and staff alike.
        if item.get("dimension") == "corp":
            _add(total, item)
        if item.get("dimension") == dimension:
            _add(rows.setdefault(item["day"] if q.by == "day" else item["value"], {}), item)
    return ContactStats(by=q.by, from_=q.from_, to=q.to, rows=[_row(k, v) for k, v in sorted(rows.items())],
                        total=_row("total", total))


# -- customer groups -----------------------------------------------------------------------------------
GROUP_FIELDS = ("joins_scan", "joins_invite", "members_left", "members_removed", "groups_created",
                "groups_dismissed", "over_threshold_joins")


class GroupStatsQuery(ContactStatsQuery):
    by: Literal["day", "code", "group"] = "day"  # type: ignore[assignment]


class GroupStatsRow(Model):
    key: str = Field(description="the day, group code id or group id")
    joins: int = Field(0, description="members who joined (joins_scan + joins_invite)")
    joins_scan: int = Field(0, description="joined by scanning a group QR code (JoinScene 3)")
    joins_invite: int = Field(0, description="invited by a member, directly or by an invitation link (JoinScene "
                                             "0: WeCom's callback does not tell the two apart)")
    quits: int = Field(0, description="members who left or were removed (members_left)")
    quits_removed: int = Field(0, description="of the quits, removed by the owner or an admin (QuitScene 1)")
    net: int = Field(0, description="joins - quits")
    groups_opened: int = Field(0, description="groups created")
    groups_dismissed: int = 0
    over_threshold_joins: int = Field(0, description="scan joins into a group already at its group code's "
                                                     "threshold (counted by group codes)")


class GroupStats(Model):
    by: str
    from_: date = Field(serialization_alias="from")
    to: date
    rows: list[GroupStatsRow]
    total: GroupStatsRow


def _group_row(key: str, v: dict[str, int]) -> GroupStatsRow:
    joins = v.get("joins_scan", 0) + v.get("joins_invite", 0)
    return GroupStatsRow(key=key, joins=joins, joins_scan=v.get("joins_scan", 0), joins_invite=v.get("joins_invite", 0),
                         quits=v.get("members_left", 0), quits_removed=v.get("members_removed", 0),
                         net=joins - v.get("members_left", 0), groups_opened=v.get("groups_created", 0),
                         groups_dismissed=v.get("groups_dismissed", 0),
                         over_threshold_joins=v.get("over_threshold_joins", 0))


def _sum(row: dict[str, int], item: dict[str, Any], fields: tuple[str, ...]) -> None:
    for f in fields:
        row[f] = row.get(f, 0) + int(item.get(f, 0))


def group_stats(corp_id: str, q: GroupStatsQuery) -> GroupStats:
    """Rows by day (the corp-wide counters), group code or group. The total comes from the corp-wide
    counters (every event counted once there) whatever `by` is; over-threshold joins are counted only
    per group code, so their total is the sum over the codes. A code's row counts the scan joins into
    the groups it listed at the time; a group listed by two codes counts in both rows."""
    dimension = {"day": "corp", "code": "group_code", "group": "group"}[q.by]
    rows: dict[str, dict[str, int]] = {}
    total: dict[str, int] = {}
    over = GROUP_FIELDS[-1:]
    for item in counters.read(corp_id, q.from_.isoformat(), q.to.isoformat()):
        dim = item.get("dimension")
        if dim == "corp":
            _sum(total, item, GROUP_FIELDS[:-1])
        elif dim == "group_code":
            _sum(total, item, over)
            if q.by == "day":  # the day's over-threshold joins come from the group codes' counters
                _sum(rows.setdefault(item["day"], {}), item, over)
        if dim == dimension:
            _sum(rows.setdefault(item["day"] if q.by == "day" else item["value"], {}), item, GROUP_FIELDS)
    return GroupStats(by=q.by, from_=q.from_, to=q.to, total=_group_row("total", total),
                      rows=[_group_row(k, v) for k, v in sorted(rows.items())
                            if any(v.get(f) for f in GROUP_FIELDS)])
