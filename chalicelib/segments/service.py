"""Segments: saved selections of customers (their relations with staff members) by a filter, and
their evaluation as a stream of pages that a broadcast planner can follow and resume.

Evaluation reads relations through an index, page by page, never a corp's whole relation list:
- `staff_ids` given: GSI1, one partition per staff member (`CORP#<corp>#STAFF#<staff>`);
- otherwise GSI2, the corp's relations (`CORP#<corp>#RELATIONS`);
- `added_from` / `added_to`: a range on the sort key (`<added_at>#...`) of either index;
- tags, channel codes and status: a FilterExpression on the pages read (DynamoDB still reads,
  and bills, every relation in the key range: docs/architecture.md, "Segments").
Each relation sits once in each index, so each matching relation is yielded once.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from chalicelib.customers.items import NO_CHANNEL, RelationItem
from chalicelib.platform.errors import FieldError, NotFound
from chalicelib.platform.model import Change, Model, integral
from chalicelib.segments import expression
from chalicelib.segments import items as segment_items
from chalicelib.segments.expression import TagExpr
from chalicelib.segments.items import SegmentItem

EVAL_PAGE = 100  # relations DynamoDB evaluates per read of a planner's stream
PREVIEW_PAGE = 1000  # per read of a preview (a page is also cut at 1 MB by DynamoDB)
MAX_SAMPLE = 50

Id = Annotated[str, Field(min_length=1, max_length=64)]
Epoch = Annotated[int, Strict(), Field(ge=0, lt=10**11), BeforeValidator(integral)]  # "5" and true are not
Moment = Annotated[Epoch | date, Field(description="epoch seconds, or a date (YYYY-MM-DD) in the corp's time zone")]
SegmentStatus = Literal["active", "pending", "lost", "removed", "transferred"]
_ONE = "at least one of tags, staff_ids, channels, added_from, added_to, statuses"


class SegmentFilter(Model):
    """Who a segment selects: the relations matching every criterion given (at least one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    tags: Annotated[TagExpr, WithJsonSchema(expression.SCHEMA)] | SkipJsonSchema[None] = None
    staff_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] | SkipJsonSchema[None] = Field(
        None, description="the relation's staff member is one of these")
    channels: Annotated[list[Id], Field(min_length=1, max_length=100)] | SkipJsonSchema[None] = Field(
        None, description="the channel code (`state`) of the relation's latest add is one of these; "
                          f"`{NO_CHANNEL}`: added through none")
    added_from: Moment | SkipJsonSchema[None] = Field(None, description="added at or after (inclusive); a date: "
                                                                         "its start in the corp's time zone")
    added_to: Moment | SkipJsonSchema[None] = Field(None, description="added at or before (inclusive); a date: its "
                                                                       "end; not before `added_from`")
    statuses: Annotated[list[SegmentStatus], Field(min_length=1, max_length=5)] | SkipJsonSchema[None] = Field(
        None, description="the relation's status is one of these (`pending`: a skip-verify add not yet "
                          "confirmed); left out: any status")

    @model_validator(mode="after")
    def _not_empty(self) -> SegmentFilter:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(f"the filter is empty: give {_ONE}")
        return self

    @field_validator("tags")
    @classmethod
    def _shape(cls, v: TagExpr | None) -> TagExpr | None:
        if v is not None:  # beyond what the JSON Schema says (the count of tags): named as `filter.tags`
            expression.check_shape(v)
        return v

    @model_serializer(mode="wrap")
    def _given(self, handler):  # unannotated: the JSON Schema stays the model's
        return expression.drop_none(handler(self))

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class SegmentCreate(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    filter: SegmentFilter


class SegmentUpdate(Change):
    model_config = ConfigDict(extra="forbid")
    min_changes = 1
    name: str = Field(None, min_length=1, max_length=100)
    filter: SegmentFilter = None  # type: ignore[assignment]


class SegmentView(Model):
    segment_id: str
    name: str
    filter: SegmentFilter
    created_at: int
    updated_at: int
    version: int

    @classmethod
    def of(cls, seg: SegmentItem) -> SegmentView:
        return cls(**seg.model_dump(exclude={"filter"}), filter=SegmentFilter.model_validate(seg.filter))


class PreviewOptions(Model):
    model_config = ConfigDict(extra="forbid")
    sample: int = Field(10, ge=0, le=MAX_SAMPLE, description="how many matching relations to return, newest first")


class FilterPreview(PreviewOptions):
    filter: SegmentFilter


class SampleRow(Model):
    customer_id: str
    customer_name: str | None = Field(None, description="from the customer's stored profile; null if not known yet")
    staff_id: str
    staff_name: str | None = None
    status: str
    state: str | None = None
    added_at: int | None = None
    tags: list[str] = []


class Preview(Model):
    count: int = Field(description="matching relations (a customer with two matching staff members counts twice); "
                                   "the number a full evaluation streams")
    sample: list[SampleRow]
    index: str = Field(description="how it was read: `staff` (GSI1, per staff member) or `corp` (GSI2)")
    reads: int = Field(description="DynamoDB requests the evaluation made")


class SegmentNotFound(NotFound):
    what = "segment"


class InvalidFilter(FieldError):
    """A filter that its JSON Schema allows but that selects nobody by construction (400 validation_error)."""


# -- the evaluation ------------------------------------------------------------------------------------
class Member(NamedTuple):
    customer_id: str
    staff_id: str
    relation: RelationItem


@dataclass
class MemberPage:
    """One DynamoDB read's matches (possibly none), and the cursor that resumes right after it."""

    members: list[Member]
    cursor: str | None


@dataclass(frozen=True)
class Plan:
    index: str
    partitions: tuple[str, ...]
    sk_between: tuple[str, str]
    filter_expression: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def index_name(self) -> str:
        from chalicelib.store import schema

        return "staff" if self.index == schema.GSI1 else "corp"


def _epoch(corp_id: str, moment: int | date | None, *, end: bool) -> int | None:
    if moment is None or isinstance(moment, int):
        return moment
    from zoneinfo import ZoneInfo

    from chalicelib.corps import registry

    corp = registry.runtime(corp_id)
    zone = ZoneInfo(corp.time_zone if corp else "Asia/Shanghai")
    start = datetime(moment.year, moment.month, moment.day, tzinfo=zone)
    return int((start + timedelta(days=1)).timestamp()) - 1 if end else int(start.timestamp())


def plan(corp_id: str, f: SegmentFilter, *, merged: bool = False, at: str = "filter", saved: bool = False) -> Plan:
    """How to read the filter's relations; UnknownTags / InvalidFilter for a filter that cannot
    select as meant (checked before anything is stored). `merged`: one stream newest first over
    the whole corp even when several staff members are named (GSI2 filtered on `staff_id`, not one
    GSI1 partition after another), as a broadcast planner needs to see a customer's newest
    relation first. `at`: where the filter is in the caller's request (refusals name its fields
    there, an unknown tag at its place in the expression); `saved`: the filter is a saved segment's,
    and `at` the request's field naming the segment (refusals name that field)."""
    from chalicelib.store import keys, schema
    from chalicelib.tags import service as tags

    lo, hi = _epoch(corp_id, f.added_from, end=False), _epoch(corp_id, f.added_to, end=True)
    if lo is not None and hi is not None and lo > hi:
        raise InvalidFilter(at if saved else f"{at}.added_to",
                            "`added_to` is before `added_from`: the range selects nobody")
    names: dict[str, str] = {"#status": "status"}
    values: dict[str, Any] = {}
    filters = ["attribute_exists(#status)"]  # an item holding only tags so far is not a relation yet
    if f.tags is not None:
        named: dict[str, list[str]] = {}
        for where, tag in f.tags.located(f"{at}.tags"):
            named.setdefault(at if saved else where, []).append(tag)
        tags.check_known(corp_id, named)
        if not expression.satisfiable(f.tags):
            raise InvalidFilter(at if saved else f"{at}.tags", "the tag expression selects nobody (e.g. `and` of "
                                                               "a tag and `not` the same tag)")
        filters.append(expression.to_filter(f.tags, names, values))
    if f.channels is not None:
        names["#state"] = "state"
        some = [c for c in dict.fromkeys(f.channels) if c != NO_CHANNEL]
        values.update({f":ch{i}": c for i, c in enumerate(some)})
        either = [f"#state IN ({', '.join(f':ch{i}' for i in range(len(some)))})"] if some else []
        if NO_CHANNEL in f.channels:
            values[":nochannel"] = ""
            either.append("attribute_not_exists(#state) OR #state = :nochannel")
        filters.append(f"({' OR '.join(either)})")
    if f.statuses is not None:
        statuses = list(dict.fromkeys(f.statuses))
        values.update({f":st{i}": s for i, s in enumerate(statuses)})
        filters.append(f"#status IN ({', '.join(f':st{i}' for i in range(len(statuses)))})")
    staff_ids = sorted(set(f.staff_ids or []))
    if merged and len(staff_ids) > 1:
        names["#staff"] = "staff_id"
        values.update({f":sf{i}": s for i, s in enumerate(staff_ids)})
        filters.append(f"#staff IN ({', '.join(f':sf{i}' for i in range(len(staff_ids)))})")
        index, partitions = schema.GSI2, (keys.relations_by_corp_partition(corp_id),)
    elif f.staff_ids is not None:
        index = schema.GSI1
        partitions = tuple(keys.staff_relations_partition(corp_id, s) for s in sorted(set(f.staff_ids)))
    else:
        index, partitions = schema.GSI2, (keys.relations_by_corp_partition(corp_id),)
    sk = (f"{lo or 0:012d}", f"{hi if hi is not None else 10**12 - 1:012d}\uffff")
    return Plan(index, partitions, sk, " AND ".join(filters), names, values)


def _cursor(partition: int, inner: str | None) -> str:
    raw = json.dumps({"p": partition, "c": inner}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position(cursor: str | None, partitions: int) -> tuple[int, str | None]:
    from chalicelib.store import InvalidCursor

    if not cursor:
        return 0, None
    try:
        pos = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        part, inner = pos["p"], pos["c"]
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(part, int) or not 0 <= part < partitions or not (inner is None or isinstance(inner, str)):
        raise InvalidCursor("cursor does not belong to this segment")
    return part, inner


def evaluate(corp_id: str, p: Plan, *, page_size: int = EVAL_PAGE, cursor: str | None = None) -> Iterator[MemberPage]:
    """The plan's matching relations, newest first within each partition, one page per DynamoDB
    read (a filtered read may match none: its page is empty, and its cursor still moves on). Memory
    holds one page; `cursor` (any page's) resumes right after that page, so a planner can stop and
    continue later, e.g. in its next queue message."""
    from chalicelib.store import get_table

    table = get_table()
    part, inner = _position(cursor, len(p.partitions))
    while part < len(p.partitions):
        items, inner = table.query(p.partitions[part], index=p.index, sk_between=p.sk_between, limit=page_size,
                                   cursor=inner, newest_first=True, filter_expression=p.filter_expression,
                                   names=p.names, values=p.values or None)
        if inner is None:
            part += 1
        members = [Member(i["customer_id"], i["staff_id"], RelationItem.model_validate(i)) for i in items]
        yield MemberPage(members, _cursor(part, inner) if part < len(p.partitions) else None)


def preview(corp_id: str, f: SegmentFilter, *, sample: int) -> Preview:
    """Count every match (one full evaluation, holding one page at a time) and name the first `sample`."""
    from chalicelib.corps import staff
    from chalicelib.customers import items as customer_items

    p = plan(corp_id, f)
    count = reads = 0
    picked: list[RelationItem] = []
    for page in evaluate(corp_id, p, page_size=PREVIEW_PAGE):
        reads += 1
        count += len(page.members)
        picked.extend(m.relation for m in page.members[:sample - len(picked)])
    profiles = customer_items.profiles(corp_id, [r.customer_id for r in picked]) if picked else {}
    staff_names = staff.names(corp_id) if picked else {}
    rows = [SampleRow(customer_id=r.customer_id, customer_name=getattr(profiles.get(r.customer_id), "name", None),
                      staff_id=r.staff_id, staff_name=staff_names.get(r.staff_id), status=r.status, state=r.state,
                      added_at=r.added_at, tags=sorted(r.tags)) for r in picked]
    return Preview(count=count, sample=rows, index=p.index_name, reads=reads)


# -- saved segments ------------------------------------------------------------------------------------
def get(corp_id: str, segment_id: str) -> SegmentItem:
    seg = segment_items.get(corp_id, segment_id)
    if seg is None:
        raise SegmentNotFound(segment_id)
    return seg


def filter_of(seg: SegmentItem) -> SegmentFilter:
    return SegmentFilter.model_validate(seg.filter)


def members(corp_id: str, segment_id: str, *, page_size: int = EVAL_PAGE, cursor: str | None = None,
            merged: bool = False) -> Iterator[MemberPage]:
    """A saved segment's matching relations as a stream of pages (for a broadcast planner;
    `merged`: newest first across the corp, see `plan`)."""
    return evaluate(corp_id, plan(corp_id, filter_of(get(corp_id, segment_id)), merged=merged), page_size=page_size,
                    cursor=cursor)


def create(corp_id: str, req: SegmentCreate) -> SegmentItem:
    import secrets

    plan(corp_id, req.filter)
    now = int(time.time())
    seg = SegmentItem(segment_id=f"s{time.time_ns() // 1_000_000:011x}{secrets.token_hex(3)}", name=req.name,
                      filter=req.filter.stored(), created_at=now, updated_at=now)
    segment_items.put_new(corp_id, seg)
    return seg


def update(corp_id: str, segment_id: str, req: SegmentUpdate) -> SegmentItem:
    seg = get(corp_id, segment_id)
    changes: dict[str, Any] = {"updated_at": int(time.time()), "version": seg.version + 1}
    if req.name is not None:
        changes["name"] = req.name
    if req.filter is not None:
        plan(corp_id, req.filter)
        changes["filter"] = req.filter.stored()
    changed = seg.model_copy(update=changes)
    segment_items.save(corp_id, changed, expected_version=seg.version)
    return changed


def delete(corp_id: str, segment_id: str) -> None:
    if not segment_items.delete(corp_id, segment_id):
        raise SegmentNotFound(segment_id)
