"""Handovers as stored: the handover, its chunks (one WeCom call of <= 100 ids each), each
customer's and group's progress, and the pointers the transfer callbacks find their handover by.

A chunk is claimed (pending -> calling) before its WeCom call, under a condition: a redelivered
chunk message finds it claimed and starts nothing. Its answer moves it to called (or failed); a
claim whose answer was lost stays calling until `transfer_result` (groups: groupchat/get) decides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema
from chalicelib.store.events import StoreOp

Mode = Literal["in_service", "resigned"]
HandoverStatus = Literal["running", "waiting", "done"]
ChunkStatus = Literal["pending", "calling", "called", "failed"]
EntryKind = Literal["customer", "group"]
EntryStatus = Literal["queued", "waiting", "done", "refused", "takeover_full", "limit_reached", "failed"]
UNSETTLED = ("queued", "waiting")


class HandoverItem(Model):
    handover_id: str
    mode: Mode
    from_staff_id: str
    takeover_ids: list[str]
    source: Literal["all", "list", "segment", "unassigned"]
    segment_id: str | None = None
    groups: bool = False
    message: str | None = None
    status: HandoverStatus = "running"
    chunks: int = 0
    customers: int = 0
    group_count: int = 0
    created_at: int
    updated_at: int
    polled_at: int = 0
    finished_at: int | None = None


class ChunkItem(Model):
    handover_id: str
    chunk: int
    kind: EntryKind
    takeover_id: str
    ids: list[str] = Field(min_length=1, max_length=100)
    status: ChunkStatus = "pending"
    claimed_at: int | None = None
    retry_at: int = 0  # WeCom limited its call: not re-sent by the tick before this
    updated_at: int = 0
    calls: int = 0  # WeCom calls made for it (a lost answer re-calls what transfer_result did not show)
    errcode: int | None = None


class EntryItem(Model):
    handover_id: str
    kind: EntryKind
    target_id: str
    takeover_id: str
    chunk: int
    status: EntryStatus = "queued"
    errcode: int | None = None
    reason: str | None = None
    takeover_time: int | None = None
    updated_at: int = 0


class Claimed(Exception):
    """The chunk is not in the state the caller read (another delivery claimed or settled it)."""


def _handover_item(h: HandoverItem, corp_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {**keys.handover(corp_id, h.handover_id), "type": "handover", "corp_id": corp_id,
                            **h.model_dump(exclude_none=True)}
    if h.status != "done":  # listed for the minute tick until settled
        item[schema.GSI2_PK] = keys.open_handovers_partition()
        item[schema.GSI2_SK] = f"{corp_id}#{h.handover_id}"
    return item


def _chunk_item(corp_id: str, c: ChunkItem) -> dict[str, Any]:
    return {**keys.handover_chunk(corp_id, c.handover_id, c.chunk), "type": "handover_chunk",
            **c.model_dump(exclude_none=True)}


def _entry_item(corp_id: str, e: EntryItem) -> dict[str, Any]:
    return {**keys.handover_entry(corp_id, e.handover_id, e.kind, e.target_id), "type": "handover_entry",
            **e.model_dump(exclude_none=True)}


def create(corp_id: str, h: HandoverItem, chunks: list[ChunkItem], entries: list[EntryItem],
           from_staff: str) -> None:
    """Chunks, entries and pointers first, the handover last: a request that dies half-way leaves
    nothing listed (and nothing called: chunk messages are sent after this returns)."""
    table = get_table()
    pointers = []
    for e in entries:
        if e.kind == "customer":
            for staff in (from_staff, e.takeover_id):
                pointers.append({**keys.handover_pointer(corp_id, e.target_id, staff), "type": "handover_pointer",
                                 "handover_id": h.handover_id, "from_staff_id": from_staff})
    table.batch_put([_chunk_item(corp_id, c) for c in chunks] + [_entry_item(corp_id, e) for e in entries]
                    + pointers)
    table.put(_handover_item(h, corp_id), condition="attribute_not_exists(PK)")


def get(corp_id: str, handover_id: str) -> HandoverItem | None:
    item = get_table().get(keys.handover(corp_id, handover_id), consistent=True)
    return HandoverItem.model_validate(item) if item else None


def list_handovers(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[HandoverItem], str | None]:
    items, nxt = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.handover_prefix(), limit=limit,
                                   cursor=cursor, newest_first=True)
    return [HandoverItem.model_validate(i) for i in items], nxt


def save(corp_id: str, h: HandoverItem) -> None:
    get_table().put(_handover_item(h, corp_id))


def open_handovers() -> list[tuple[str, str]]:
    """(corp_id, handover_id) of every handover not settled yet."""
    items = get_table().query_all(keys.open_handovers_partition(), index=schema.GSI2)
    return [(i["corp_id"], i["handover_id"]) for i in items]


# -- chunks ------------------------------------------------------------------------------------------
def get_chunk(corp_id: str, handover_id: str, chunk: int) -> ChunkItem | None:
    item = get_table().get(keys.handover_chunk(corp_id, handover_id, chunk), consistent=True)
    return ChunkItem.model_validate(item) if item else None


def chunks(corp_id: str, handover_id: str) -> list[ChunkItem]:
    items = get_table().query_all(keys.handover_partition(corp_id, handover_id),
                                  sk_prefix=keys.handover_chunk_prefix(), consistent=True)
    return [ChunkItem.model_validate(i) for i in items]


def move_chunk(corp_id: str, chunk: ChunkItem, *, was: ChunkStatus, to: ChunkStatus, now: int,
               **changes: Any) -> ChunkItem:
    """The chunk from status `was` to `to` (with `changes`), or Claimed if it is not `was` any more."""
    moved = chunk.model_copy(update={"status": to, "updated_at": now, **changes})
    try:
        get_table().put(_chunk_item(corp_id, moved), condition="#status = :was",
                        names={"#status": "status"}, values={":was": was})
    except ConditionFailed as exc:
        raise Claimed(f"chunk {chunk.chunk} of {chunk.handover_id} is not {was}") from exc
    return moved


# -- entries -----------------------------------------------------------------------------------------
def put_entries(corp_id: str, entries: list[EntryItem]) -> None:
    get_table().batch_put([_entry_item(corp_id, e) for e in entries])


def entries(corp_id: str, handover_id: str, kind: EntryKind) -> list[EntryItem]:
    items = get_table().query_all(keys.handover_partition(corp_id, handover_id),
                                  sk_prefix=keys.handover_entry_prefix(kind), consistent=True)
    return [EntryItem.model_validate(i) for i in items]


def entries_page(corp_id: str, handover_id: str, kind: EntryKind, *, status: str | None, limit: int,
                 cursor: str | None) -> tuple[list[EntryItem], str | None]:
    kwargs: dict[str, Any] = {}
    if status:
        kwargs = {"filter_expression": "#status = :status", "names": {"#status": "status"},
                  "values": {":status": status}}
    items, nxt = get_table().query_filled(keys.handover_partition(corp_id, handover_id), limit=limit,
                                          cursor=cursor, max_reads=10 if status else 1,
                                          sk_prefix=keys.handover_entry_prefix(kind), **kwargs)
    return [EntryItem.model_validate(i) for i in items], nxt


def pointer_of(item: dict[str, Any] | None) -> str | None:
    return item.get("handover_id") if item else None


def settled_by_callback(corp_id: str, handover_id: str, customer_id: str, *, status: EntryStatus,
                        at: int, reason: str | None = None) -> StoreOp:
    """A transfer callback settles a customer still queued or waiting (for the event's commit);
    dropped when the entry is settled already (by transfer_result) or is not this handover's."""
    values: dict[str, Any] = {":status": status, ":at": at, ":queued": "queued", ":waiting": "waiting"}
    expression = "SET #status = :status, updated_at = :at"
    if status == "done":
        expression += ", takeover_time = :at"
    if reason:
        expression += ", reason = :reason"
        values[":reason"] = reason
    return StoreOp(get_table().op_update(
        keys.handover_entry(corp_id, handover_id, "customer", customer_id), expression=expression,
        names={"#status": "status"}, values=values,
        condition="attribute_exists(PK) AND #status IN (:queued, :waiting)"), stale_ok=True)
