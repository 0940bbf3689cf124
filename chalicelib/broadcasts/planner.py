"""The broadcast planner: recipients -> cap claims -> per-sender parts -> chunks -> `sends` messages.

A plan step (one `sends` message) streams the target from its cursor, newest relation first, until
`STEP_MEMBERS` relations or its time is up (whichever first; always whole pages), claims each
customer's place under the per-customer daily cap (one conditional UpdateItem per customer:
items.claim), keeps per-sender lists in memory (at most the step's size: memory is flat in the
segment's size), writes them as parts (<= 1,000 recipients each) and a step summary, then records
the step on the broadcast item under a condition on its step number (a redelivered step after that
does nothing) and queues the next step, or the chunking step when the stream is done.

The chunking step cuts each sender's parts into chunks of <= 10,000 customers (2,000 groups) —
slicing parts, so each sender needs exactly ceil(n / limit) WeCom calls — and queues one `send`
message per chunk with SendMessageBatch, the chunk's definition in it (its item is written by its
first call).

Claims and redelivery: a claim's value is `<step>#<sender>`; finding its own value, a step knows it
is a redelivery and plans the customer again (same outcome). Excluded customers get a provisional
marker `x:<reason>:<step>` (counted once however many of their relations match); a later active
relation replaces a marker (the count moves from excluded to planned; the marker stays in the value
as `<step>#<sender>|<marker>` so a redelivery moves the same count).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field

from chalicelib.broadcasts import items as bitems
from chalicelib.broadcasts.items import BroadcastItem, ChunkItem, PartItem, Slice, StepItem
from chalicelib.platform.model import Model

logger = logging.getLogger(__name__)

STEP_MEMBERS = 20_000  # relations one plan step reads at most (its memory)
PAGE = 1000  # relations per DynamoDB read of the segment
PART_SIZE = 1000
CHUNK_LIMIT = {"customers": 10_000, "groups": 2_000}  # add_msg_template's per-call limits
CLAIM_WORKERS = 16  # claims of one page in parallel (one customer's relations stay in order)


# -- the sends queue's messages -------------------------------------------------------------------------------
class _Msg(Model):
    corp_id: str
    broadcast_id: str
    attempt: int = 0


class PlanMessage(_Msg):
    kind: Literal["plan"] = "plan"
    step: int


class ChunkingMessage(_Msg):
    kind: Literal["chunk"] = "chunk"


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:16]


class SendMessage(_Msg):
    kind: Literal["send"] = "send"
    sender: str
    k: int
    # The chunk's definition (its slices of the sender's parts): the chunk's item is written at its
    # first call, not by the chunking step (docs/performance.md "Broadcasts").
    slices: list[Slice] = Field(default_factory=list)
    count: int = 0
    seq: int | None = None  # the chunk's place in key order (ChunkItem.seq); None: queued before it existed
    # Kept by SQS redeliveries and by deferral: a delivery finding the chunk `calling` under its own
    # token knows the earlier attempt was its own (timed out or died), not one still in flight.
    token: str = Field(default_factory=_token)


class MomentMessage(_Msg):
    kind: Literal["moment"] = "moment"


class RecallMessage(_Msg):
    kind: Literal["recall"] = "recall"


class TrackMessage(_Msg):
    kind: Literal["track"] = "track"
    now: int | None = None  # the tick's clock (reminder delays are measured with it)


SendsMessage = Annotated[PlanMessage | ChunkingMessage | SendMessage | MomentMessage | RecallMessage | TrackMessage,
                         Field(discriminator="kind")]


def send_message(message: Model) -> None:
    from chalicelib.platform import queues

    queues.send(queues.SENDS, message)


_send = send_message


def enqueue_first(corp_id: str, b: BroadcastItem) -> None:
    kind = b.target.get("kind")
    _send(MomentMessage(corp_id=corp_id, broadcast_id=b.broadcast_id) if kind == "moments"
          else PlanMessage(corp_id=corp_id, broadcast_id=b.broadcast_id, step=0))


def enqueue_recall(corp_id: str, broadcast_id: str) -> None:
    _send(RecallMessage(corp_id=corp_id, broadcast_id=broadcast_id))


def resume(corp_id: str, b: BroadcastItem) -> None:
    """The tick found the broadcast planning without progress: queue its current step again
    (a step still running makes this a duplicate, which is harmless)."""
    _send(ChunkingMessage(corp_id=corp_id, broadcast_id=b.broadcast_id) if b.plan_done
          else PlanMessage(corp_id=corp_id, broadcast_id=b.broadcast_id, step=b.plan_step))


# -- sources: (recipient, sender or None, active) pages with a cursor -------------------------------------------
@dataclass
class Recipient:
    recipient: str
    sender: str | None
    active: bool = True


def _customer_pages(corp_id: str, b: BroadcastItem, cursor: str | None) -> Iterator[tuple[list[Recipient], str | None]]:
    from chalicelib.segments import service as segments

    t = b.target
    pages = (segments.evaluate(corp_id, segments.plan(corp_id, segments.SegmentFilter.model_validate(t["filter"]),
                                                      merged=True), page_size=PAGE, cursor=cursor)
             if t.get("filter") is not None else
             segments.members(corp_id, t["segment_id"], page_size=PAGE, cursor=cursor, merged=True))
    for page in pages:
        yield [Recipient(m.customer_id, m.staff_id, m.relation.status == "active") for m in page.members], page.cursor


def _group_pages(corp_id: str, b: BroadcastItem, cursor: str | None) -> Iterator[tuple[list[Recipient], str | None]]:
    """Active groups by owner(s) / group code (GSI2 pages), or the listed chat ids, each once."""
    import json

    from chalicelib.broadcasts.service import groups_of
    from chalicelib.groups import items as group_items

    t = b.target
    if t.get("group_code_id") and cursor is None:
        from chalicelib.group_codes import service as group_codes

        group_codes.get(corp_id, t["group_code_id"])  # GroupCodeNotFound: deleted since it was accepted
    pos = json.loads(cursor) if cursor else {"i": 0, "c": None}
    if t.get("chat_ids"):
        ids = list(dict.fromkeys(t["chat_ids"]))
        while pos["i"] < len(ids):
            batch = ids[pos["i"]:pos["i"] + 100]
            found = {g.group_id: _with_owner(corp_id, g) for g in groups_of(corp_id, batch)}
            pos["i"] += len(batch)
            page = [Recipient(c, found[c].owner) for c in batch if c in found and found[c].status == "active"]
            yield page, json.dumps(pos) if pos["i"] < len(ids) else None
        return
    owners = list(dict.fromkeys(t.get("owner_ids") or [None]))
    while pos["i"] < len(owners):
        groups, inner = group_items.search_groups(corp_id, owner=owners[pos["i"]], code=t.get("group_code_id"),
                                                  status="active", limit=PAGE, cursor=pos["c"])
        pos = {"i": pos["i"] + 1, "c": None} if inner is None else {"i": pos["i"], "c": inner}
        yield [Recipient(g.group_id, _with_owner(corp_id, g).owner) for g in groups], (
            json.dumps(pos) if pos["i"] < len(owners) else None)


def _with_owner(corp_id: str, group: Any) -> Any:
    """A group whose owner is not stored yet (only its create event seen; the daily group sync or a
    member change reads it) is read from WeCom once (groupchat/get)."""
    if group.owner:
        return group
    from chalicelib.corps import registry
    from chalicelib.groups import service as groups

    return groups.refresh_members(corp_id, group.group_id, client=registry.wecom_client(corp_id)) or group


# -- a plan step --------------------------------------------------------------------------------------------------
@dataclass
class _Step:
    corp_id: str
    b: BroadcastItem
    step: int
    directory: set[str]
    lists: dict[str, list[str]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    seen: dict[str, str] = field(default_factory=dict)  # customer -> planned | final | provisional (this step)
    now: int = 0

    def _add(self, recipient: str, sender: str) -> None:
        self.lists.setdefault(sender, []).append(recipient)
        self.counts["planned"] += 1

    # customers: one customer's relations, newest first, in order
    def customer(self, customer: str, rels: list[Recipient]) -> tuple[list[tuple[str, str]], Counter, str | None]:
        """Returns (planned [(customer, sender)], count changes, outcome) without touching shared state."""
        counts: Counter = Counter()
        planned: list[tuple[str, str]] = []
        outcome = self.seen.get(customer)
        for rel in rels:
            if outcome in ("planned", "final"):
                break
            reason = None if rel.active and rel.sender in self.directory else (
                "lost_relation" if not rel.active else "no_sender")
            if reason is not None:
                if outcome is None:
                    outcome = self._mark(customer, reason, counts)
                continue
            outcome = self._claim(customer, rel.sender, counts, planned)
        return planned, counts, outcome

    def _marker(self, reason: str) -> str:
        return f"x:{reason}:{self.step}"

    def _mark(self, customer: str, reason: str, counts: Counter) -> str:
        marker = self._marker(reason)
        try:
            bitems.mark(self.corp_id, self.b.day, customer, self.b.broadcast_id, marker, now=self.now)
        except bitems.ClaimRefused as exc:
            if exc.old.get(bitems.claim_attr(self.b.broadcast_id)) != marker:
                return "provisional"  # counted by an earlier step, or planned already (the claim will see it)
        counts[f"ex_{reason}"] += 1
        return "provisional"

    def _claim(self, customer: str, sender: str, counts: Counter, planned: list[tuple[str, str]]) -> str:
        b, attr, value = self.b, bitems.claim_attr(self.b.broadcast_id), f"{self.step}#{sender}"
        try:
            bitems.claim(self.corp_id, b.day, customer, b.broadcast_id, value, cap=b.cap, now=self.now)
            planned.append((customer, sender))
            return "planned"
        except bitems.ClaimRefused as exc:
            old = exc.old.get(attr)
        if old is None:  # the day's cap is reached: counted once, with a marker
            try:
                bitems.mark(self.corp_id, b.day, customer, b.broadcast_id, self._marker("capped"), now=self.now)
                counts["ex_capped"] += 1
            except bitems.ClaimRefused:
                pass  # another delivery of this step marked it meanwhile
            return "final"
        if old == value or old.startswith(value + "|"):  # a redelivery of this step: the same outcome
            planned.append((customer, sender))
            replaced = old.partition("|")[2]
            if replaced and int(replaced.rsplit(":", 1)[1]) < self.step:
                counts[f"ex_{replaced.split(':')[1]}"] -= 1
            return "planned"
        if not old.startswith("x:"):
            return "final"  # planned already by an earlier step (through a newer relation)
        reason, marked_at = old.split(":")[1], int(old.rsplit(":", 1)[1])
        if reason == "capped" and marked_at == self.step:
            counts["ex_capped"] += 1  # a redelivery of this step's capped outcome
            return "final"
        try:  # an excluded customer with an active relation after all: the count moves
            bitems.claim(self.corp_id, b.day, customer, b.broadcast_id, f"{value}|{old}", cap=b.cap, now=self.now,
                         replacing=old)
        except bitems.ClaimRefused:
            return "final"  # over the cap (it stays excluded for its first reason), or moved meanwhile
        counts[f"ex_{reason}"] -= 1
        planned.append((customer, sender))
        return "planned"

    def customers_page(self, page: list[Recipient], pool: Any) -> None:
        by_customer: dict[str, list[Recipient]] = {}
        for r in page:
            by_customer.setdefault(r.recipient, []).append(r)
        work = [(c, rels) for c, rels in by_customer.items() if self.seen.get(c) not in ("planned", "final")]
        results = pool.map(lambda cr: (cr[0], self.customer(*cr)), work) if pool else (
            (c, self.customer(c, rels)) for c, rels in work)
        for customer, (planned, counts, outcome) in results:
            for recipient, sender in planned:
                self._add(recipient, sender)
            self.counts.update(counts)
            if outcome:
                self.seen[customer] = outcome

    def groups_page(self, page: list[Recipient]) -> None:
        for r in page:
            if r.sender and r.sender in self.directory:
                self._add(r.recipient, r.sender)
            else:
                self.counts["ex_no_sender"] += 1

    def parts(self) -> tuple[list[PartItem], StepItem]:
        parts, summary = [], {}
        for sender in sorted(self.lists):
            ids = sorted(self.lists[sender])  # deterministic: a redelivery writes the same parts
            cut = [ids[i:i + PART_SIZE] for i in range(0, len(ids), PART_SIZE)]
            parts += [PartItem(sender=sender, step=self.step, k=k, recipients=c) for k, c in enumerate(cut)]
            summary[sender] = [len(c) for c in cut]
        return parts, StepItem(step=self.step, parts=summary)

    def release_planned(self) -> None:
        if self.b.target.get("kind") != "customers":
            return
        for ids in self.lists.values():
            for customer in ids:
                bitems.release(self.corp_id, self.b.day, customer, self.b.broadcast_id)


def run_step(msg: PlanMessage, *, until: float | None = None, clock: Any = time.monotonic) -> str:
    """One plan step; it stops reading at `until` (clock time) or STEP_MEMBERS, whichever first."""
    from chalicelib.corps import staff

    corp_id = msg.corp_id
    b = bitems.get(corp_id, msg.broadcast_id)
    if b is None or b.plan_step != msg.step or b.status not in ("planning", "cancelled") or b.chunked:
        return "duplicate"
    if b.status == "cancelled":  # what earlier steps planned is chunked, and the chunks cancelled
        _send(ChunkingMessage(corp_id=corp_id, broadcast_id=b.broadcast_id))
        return "cancelled"
    now = int(time.time())
    state = _Step(corp_id, b, msg.step, staff.directory(corp_id), now=now)
    customers = b.target["kind"] == "customers"
    pages = (_customer_pages if customers else _group_pages)(corp_id, b, b.cursor)
    read, cursor, done = 0, b.cursor, True
    pool = None
    if customers and CLAIM_WORKERS > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(CLAIM_WORKERS)
    try:
        for page, cursor in pages:
            read += len(page)
            if customers:
                state.customers_page(page, pool)
            else:
                state.groups_page(page)
            if cursor is None:
                break
            if read >= STEP_MEMBERS or (until is not None and clock() >= until):
                done = False
                break
        else:
            cursor = None
    except _source_gone() as exc:
        if msg.step != 0:  # what earlier steps planned holds cap claims: left to the retries, as before
            raise
        # deleted since the broadcast was accepted (its segment, a tag it names, its group code): no retry
        # brings it back
        bitems.fail_unplanned(corp_id, b.broadcast_id, error=f"{type(exc).__name__}: {exc}"[:500], now=now)
        return "failed"
    finally:
        if pool is not None:
            pool.shutdown()
    parts, summary = state.parts()
    bitems.put_parts(corp_id, b.broadcast_id, parts, summary)
    if not bitems.record_step(corp_id, b.broadcast_id, step=msg.step, cursor=None if done else cursor, done=done,
                              counts=dict(state.counts), now=now):
        again = bitems.get(corp_id, b.broadcast_id)
        if again is not None and again.status == "cancelled" and again.plan_step == msg.step:
            state.release_planned()  # cancelled while this step ran: nothing of it was recorded
            _send(ChunkingMessage(corp_id=corp_id, broadcast_id=b.broadcast_id))
        return "duplicate"
    _send(ChunkingMessage(corp_id=corp_id, broadcast_id=b.broadcast_id) if done
          else PlanMessage(corp_id=corp_id, broadcast_id=b.broadcast_id, step=msg.step + 1))
    return "done"


def _source_gone() -> tuple[type[Exception], ...]:
    from chalicelib.group_codes.service import GroupCodeNotFound
    from chalicelib.segments.service import InvalidFilter, SegmentNotFound
    from chalicelib.tags.service import UnknownTags

    return SegmentNotFound, InvalidFilter, UnknownTags, GroupCodeNotFound


# -- the chunking step ----------------------------------------------------------------------------------------------
def cut_chunks(b: BroadcastItem, steps: list[StepItem]) -> list[ChunkItem]:
    """Each sender's parts (in step order) sliced into chunks of at most the call's limit."""
    kind = b.target["kind"]
    limit = CHUNK_LIMIT[kind]
    per_sender: dict[str, list[tuple[str, int]]] = {}
    for s in sorted(steps, key=lambda s: s.step):
        for sender, counts in s.parts.items():
            per_sender.setdefault(sender, []).extend(
                (bitems.part_sk(b.broadcast_id, sender, s.step, k), n) for k, n in enumerate(counts))
    chunks: list[ChunkItem] = []
    for sender in sorted(per_sender):
        slices: list[Slice] = []
        filled = 0
        for sk, n in per_sender[sender]:
            offset = 0
            while offset < n:
                take = min(n - offset, limit - filled)
                slices.append(Slice(sk=sk, start=offset, end=offset + take))
                offset += take
                filled += take
                if filled == limit:
                    chunks.append(ChunkItem(broadcast_id=b.broadcast_id, sender=sender, k=len(
                        [c for c in chunks if c.sender == sender]), kind=kind, slices=slices, count=filled))
                    slices, filled = [], 0
        if filled:
            chunks.append(ChunkItem(broadcast_id=b.broadcast_id, sender=sender, k=len(
                [c for c in chunks if c.sender == sender]), kind=kind, slices=slices, count=filled))
    for seq, c in enumerate(sorted(chunks, key=lambda c: c.key_sk.encode())):  # DynamoDB's order: UTF-8 bytes
        c.seq = seq
    return chunks


def run_chunking(msg: ChunkingMessage) -> str:
    from chalicelib.platform import queues

    corp_id = msg.corp_id
    b = bitems.get(corp_id, msg.broadcast_id)
    if b is None or b.status not in ("planning", "sending", "cancelled"):
        return "duplicate"
    if b.status == "planning" and not b.plan_done:
        return "duplicate"  # a stale chunking message: planning goes on
    chunks = cut_chunks(b, [s for s in bitems.steps(corp_id, b.broadcast_id) if s.step < b.plan_step])
    if not b.chunked:
        bitems.record_chunked(corp_id, b, chunks=len(chunks), now=int(time.time()))
    # Sent again by a redelivery (the first may have died before sending): the consumer drops duplicates.
    queues.send_batch(queues.SENDS, [SendMessage(corp_id=corp_id, broadcast_id=b.broadcast_id, sender=c.sender,
                                                 k=c.k, slices=c.slices, count=c.count, seq=c.seq) for c in chunks])
    if not chunks:
        bitems.finish(corp_id, b.broadcast_id, now=int(time.time()))
    return "done"
