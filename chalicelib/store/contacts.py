"""Customers, their relations with staff members, their timelines, and daily counters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from chalicelib.store import get_table, keys, schema
from chalicelib.store.events import StoreOp

RelationStatus = Literal["active", "pending", "lost", "removed", "transferred"]


class RelationItem(BaseModel):
    customer_id: str
    staff_id: str
    status: RelationStatus
    state: str | None = None
    channel_code_id: str | None = None
    added_at: int | None = None
    ended_at: int | None = None
    last_event_at: int
    tags: list[str] = []


class TimelineEntry(BaseModel):
    customer_id: str
    at: int
    kind: str
    staff_id: str | None = None
    details: dict[str, Any] = {}


def _added_sk(added_at: int, customer_id: str, staff_id: str) -> str:
    return f"{added_at:012d}#{customer_id}#{staff_id}"


def relation_added(corp_id: str, rel: RelationItem) -> StoreOp:
    """Upsert a relation on add / half-add; stale when a newer event already touched it."""
    table = get_table()
    added_at = rel.added_at or rel.last_event_at
    return StoreOp(
        table.op_update(
            keys.relation(corp_id, rel.customer_id, rel.staff_id),
            expression=(
                "SET #type = :type, customer_id = :c, staff_id = :s, #status = :status, "
                "#state = :state, channel_code_id = :chan, last_event_at = :at, "
                "added_at = if_not_exists(added_at, :added), "
                "GSI1PK = :g1pk, GSI1SK = if_not_exists(GSI1SK, :g1sk), "
                "GSI2PK = :g2pk, GSI2SK = if_not_exists(GSI2SK, :g2sk) REMOVE ended_at"
            ),
            names={"#type": "type", "#status": "status", "#state": "state"},
            values={
                ":type": "relation", ":c": rel.customer_id, ":s": rel.staff_id,
                ":status": rel.status, ":state": rel.state or "", ":chan": rel.channel_code_id or "",
                ":at": rel.last_event_at, ":added": added_at,
                ":g1pk": keys.staff_relations_partition(corp_id, rel.staff_id),
                ":g1sk": _added_sk(added_at, rel.customer_id, rel.staff_id),
                ":g2pk": keys.relations_by_corp_partition(corp_id),
                ":g2sk": _added_sk(added_at, rel.customer_id, rel.staff_id),
            },
            condition="attribute_not_exists(last_event_at) OR last_event_at <= :at",
        ),
        stale_ok=True,
    )


def relation_ended(corp_id: str, customer_id: str, staff_id: str, *, status: RelationStatus,
                   at: int) -> StoreOp:
    table = get_table()
    return StoreOp(
        table.op_update(
            keys.relation(corp_id, customer_id, staff_id),
            expression=(
                "SET #type = :type, customer_id = :c, staff_id = :s, #status = :status, "
                "ended_at = :at, last_event_at = :at, GSI1PK = :g1pk, GSI2PK = :g2pk, "
                "GSI1SK = if_not_exists(GSI1SK, :gsk), GSI2SK = if_not_exists(GSI2SK, :gsk)"
            ),
            names={"#type": "type", "#status": "status"},
            values={
                ":type": "relation", ":c": customer_id, ":s": staff_id, ":status": status,
                ":at": at,
                ":g1pk": keys.staff_relations_partition(corp_id, staff_id),
                ":g2pk": keys.relations_by_corp_partition(corp_id),
                ":gsk": _added_sk(0, customer_id, staff_id),
            },
            condition="attribute_not_exists(last_event_at) OR last_event_at <= :at",
        ),
        stale_ok=True,
    )


def customer_seen(corp_id: str, customer_id: str, *, at: int) -> StoreOp:
    return StoreOp(
        get_table().op_update(
            keys.customer(corp_id, customer_id),
            expression=("SET #type = :type, customer_id = :c, "
                        "first_seen_at = if_not_exists(first_seen_at, :at)"),
            names={"#type": "type"},
            values={":type": "customer", ":c": customer_id, ":at": at},
        )
    )


def timeline(corp_id: str, entry: TimelineEntry, identity: str) -> StoreOp:
    return StoreOp(
        get_table().op_put(
            {
                **keys.timeline_entry(corp_id, entry.customer_id, entry.at * 1000, identity[:16]),
                "type": "timeline",
                **entry.model_dump(),
            }
        )
    )


def count(corp_id: str, day: str, dimension: str, value: str, **increments: int) -> StoreOp:
    """ADD to a daily counter item; only ever committed together with its event step."""
    names = {"#type": "type", "#day": "day", "#dim": "dimension", "#val": "value"}
    values: dict[str, Any] = {":type": "counter", ":day": day, ":dim": dimension, ":val": value}
    adds = []
    for i, (field, n) in enumerate(sorted(increments.items())):
        names[f"#f{i}"] = field
        values[f":n{i}"] = n
        adds.append(f"#f{i} :n{i}")
    return StoreOp(
        get_table().op_update(
            keys.counter(corp_id, day, dimension, value),
            expression="SET #type = :type, #day = :day, #dim = :dim, #val = :val ADD " + ", ".join(adds),
            names=names,
            values=values,
        )
    )


def get_relation(corp_id: str, customer_id: str, staff_id: str) -> RelationItem | None:
    item = get_table().get(keys.relation(corp_id, customer_id, staff_id))
    return RelationItem.model_validate(item) if item else None


def customer_items(corp_id: str, customer_id: str) -> list[dict[str, Any]]:
    """The customer, its relations and its timeline: one query (they share an SK prefix)."""
    return get_table().query_all(
        keys.corp_partition(corp_id), sk_prefix=keys.customer_prefix(corp_id, customer_id)
    )


def relations_of_customer(corp_id: str, customer_id: str) -> list[RelationItem]:
    items = get_table().query_all(keys.corp_partition(corp_id), sk_prefix=keys.relation_prefix(customer_id))
    return [RelationItem.model_validate(i) for i in items]


def counters(corp_id: str, day_from: str, day_to: str) -> list[dict[str, Any]]:
    return get_table().query_all(
        keys.corp_partition(corp_id),
        sk_between=(keys.counter_prefix(day_from), keys.counter_prefix(day_to) + "\uffff"),
    )


def list_relations(corp_id: str, *, staff_id: str | None, limit: int, cursor: str | None,
                   newest_first: bool = True) -> tuple[list[RelationItem], str | None]:
    if staff_id:
        partition, index = keys.staff_relations_partition(corp_id, staff_id), schema.GSI1
    else:
        partition, index = keys.relations_by_corp_partition(corp_id), schema.GSI2
    items, next_cursor = get_table().query(partition, index=index, limit=limit, cursor=cursor,
                                           newest_first=newest_first)
    return [RelationItem.model_validate(i) for i in items], next_cursor
