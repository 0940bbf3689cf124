"""Handovers (离职继承 / 在职转接): a staff member's customers, and optionally groups, moved to one
takeover or spread over several, and followed to their end.

Planning (the request): the member and takeovers are checked, the customers resolved (all of the
member's, a list, or a saved segment's) and cut into chunks of WeCom's 100 ids; chunk k goes to
takeover k mod n (round-robin by chunk: the fewest calls). Running: one chunk message at a time on
the sync queue (kind `handovers`, `handle_page`), so a handover's calls are paced one after the
other; each chunk is claimed before its call (items.move_chunk), so a redelivered message starts
nothing twice (WeCom moves a customer at most twice in 90 days). WeCom limiting or busy (an answer:
nothing was done) frees the claim and defers the message by WeCom's wait; an answer lost on the way
(timeout, 5xx) leaves the claim, and `transfer_result` (groups: groupchat/get) decides what was
started: the rest is called again. Settling: each customer waits until WeCom moves it (24 h) or
the customer refuses; the transfer callbacks (steps.py) and `transfer_result`, polled by the minute
tick while any customer waits, set done / refused / takeover_full. Groups move at once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from chalicelib.api.core import Page, PageQuery
from chalicelib.handovers import items
from chalicelib.handovers.items import ChunkItem, EntryItem, EntryKind, EntryStatus, HandoverItem, Mode
from chalicelib.platform.errors import FieldError, NotFound
from chalicelib.platform.model import Model

logger = logging.getLogger(__name__)

CHUNK = 100  # external_userid / chat_id_list per WeCom call
MAX_TAKEOVERS = 20
MAX_LISTED = 10_000

StaffId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-.@]{1,64}$")]
CustomerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]



# -- requests and views ------------------------------------------------------------------------------
class HandoverCreate(Model):
    """POST /handovers. Customers: `customer_ids`, or `segment_id` (its matching customers of the member),
    or neither: all of the member's customers. Cross-field rules (400 `validation_error`): no takeover is
    the member handed over or listed twice; `customer_ids` and `segment_id` not both; `message` only in
    service (WeCom sends none in a resigned handover)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    mode: Mode = Field(description="in_service: 在职转接 (transfer_customer, groupchat/onjob_transfer); "
                                   "resigned: 离职继承 (resigned/transfer_customer, groupchat/transfer)")
    from_staff_id: StaffId = Field(description="the member whose customers are handed over")
    takeover_ids: list[StaffId] = Field(min_length=1, max_length=MAX_TAKEOVERS,
                                        description="round-robin by chunk of 100; none may be `from_staff_id` "
                                                    "or listed twice")
    customer_ids: list[CustomerId] | None = Field(None, min_length=1, max_length=MAX_LISTED,
                                                  description="these customers of the member (not with segment_id)")
    segment_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = Field(
        None, description="the member's customers a saved segment selects (not with customer_ids)")
    groups: bool = Field(False, description="also the groups the member owns")
    message: str | None = Field(None, min_length=1, max_length=200,
                                description="transfer_success_msg to the customers (in service only)")


class UnassignedHandover(Model):
    """POST /handovers/unassigned: every departed member's customers awaiting assignment, one resigned
    handover per member."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    takeover_ids: list[StaffId] = Field(min_length=1, max_length=MAX_TAKEOVERS)
    groups: bool = False


class EntryView(Model):
    target_id: str = Field(description="the customer's external_userid, or the group's chat_id")
    takeover_id: str
    status: EntryStatus
    errcode: int | None = Field(None, description="WeCom's errcode when it refused (status failed / limit_reached)")
    reason: str | None = None
    takeover_time: int | None = None
    updated_at: int

    @classmethod
    def of(cls, e: EntryItem) -> EntryView:
        return cls.model_validate(e.model_dump(exclude={"handover_id", "kind", "chunk"}))


class HandoverView(Model):
    handover_id: str
    mode: Mode
    from_staff_id: str
    takeover_ids: list[str]
    source: str
    segment_id: str | None = None
    groups: bool
    status: Literal["running", "waiting", "done"] = Field(
        description="running: calls to make; waiting: customers WeCom has not moved yet; done: all settled")
    chunks: int
    customers: dict[str, int] = Field(description="customers by status (queued, waiting, done, refused, "
                                                  "takeover_full, limit_reached, failed)")
    group_statuses: dict[str, int] = Field(description="groups by status")
    created_at: int
    finished_at: int | None = None

    @classmethod
    def of(cls, corp_id: str, h: HandoverItem, *, counted: bool = True) -> HandoverView:
        def count(kind: EntryKind) -> dict[str, int]:
            return dict(Counter(e.status for e in items.entries(corp_id, h.handover_id, kind))) if counted else {}

        return cls(handover_id=h.handover_id, mode=h.mode, from_staff_id=h.from_staff_id,
                   takeover_ids=h.takeover_ids, source=h.source, segment_id=h.segment_id, groups=h.groups,
                   status=h.status, chunks=h.chunks, customers=count("customer"),
                   group_statuses=count("group") if h.groups else {}, created_at=h.created_at,
                   finished_at=h.finished_at)


class HandoverList(Model):
    handovers: list[HandoverView]


class EntryQuery(PageQuery):
    status: EntryStatus | None = None


class UnassignedView(Model):
    handover_staff_id: str
    customer_id: str
    dimission_time: int | None = None


# -- refusals ---------------------------------------------------------------------------------------
class InvalidHandover(FieldError):
    """A rule between fields (400 validation_error, naming the field)."""


class UnknownStaff(FieldError):
    """Members this corp does not have (400 `unknown_staff`), `details` naming the request's field
    (`takeover_ids`, `from_staff_id`, churn's `managers`) as a validation_error does."""

    def __init__(self, field_name: str, staff_ids: list[str]):
        super().__init__(field_name, f"not members of this corp with customer contact: {', '.join(staff_ids)}")
        self.staff_ids = staff_ids


class StaffResigned(ValueError):
    """An in-service handover of a member who has left (hand over as resigned)."""


class StaffInService(ValueError):
    """A resigned handover of a member who is still in service (hand over in service)."""


class UnknownCustomers(ValueError):
    def __init__(self, customer_ids: list[str]):
        shown = ", ".join(customer_ids[:10]) + (" ..." if len(customer_ids) > 10 else "")
        super().__init__(f"{len(customer_ids)} customer(s) are not customers of the member: {shown}")
        self.customer_ids = customer_ids


class UnknownSegment(ValueError):
    def __init__(self, segment_id: str):
        super().__init__(f"segment {segment_id} not found")


class NothingToHandOver(ValueError):
    """The selection holds no customer (and no group)."""


class HandoverNotFound(NotFound):
    what = "handover"


# -- planning ------------------------------------------------------------------------------------------
def new_id() -> str:
    from chalicelib.customers.sync import new_job_id

    return new_job_id()


def _check(corp_id: str, req: HandoverCreate | UnassignedHandover, from_staff: str | None, mode: Mode) -> None:
    from chalicelib.corps import staff

    takeovers = req.takeover_ids
    if from_staff is not None and from_staff in takeovers:
        raise InvalidHandover("takeover_ids", "a takeover cannot be the member handed over")
    if len(set(takeovers)) != len(takeovers):
        raise InvalidHandover("takeover_ids", "a takeover is listed twice")
    if isinstance(req, HandoverCreate):
        if req.customer_ids is not None and req.segment_id is not None:
            raise InvalidHandover("segment_id", "give customer_ids or segment_id, not both")
        if req.message is not None and mode == "resigned":
            raise InvalidHandover("message", "WeCom sends no message to the customers of a resigned handover")
    missing = staff.unknown(corp_id, list(takeovers))
    if missing:
        raise UnknownStaff("takeover_ids", missing)
    if from_staff is None:
        return
    in_service = from_staff in staff.directory(corp_id)
    if mode == "resigned" and in_service:
        raise StaffInService(f"{from_staff} is still in service: hand the customers over in service")
    if not in_service and not _departed(corp_id, from_staff):
        raise UnknownStaff("from_staff_id", [from_staff])
    if mode == "in_service" and not in_service:
        raise StaffResigned(f"{from_staff} has left the corp: hand the customers over as resigned")


def _departed(corp_id: str, staff_id: str) -> bool:
    """A member not in the directory who had customers here (stored relations), or whose customers
    WeCom lists as awaiting assignment: a departed member; anyone else is unknown to this corp."""
    from chalicelib.customers import items as customer_items

    found, _ = customer_items.search_relations(corp_id, staff_id=staff_id, limit=1, cursor=None)
    return bool(found) or any(u.handover_userid == staff_id for u in _unassigned(corp_id))


def _unassigned(corp_id: str) -> Iterator[Any]:
    from chalicelib.corps import registry as corps

    client, cursor = corps.wecom_client(corp_id), None
    while True:
        page = client.get_unassigned_list(cursor=cursor)
        yield from page.info
        if page.is_last or not page.next_cursor:
            return
        cursor = page.next_cursor


def _relations_of(corp_id: str, staff_id: str) -> Iterator[Any]:
    from chalicelib.customers import items as customer_items

    cursor = None
    while True:
        found, cursor = customer_items.search_relations(corp_id, staff_id=staff_id, status="active", limit=200,
                                                        cursor=cursor)
        yield from found
        if not cursor:
            return


def _customers(corp_id: str, req: HandoverCreate) -> list[str]:
    from chalicelib.customers import items as customer_items
    from chalicelib.store import get_table, keys

    member = req.from_staff_id
    if req.customer_ids is not None:
        wanted = list(dict.fromkeys(req.customer_ids))
        found = get_table().batch_get([keys.relation(corp_id, c, member) for c in wanted])
        theirs = {i["customer_id"] for i in found if i.get("status") in customer_items.ACTIVE}
        if req.mode == "resigned" and len(theirs) < len(wanted):
            theirs |= {u.external_userid for u in _unassigned(corp_id) if u.handover_userid == member}
        strangers = [c for c in wanted if c not in theirs]
        if strangers:
            raise UnknownCustomers(strangers)
        return wanted
    if req.segment_id is not None:
        from chalicelib.segments import service as segments

        try:
            pages = segments.members(corp_id, req.segment_id)
            return list(dict.fromkeys(m.customer_id for p in pages for m in p.members
                                      if m.staff_id == member and m.relation.status == "active"))
        except segments.SegmentNotFound:
            raise UnknownSegment(req.segment_id) from None
    ids = [r.customer_id for r in _relations_of(corp_id, member)]
    if req.mode == "resigned":
        ids += [u.external_userid for u in _unassigned(corp_id) if u.handover_userid == member]
    return sorted(dict.fromkeys(ids))


def _groups(corp_id: str, owner: str) -> list[str]:
    """The groups the member owns, as WeCom lists them (groupchat/list by owner: our group items learn
    their owner only from a read, which a group never synced has not had)."""
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import models as m

    client, ids, cursor = corps.wecom_client(corp_id), [], None
    while True:
        page = client.list_groupchats(m.GroupChatListRequest(owner_filter=m.OwnerFilter(userid_list=[owner]),
                                                             cursor=cursor, limit=1000))
        ids += [g.chat_id for g in page.group_chat_list]
        if not page.next_cursor:
            return sorted(dict.fromkeys(ids))
        cursor = page.next_cursor


def _chunks(handover_id: str, kind: EntryKind, ids: list[str], takeovers: list[str], first: int) -> list[ChunkItem]:
    return [ChunkItem(handover_id=handover_id, chunk=first + k, kind=kind, takeover_id=takeovers[k % len(takeovers)],
                      ids=ids[i:i + CHUNK]) for k, i in enumerate(range(0, len(ids), CHUNK))]


def start(corp_id: str, req: HandoverCreate, *, now: float | None = None, source: str | None = None,
          checked: bool = False) -> HandoverItem:
    """Check, plan and store a handover, then send its first chunk. `checked`: the member and the
    customers come from WeCom's unassigned list (no check against what is stored)."""
    now = int(time.time() if now is None else now)
    if not checked:
        _check(corp_id, req, req.from_staff_id, req.mode)
    customers = list(dict.fromkeys(req.customer_ids or [])) if checked else _customers(corp_id, req)
    groups = _groups(corp_id, req.from_staff_id) if req.groups else []
    if not customers and not groups:
        raise NothingToHandOver(f"{req.from_staff_id} has no customers{' or groups' if req.groups else ''} "
                                "to hand over in this selection")
    handover_id = new_id()
    takeovers = list(req.takeover_ids)
    chunks = _chunks(handover_id, "customer", customers, takeovers, 0)
    chunks += _chunks(handover_id, "group", groups, takeovers, len(chunks))
    entries = [EntryItem(handover_id=handover_id, kind=c.kind, target_id=t, takeover_id=c.takeover_id,
                         chunk=c.chunk, updated_at=now) for c in chunks for t in c.ids]
    h = HandoverItem(handover_id=handover_id, mode=req.mode, from_staff_id=req.from_staff_id,
                     takeover_ids=takeovers, groups=req.groups, message=req.message, segment_id=req.segment_id,
                     source=source or ("list" if req.customer_ids else "segment" if req.segment_id else "all"),
                     chunks=len(chunks), customers=len(customers), group_count=len(groups),
                     created_at=now, updated_at=now)
    items.create(corp_id, h, chunks, entries, req.from_staff_id)
    from chalicelib.handovers import sync

    sync.send(corp_id, handover_id, 0)
    logger.info("handover %s/%s: %d customers, %d groups, %d chunks", corp_id, handover_id, len(customers),
                len(groups), len(chunks))
    return h


def start_unassigned(corp_id: str, req: UnassignedHandover, *, now: float | None = None) -> list[HandoverItem]:
    """One resigned handover per departed member with customers awaiting assignment."""
    _check(corp_id, req, None, "resigned")
    by_member: dict[str, list[str]] = {}
    for u in _unassigned(corp_id):
        by_member.setdefault(u.handover_userid, []).append(u.external_userid)
    if not by_member:
        raise NothingToHandOver("WeCom lists no customer awaiting assignment")
    return [start(corp_id, HandoverCreate(mode="resigned", from_staff_id=member, takeover_ids=req.takeover_ids,
                                          customer_ids=ids, groups=req.groups), now=now, source="unassigned",
                  checked=True)
            for member, ids in sorted(by_member.items())]


def unassigned_page(corp_id: str, *, limit: int, cursor: str | None) -> Page[UnassignedView]:
    from chalicelib.corps import registry as corps

    page = corps.wecom_client(corp_id).get_unassigned_list(cursor=cursor, page_size=limit)
    shown = [UnassignedView(handover_staff_id=u.handover_userid, customer_id=u.external_userid,
                            dimission_time=u.dimission_time) for u in page.info]
    return Page[UnassignedView](items=shown, next_cursor=None if page.is_last else page.next_cursor or None)


def get(corp_id: str, handover_id: str) -> HandoverItem:
    from chalicelib.handovers import sync

    return sync.get(corp_id, handover_id)
