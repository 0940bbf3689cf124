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
