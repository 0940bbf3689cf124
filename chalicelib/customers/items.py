"""Customers, their relations with staff members, their timelines, and daily counters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema
from chalicelib.store.events import StoreOp

RelationStatus = Literal["active", "pending", "lost", "removed", "transferred"]


NO_CHANNEL = "-"  # the channel of contacts that came through no channel code (stats, filters)


class RelationItem(Model):
    customer_id: str
    staff_id: str
    status: RelationStatus
    state: str | None = Field(None, description="the channel code of the relation's latest add; null: none")
    added_at: int | None = None
    ended_at: int | None = None
    last_event_at: int
    tags: list[str] = []

    @field_validator("state", mode="before")
    @classmethod
    def _no_state(cls, v: Any) -> Any:
        return v or None  # events store "" for "no channel code", syncs leave it out: one meaning


class TimelineEntry(Model):
    customer_id: str
    at: int
    kind: str
    staff_id: str | None = None
    details: dict[str, Any] = {}


def _added_sk(added_at: int, customer_id: str, staff_id: str) -> str:
    return f"{added_at:012d}#{customer_id}#{staff_id}"


ACTIVE = ("active", "pending")


def relation_added(corp_id: str, rel: RelationItem, *, restart: bool = False,
                   drop_tags: list[str] | tuple[str, ...] = (),
                   set_tags: list[str] | tuple[str, ...] | None = None,
                   restart_tags: list[str] | tuple[str, ...] | None = None,
                   condition: str | None = None) -> StoreOp:
    """Upsert a relation on add / half-add; stale when a newer event already touched it.

    `restart`: a re-add of an ended relation (the handler read it ended): it starts again, its
    added_at and list position (GSI sort keys) at this add. `drop_tags`: tags to take off (the
    ended relation's old ones); `set_tags`: the relation's tags exactly (a handover: the customer
    keeps the tags it had). `restart_tags`: the handler did not read the relation (a channel-code
    add: one request less per add); the store's conditions decide instead: an ended, older
    relation restarts with exactly these tags. `condition`: replaces the default (the add is not
    older than the relation's last event; an end in the same second wins)."""
    if restart_tags is not None:
        return _relation_added_unread(corp_id, rel, restart_tags)
    table = get_table()
    added_at = rel.added_at or rel.last_event_at
    if restart:
        added = "added_at = :added, GSI1SK = :g1sk, GSI2SK = :g2sk"
    else:
        added = "added_at = if_not_exists(added_at, :added), GSI1SK = if_not_exists(GSI1SK, :g1sk), " \
                "GSI2SK = if_not_exists(GSI2SK, :g2sk)"
    values: dict[str, Any] = {}
    tail = " REMOVE ended_at"
    if set_tags is not None:
        if set_tags:
            added += ", tags = :tags"
            values[":tags"] = set(set_tags)
        else:
            tail += ", tags"
    elif drop_tags:
        tail += " DELETE tags :drop"
        values[":drop"] = set(drop_tags)
    return StoreOp(
        table.op_update(
            keys.relation(corp_id, rel.customer_id, rel.staff_id),
            expression=(
                "SET #type = :type, customer_id = :c, staff_id = :s, #status = :status, "
                f"#state = :state, last_event_at = :at, GSI1PK = :g1pk, GSI2PK = :g2pk, {added}{tail}"
            ),
            names={"#type": "type", "#status": "status", "#state": "state"},
            values={
                ":type": "relation", ":c": rel.customer_id, ":s": rel.staff_id,
                ":status": rel.status, ":state": rel.state or "",
                ":at": rel.last_event_at, ":added": added_at,
                ":g1pk": keys.staff_relations_partition(corp_id, rel.staff_id),
                ":g1sk": _added_sk(added_at, rel.customer_id, rel.staff_id),
                ":g2pk": keys.relations_by_corp_partition(corp_id),
                ":g2sk": _added_sk(added_at, rel.customer_id, rel.staff_id),
                ":lost": "lost", ":removed": "removed", ":transferred": "transferred",
                **values,
            },
            # An end in the same second wins over an add (its order is unknown; staying ended is
            # the safe side); a half add then its acceptance in one second still go through.
            condition=condition or ("attribute_not_exists(last_event_at) OR last_event_at < :at OR "
                                    "(last_event_at = :at AND NOT #status IN (:lost, :removed, :transferred))"),
        ),
        stale_ok=True,
        # An add that arrives after a newer end still tells when the relation began: the ended
        # relation gets its added_at, and its list position (GSI sort keys) moves to that time.
        if_stale=table.op_update(
            keys.relation(corp_id, rel.customer_id, rel.staff_id),
            expression="SET added_at = :added, GSI1SK = :sk, GSI2SK = :sk",
            values={":added": added_at, ":sk": _added_sk(added_at, rel.customer_id, rel.staff_id)},
            condition="attribute_exists(last_event_at) AND attribute_not_exists(added_at)",
        ),
    )


def _relation_added_unread(corp_id: str, rel: RelationItem, restart_tags: list[str] | tuple[str, ...]) -> StoreOp:
    """relation_added without a read: three ops for the one item, tried in turn by the commit
    (each the stand-in of the one before when its condition fails): the add of a relation that is
    new or not ended; the restart of an ended, older one; the added_at of a newer one (stale)."""
    ended = "#status IN (:lost, :removed, :transferred)"
    add = relation_added(corp_id, rel, condition=f"attribute_not_exists(last_event_at) OR "
                                                 f"(last_event_at <= :at AND NOT {ended})")
    restarted = relation_added(corp_id, rel, restart=True, set_tags=list(restart_tags),
                               condition=f"last_event_at < :at AND {ended}")
    return StoreOp(add.op, stale_ok=True, if_stale=StoreOp(restarted.op, stale_ok=True, if_stale=add.if_stale))


def relation_ended(corp_id: str, customer_id: str, staff_id: str, *, status: RelationStatus,
                   at: int, counted_from: RelationItem | None | bool = False) -> StoreOp:
    """The relation ends. `counted_from`: the relation as the handler read it when the end is
    counted (None: never recorded); the commit then holds only if the relation is still as read,
    so two ends processed at once cannot both count (the loser's commit fails, its redelivery
    reads the relation ended and counts nothing). False (not counted): stale_ok as usual."""
    table = get_table()
    values: dict[str, Any] = {
        ":type": "relation", ":c": customer_id, ":s": staff_id, ":status": status,
        ":at": at,
        ":g1pk": keys.staff_relations_partition(corp_id, staff_id),
        ":g2pk": keys.relations_by_corp_partition(corp_id),
        # added time unknown (a relation from before the corp adopted us): list it by its end
        ":gsk": _added_sk(at, customer_id, staff_id),
    }
    expression = (
        "SET #type = :type, customer_id = :c, staff_id = :s, #status = :status, "
        "ended_at = :at, last_event_at = :at, GSI1PK = :g1pk, GSI2PK = :g2pk, "
        "GSI1SK = if_not_exists(GSI1SK, :gsk), GSI2SK = if_not_exists(GSI2SK, :gsk)"
    )
    names = {"#type": "type", "#status": "status"}
    if counted_from is False:
        condition, stale_ok = "attribute_not_exists(last_event_at) OR last_event_at <= :at", True
    elif counted_from is None or counted_from.last_event_at <= at:  # type: ignore[union-attr]
        if counted_from is None:
            condition = "attribute_not_exists(last_event_at)"
        else:
            condition = "last_event_at = :seen AND #status = :was"
            values.update({":seen": counted_from.last_event_at, ":was": counted_from.status})
        stale_ok = False
    else:  # an end older than the relation's last event (a later re-add): only check it is as read
        expression, names = "SET last_event_at = :seen", {"#status": "status"}
        values = {":seen": counted_from.last_event_at, ":was": counted_from.status}  # type: ignore[union-attr]
        condition, stale_ok = "last_event_at = :seen AND #status = :was", False
    return StoreOp(
        table.op_update(keys.relation(corp_id, customer_id, staff_id), expression=expression,
                        names=names, values=values, condition=condition),
        stale_ok=stale_ok,
    )


def relation_attributed(corp_id: str, rel: RelationItem, *, state: str, tags: list[str]) -> StoreOp:
    """A handover's new relation, read without a channel and untouched since its add, takes the
    handed-over relation's channel and tags. Not stale_ok: the counts moved with it must not
    apply without it (a failed commit is redelivered and reads the relation again)."""
    values: dict[str, Any] = {":state": state, ":seen": rel.last_event_at, ":none": ""}
    expression = "SET #state = :state"
    if tags:
        expression += " ADD tags :tags"
        values[":tags"] = set(tags)
    return StoreOp(get_table().op_update(
        keys.relation(corp_id, rel.customer_id, rel.staff_id), expression=expression,
        names={"#state": "state"}, values=values,
        condition="last_event_at = :seen AND (attribute_not_exists(#state) OR #state = :none)"))


def customer_seen(corp_id: str, customer_id: str, *, at: int,
                  profile: CustomerProfile | None = None) -> StoreOp:
    """The customer item on an add; with what WeCom said of the customer when it is known."""
    fields = profile.model_dump(exclude_none=True, exclude={"customer_id", "first_seen_at"}) if profile else {}
    names = {"#type": "type", **{f"#{k}": k for k in fields}}
    values = {":type": "customer", ":c": customer_id, ":at": at, **{f":{k}": v for k, v in fields.items()}}
    return StoreOp(
        get_table().op_update(
            keys.customer(corp_id, customer_id),
            expression=("SET #type = :type, customer_id = :c, first_seen_at = if_not_exists(first_seen_at, :at)"
                        + "".join(f", #{k} = :{k}" for k in fields)),
            names=names,
            values=values,
        )
    )


def timeline(corp_id: str, entry: TimelineEntry, identity: str) -> StoreOp:
    return StoreOp(
        get_table().op_put(
            {
                **keys.timeline_entry(corp_id, entry.customer_id, entry.at * 1000,
                                      f"{identity[:16]}#{entry.kind}"),
                "type": "timeline",
                **entry.model_dump(),
            }
        )
    )


def get_relation(corp_id: str, customer_id: str, staff_id: str) -> RelationItem | None:
    item = get_table().get(keys.relation(corp_id, customer_id, staff_id))
    return RelationItem.model_validate(item) if item and "status" in item else None


def items_of_customer(corp_id: str, customer_id: str) -> list[dict[str, Any]]:
    """The customer, its relations and its timeline: one query (they share an SK prefix). The
    range is exact: `CUSTOMER#wmA` itself and `CUSTOMER#wmA#...`, never `CUSTOMER#wmAB`."""
    own = keys.customer(corp_id, customer_id)["SK"]
    return get_table().query_all(keys.corp_partition(corp_id), sk_between=(own, own + "#\uffff"))


def profiles(corp_id: str, customer_ids: list[str]) -> dict[str, CustomerProfile]:
    """The stored profiles of these customers (one BatchGetItem per 100); customers without one are absent."""
    found = get_table().batch_get([keys.customer(corp_id, c) for c in dict.fromkeys(customer_ids)])
    return {i["customer_id"]: CustomerProfile.model_validate(i) for i in found if i.get("type") == "customer"}


def relations_of_customer(corp_id: str, customer_id: str) -> list[RelationItem]:
    items = get_table().query_all(keys.corp_partition(corp_id), sk_prefix=keys.relation_prefix(customer_id))
    return [RelationItem.model_validate(i) for i in items if "status" in i]


class CustomerProfile(Model):
    customer_id: str
    name: str | None = None
    avatar: str | None = None
    customer_type: int | None = None  # 1 WeChat user, 2 WeCom user
    gender: int | None = None
    unionid: str | None = None
    first_seen_at: int | None = None


ENDED = ("lost", "removed", "transferred")


def _synced_relation(corp_id: str, rel: RelationItem, old: dict[str, Any], read_at: int) -> dict[str, Any] | None:
    """The relation item after merging WeCom's view of it; None to leave the stored one alone."""
    if old.get("last_event_at", 0) > read_at:
        return None  # an event newer than the read knows better
    added = min(t for t in (rel.added_at, old.get("added_at")) if t) if (rel.added_at or old.get("added_at")) else 0
    ended = old.get("status") in ENDED and (rel.added_at or 0) <= (old.get("ended_at") or 0)
    key = keys.relation(corp_id, rel.customer_id, rel.staff_id)
    item = {**old, **key, "type": "relation",
            **rel.model_dump(exclude={"tags", "status", "last_event_at", "ended_at"}),
            "added_at": added, "status": old["status"] if ended else "active",
            "last_event_at": max(rel.last_event_at, old.get("last_event_at", 0)),
            schema.GSI1_PK: keys.staff_relations_partition(corp_id, rel.staff_id),
            schema.GSI1_SK: _added_sk(added, rel.customer_id, rel.staff_id),
            schema.GSI2_PK: keys.relations_by_corp_partition(corp_id),
            schema.GSI2_SK: _added_sk(added, rel.customer_id, rel.staff_id)}
    if not ended:
        item.pop("ended_at", None)
    item.pop("tags", None)
    if rel.tags:
        item["tags"] = set(rel.tags)
    return item


def _unchanged(old: dict[str, Any] | None, item: dict[str, Any]) -> bool:
    return old == {k: v for k, v in item.items() if v is not None}


SYNC_WRITE_ATTEMPTS = 3


def put_synced(corp_id: str, profiles: list[CustomerProfile], relations: list[RelationItem], *,
               read_at: int, page_id: str | None = None) -> int:
    """Merge what a full sync read from WeCom at `read_at` into what callbacks recorded; returns
    how many customers were new.

    - A customer this page created is marked with `page_id` (job and page): a re-run of a page
      whose first attempt died after its writes counts them as new again, as that attempt never
      reported them; another page (a customer shared by two staff) does not.
    - A relation touched by an event newer than the read is left alone (the event knows better).
    - A relation that ended (lost / removed / transferred) stays ended unless WeCom's add time is
      after the end (a re-add): WeCom keeps listing a customer who deleted the staff member.
    - `first_seen_at` and `added_at` only ever move earlier; fields written by events are kept.
    - Items equal to what is stored are not written at all (a daily sync mostly changes nothing).
    - Relations are written in one transaction per page, each on the condition that it is still
      as read; if an event changed one in between, the page is re-read and merged again.
    Re-running a page writes the same items again, so a resumed or redelivered page never
    duplicates anything. Per page: 1-2 BatchGetItem, a few BatchWriteItem (profiles), 0-1
    TransactWriteItems (relations that changed).
    """
    table = get_table()
    customer_keys = [keys.customer(corp_id, p.customer_id) for p in profiles]
    relation_keys = [keys.relation(corp_id, r.customer_id, r.staff_id) for r in relations]
    found = {i["SK"]: i for i in table.batch_get(customer_keys + relation_keys)}
    customers: list[dict[str, Any]] = []
    new_customers = 0
    for p, key in zip(profiles, customer_keys, strict=True):
        old = found.get(key["SK"])
        new_customers += old is None or (page_id is not None and old.get("first_synced_by") == page_id)
        seen = [t for t in (p.first_seen_at, (old or {}).get("first_seen_at")) if t]
        item = {**(old or {}), **key, "type": "customer",
                **p.model_dump(exclude_none=True, exclude={"first_seen_at"}),
                "first_seen_at": min(seen) if seen else None}
        if old is None and page_id is not None:
            item["first_synced_by"] = page_id
        if not _unchanged(old, item):
            customers.append(item)
    table.batch_put(customers)

    for attempt in range(SYNC_WRITE_ATTEMPTS):
        if attempt:  # an event changed a relation between our read and our write: read again
            found = {i["SK"]: i for i in table.batch_get(relation_keys)}
        ops = []
        for rel, key in zip(relations, relation_keys, strict=True):
            old = found.get(key["SK"])
            item = _synced_relation(corp_id, rel, old or {}, read_at)
            if item is None or _unchanged(old, item):
                continue
            if old is None:
                ops.append(table.op_put(item, condition="attribute_not_exists(PK)"))
            elif "last_event_at" in old:
                ops.append(table.op_put(item, condition="last_event_at = :seen",
                                        values={":seen": old["last_event_at"]}))
            else:  # only tags so far (their add event's commit is on its way)
                ops.append(table.op_put(item, condition="attribute_not_exists(last_event_at)"))
        if not ops:
            break
        try:
            for i in range(0, len(ops), 100):
                table.transact(ops[i:i + 100])
            break
        except ConditionFailed:
            if attempt == SYNC_WRITE_ATTEMPTS - 1:
                raise
    return new_customers


FILTERED_READS = 10  # DynamoDB reads per filtered page of customers, at most


def search_relations(corp_id: str, *, staff_id: str | None = None, tag: str | None = None,
                     channel: str | None = None, status: str | None = None,
                     added_from: int | None = None, added_to: int | None = None,
                     limit: int, cursor: str | None) -> tuple[list[RelationItem], str | None]:
    """Relations newest first, by staff member (GSI1) or corp-wide (GSI2), filtered.

    Filters apply after DynamoDB reads, so a filtered page reads on until it is full or the range
    ends; after `FILTERED_READS` reads it is returned as it is (short, even empty, for a value
    rarer than one in 10 x limit) with `next_cursor` set. Callers follow the cursor until null.
    """
    if staff_id:
        partition, index = keys.staff_relations_partition(corp_id, staff_id), schema.GSI1
    else:
        partition, index = keys.relations_by_corp_partition(corp_id), schema.GSI2
    lo = f"{added_from or 0:012d}"
    hi = f"{added_to if added_to is not None else 10**12 - 1:012d}\uffff"
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    filters = []
    if tag:
        names["#tags"] = "tags"
        values[":tag"] = tag
        filters.append("contains(#tags, :tag)")
    if channel == NO_CHANNEL:
        names["#state"] = "state"
        values[":none"] = ""
        filters.append("(attribute_not_exists(#state) OR #state = :none)")
    elif channel:
        names["#state"] = "state"
        values[":state"] = channel
        filters.append("#state = :state")
    if status:
        names["#status"] = "status"
        values[":status"] = status
        filters.append("#status = :status")
    items, next_cursor = get_table().query_filled(
        partition, index=index, sk_between=(lo, hi), limit=limit, cursor=cursor, newest_first=True,
        max_reads=FILTERED_READS if filters else 1,
        filter_expression=" AND ".join(filters) or None, names=names or None, values=values or None)
    return [RelationItem.model_validate(i) for i in items], next_cursor
