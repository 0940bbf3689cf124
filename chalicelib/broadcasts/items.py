"""Broadcasts' stored items (docs/architecture.md "Broadcasts"): the broadcast, its plan steps,
sender parts and chunks, the per-customer daily cap claims, the corp's policy. Key shapes live in
store/keys.py only.

Plan counters are top-level numbers a plan step ADDs to the broadcast item once, under a condition
on its step number. Sending counters (SEND_COUNTERS) are written per call nowhere: each chunk item
holds its own outcome (status, count, fail_count), so the totals are summed from the chunks when
read (`with_totals`, a Query of the broadcast's chunks, ~250 small items at most) and stored on the
broadcast once, by the transition that finishes it (docs/performance.md "Broadcasts": a write per
call for a counter cost more than the call's own two writes).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema

Status = Literal["scheduled", "planning", "sending", "sent", "cancelled", "failed"]
LIVE = ("scheduled", "planning", "sending")
REASONS = ("capped", "lost_relation", "no_sender", "not_friend")
COUNTERS = ("planned", "chunks_settled", "chunks_sent", "chunks_failed", "chunks_cancelled", "sent", "failed",
            "cancelled_recipients", *(f"ex_{r}" for r in REASONS))
SEND_COUNTERS = ("chunks_settled", "chunks_sent", "chunks_failed", "chunks_cancelled", "sent", "failed",
                 "cancelled_recipients", "ex_not_friend")
# A cap claim is the one per-customer record of a broadcast (no other write per recipient): kept
# for the history the staff toolbar lists (the last HISTORY_DAYS days), a day past it, then TTL.
HISTORY_DAYS = 30
CLAIM_TTL_SECONDS = (HISTORY_DAYS + 1) * 86400
# While planning, the due index holds the broadcast at (last progress + STALL_SECONDS): the minute
# tick resumes a plan whose Lambda died (its step's message lost, or the next one never sent).
STALL_SECONDS = 300


class BroadcastItem(Model):
    broadcast_id: str
    name: str
    target: dict[str, Any]  # the request's target (by kind), as JSON
    content: dict[str, Any]  # MessageContent as JSON
    send_at: int
    day: str = Field(description="the cap's day (YYYY-MM-DD, corp time zone) of send_at")
    cap: int = Field(description="per_customer_per_day when the broadcast was created")
    status: Status
    created_at: int
    updated_at: int
    version: int = 1
    plan_step: int = 0
    cursor: str | None = None
    plan_done: bool = False
    chunked: bool = False
    chunks: int = 0
    planned: int = 0
    chunks_settled: int = 0
    chunks_sent: int = 0
    chunks_failed: int = 0
    chunks_cancelled: int = 0
    sent: int = 0
    failed: int = 0
    cancelled_recipients: int = 0
    ex_capped: int = 0
    ex_lost_relation: int = 0
    ex_no_sender: int = 0
    ex_not_friend: int = 0
    error: str | None = None
    jobid: str | None = None  # Moments: add_moment_task's job
    # tracking (tracking.py): recomputed from the chunks on each pass
    confirmed: int = 0
    delivered: int = 0
    over_quota: int = 0
    unreachable: int = 0  # WeCom's send result 2: no longer a customer of the sender when confirmed
    moment: dict[str, Any] | None = None  # Moments: moment_id, invalid senders / tags
    # images given by pic_url, uploaded to WeCom by the sender: {pic_url: {media_id, uploaded_at}}
    uploads: dict[str, dict[str, Any]] = Field(default_factory=dict)


class StepItem(Model):
    """What plan step `step` planned: per sender, the recipient count of each of its parts (k = index)."""

    step: int
    parts: dict[str, list[int]]


class PartItem(Model):
    sender: str
    step: int
    k: int
    recipients: list[str]
    statuses: list[str] | None = None  # per recipient, written by tracking (absent: planned)


class Slice(Model):
    sk: str  # a part's sort key
    start: int
    end: int


ChunkStatus = Literal["queued", "calling", "sent", "failed", "cancelled"]
SETTLED = ("sent", "failed", "cancelled")


class ChunkItem(Model):
    broadcast_id: str
    sender: str
    k: int
    kind: Literal["customers", "groups"]
    slices: list[Slice]
    count: int
    # its place among the broadcast's chunks in key order (0 .. chunks - 1): the finish check reads
    # outward from a settled chunk and stops at the first gap or unsettled one (finish)
    seq: int | None = None
    status: ChunkStatus = "queued"
    attempts: int = 0
    call_started_at: int | None = None
    caller: str | None = None  # the token of the message whose delivery set `calling`
    msgid: str | None = None
    # WeCom's fail_list: its ids are pages of their own (fail_list()), written just before the put
    # that settles the chunk; a full chunk's list (10,000 ids) would not fit in this item's 400 KB.
    fail_count: int = 0
    errcode: int | None = None
    released: bool = False
    recalled: bool = False
    settled_at: int | None = None
    # tracking
    confirmed: bool = False  # its staff member sent it (get_groupmsg_task status 2)
    results: dict[str, int] = Field(default_factory=dict)  # send_result counts by status once confirmed
    written: str | None = None  # the recipients' statuses in the parts: "sent" (unconfirmed) or "final"
    reminders: int = 0
    reminded_at: int | None = None

    @property
    def key_sk(self) -> str:
        return keys.broadcast_chunk("", self.broadcast_id, self.sender, self.k)["SK"]


class Policy(Model):
    per_customer_per_day: int = Field(1, ge=1, le=10, description="mass messages a customer may get from the "
                                                                  "corp's broadcasts per day (corp time zone)")
    remind_after_minutes: int = Field(60, ge=5, le=1440, description="remind staff who have not confirmed a "
                                                                     "broadcast after this long")


# -- the broadcast ------------------------------------------------------------------------------------
def _due_sk(b: BroadcastItem, corp_id: str, at: int | None = None) -> str:
    return f"{b.send_at if at is None else at:012d}#{corp_id}#{b.broadcast_id}"


def _watch(corp_id: str, broadcast_id: str, now: int) -> dict[str, Any]:
    return {":wpk": keys.due_broadcasts_partition(), ":wsk": f"{now + STALL_SECONDS:012d}#{corp_id}#{broadcast_id}"}


WATCH = f", {schema.GSI1_PK} = :wpk, {schema.GSI1_SK} = :wsk"


def put_new(corp_id: str, b: BroadcastItem) -> None:
    """Stored scheduled, in the due index (the minute tick, or the create itself for "now", starts it)."""
    item = {**keys.broadcast(corp_id, b.broadcast_id), "type": "broadcast", **b.model_dump(mode="json"),
            schema.GSI2_PK: keys.broadcasts_partition(corp_id), schema.GSI2_SK: b.broadcast_id,
            schema.GSI1_PK: keys.due_broadcasts_partition(), schema.GSI1_SK: _due_sk(b, corp_id)}
    get_table().put(item, condition="attribute_not_exists(PK)")


def _of(item: dict[str, Any] | None) -> BroadcastItem | None:
    if not item or item.get("type") != "broadcast":
        return None
    return BroadcastItem.model_validate(item)


def get(corp_id: str, broadcast_id: str, *, consistent: bool = True, totals: bool = False) -> BroadcastItem | None:
    """The broadcast as stored; `totals`: with its sending counters summed from its chunks while they
    are not stored on it yet (with_totals)."""
    b = _of(get_table().get(keys.broadcast(corp_id, broadcast_id), consistent=consistent))
    return with_totals(corp_id, b, consistent=consistent) if totals and b is not None else b


def totals(chunks: list[ChunkItem]) -> dict[str, int]:
    """The sending counters (SEND_COUNTERS) of these chunks."""
    out = dict.fromkeys(SEND_COUNTERS, 0)
    for c in chunks:
        if c.status not in SETTLED:
            continue
        out["chunks_settled"] += 1
        out[f"chunks_{c.status}"] += 1
        if c.status == "sent":
            out["sent"] += c.count - c.fail_count
            out["ex_not_friend"] += c.fail_count
        else:
            out["failed" if c.status == "failed" else "cancelled_recipients"] += c.count
    return out


def with_totals(corp_id: str, b: BroadcastItem, *, consistent: bool = True) -> BroadcastItem:
    """A broadcast still sending, or cancelled, with its counters summed from its chunks (a sent or
    failed one has them stored, by finish; a cancelled one by tracking, final once every chunk is
    settled)."""
    if not b.chunked or b.status not in ("sending", "cancelled"):
        return b
    if b.status == "cancelled" and b.chunks_settled == b.chunks:
        return b
    return b.model_copy(update=totals(chunks_of(corp_id, b.broadcast_id, consistent=consistent)))


def list_broadcasts(corp_id: str, *, status: str | None, limit: int,
                    cursor: str | None) -> tuple[list[BroadcastItem], str | None]:
    kwargs: dict[str, Any] = {}
    if status:
        kwargs = {"filter_expression": "#status = :status", "names": {"#status": "status"},
                  "values": {":status": status}}
    items, next_cursor = get_table().query_filled(keys.broadcasts_partition(corp_id), index=schema.GSI2,
                                                  newest_first=True, limit=limit, cursor=cursor,
                                                  max_reads=10 if status else 1, **kwargs)
    return [with_totals(corp_id, _of(i), consistent=False) for i in items], next_cursor  # type: ignore[arg-type]


def due(now: float, *, limit: int = 100) -> list[tuple[str, str]]:
    """(corp_id, broadcast_id) of scheduled broadcasts whose send_at is at or before `now`."""
    items, _ = get_table().query(keys.due_broadcasts_partition(), index=schema.GSI1,
                                 sk_between=("0", f"{int(now):012d}#\uffff"), limit=limit)
    return [tuple(i[schema.GSI1_SK].split("#", 2)[1:]) for i in items]  # type: ignore[misc]


def _transition(corp_id: str, broadcast_id: str, *, to: str, from_: tuple[str, ...], now: int,
                extra_set: str = "", values: dict[str, Any] | None = None,
                remove_due: bool = False) -> BroadcastItem | None:
    """Conditional status change; None when the broadcast is absent or not in `from_`."""
    names = {"#status": "status"}
    vals = {":to": to, ":now": now, **{f":f{i}": s for i, s in enumerate(from_)}, **(values or {})}
    expression = f"SET #status = :to, updated_at = :now, version = version + :one{extra_set}"
    vals[":one"] = 1
    if remove_due:
        expression += f" REMOVE {schema.GSI1_PK}, {schema.GSI1_SK}"
    try:
        new = get_table().update(
            keys.broadcast(corp_id, broadcast_id), expression=expression, names=names, values=vals,
            condition=f"attribute_exists(PK) AND #status IN ({', '.join(f':f{i}' for i in range(len(from_)))})",
            return_new=True)
    except ConditionFailed:
        return None
    return _of(new)


def start(corp_id: str, broadcast_id: str, *, now: int) -> BroadcastItem | None:
    """scheduled -> planning, watched in the due index; None if it was not scheduled (started already, cancelled)."""
    return _transition(corp_id, broadcast_id, to="planning", from_=("scheduled",), now=now, extra_set=WATCH,
                       values=_watch(corp_id, broadcast_id, now))


def watch(corp_id: str, broadcast_id: str, *, now: int) -> None:
    """A planning broadcast resumed by the tick: watched again STALL_SECONDS from now."""
    try:
        get_table().update(keys.broadcast(corp_id, broadcast_id), expression=f"SET {WATCH[2:]}",
                           names={"#status": "status"},
                           values={**_watch(corp_id, broadcast_id, now), ":planning": "planning"},
                           condition="#status = :planning")
    except ConditionFailed:
        pass


def unstart(corp_id: str, b: BroadcastItem, *, now: int) -> None:
    """Back to scheduled (its first plan step could not be queued): the minute tick starts it again."""
    try:
        get_table().update(
            keys.broadcast(corp_id, b.broadcast_id),
            expression=f"SET #status = :s, updated_at = :now, {schema.GSI1_PK} = :pk, {schema.GSI1_SK} = :sk",
            names={"#status": "status"},
            values={":s": "scheduled", ":now": now, ":pk": keys.due_broadcasts_partition(),
                    ":sk": _due_sk(b, corp_id), ":planning": "planning", ":zero": 0},
            condition="#status = :planning AND plan_step = :zero")
    except ConditionFailed:
        pass


def fail_unplanned(corp_id: str, broadcast_id: str, *, error: str, now: int) -> bool:
    """planning at its first step, nothing planned yet -> failed with `error` (what it was to send to
    is gone); False when a cancel or another delivery came first."""
    try:
        get_table().update(
            keys.broadcast(corp_id, broadcast_id),
            expression=f"SET #status = :failed, #error = :error, updated_at = :now, version = version + :one "
                       f"REMOVE {schema.GSI1_PK}, {schema.GSI1_SK}",
            names={"#status": "status", "#error": "error"},
            values={":failed": "failed", ":error": error, ":now": now, ":one": 1, ":planning": "planning",
                    ":zero": 0},
            condition="#status = :planning AND plan_step = :zero")
    except ConditionFailed:
        return False
    return True


def cancel(corp_id: str, broadcast_id: str, *, now: int) -> BroadcastItem | None:
    return _transition(corp_id, broadcast_id, to="cancelled", from_=LIVE, now=now, remove_due=True)


def record_step(corp_id: str, broadcast_id: str, *, step: int, cursor: str | None, done: bool,
                counts: dict[str, int], now: int) -> bool:
    """Plan step `step` done: its counts added, the plan moved on; False if this step was recorded
    already (a redelivery) or the broadcast is no longer planning (cancelled)."""
    adds = {k: v for k, v in counts.items() if v}
    values: dict[str, Any] = {":k": step, ":next": step + 1, ":done": done, ":now": now, ":planning": "planning",
                              **{f":a_{k}": v for k, v in adds.items()}}
    expression = "SET plan_step = :next, plan_done = :done, updated_at = :now" + WATCH
    values.update(_watch(corp_id, broadcast_id, now))
    if cursor is not None:
        expression += ", #cursor = :cursor"
        values[":cursor"] = cursor
    names = {"#status": "status", "#cursor": "cursor"}
    if adds:
        expression += " ADD " + ", ".join(f"{k} :a_{k}" for k in adds)
    if cursor is None:
        expression += " REMOVE #cursor"
    try:
        get_table().update(keys.broadcast(corp_id, broadcast_id), expression=expression, names=names,
                           values=values, condition="plan_step = :k AND #status = :planning")
    except ConditionFailed:
        return False
    return True


def record_chunked(corp_id: str, b: BroadcastItem, *, chunks: int, now: int) -> bool:
    """The chunks are written: planning -> sending (a cancelled broadcast stays cancelled)."""
    to = "sending" if b.status == "planning" else b.status
    try:
        get_table().update(keys.broadcast(corp_id, b.broadcast_id),
                           expression="SET chunked = :t, chunks = :n, #status = :to, updated_at = :now "
                                      f"REMOVE {schema.GSI1_PK}, {schema.GSI1_SK}",
                           names={"#status": "status"},
                           values={":t": True, ":n": chunks, ":to": to, ":now": now, ":was": b.status,
                                   ":f": False},
                           condition="#status = :was AND (attribute_not_exists(chunked) OR chunked = :f)")
    except ConditionFailed:
        return False
    return True


def finish(corp_id: str, broadcast_id: str, *, now: int, settled: ChunkItem | None = None) -> BroadcastItem | None:
    """sending -> sent (or failed when every chunk failed) once every chunk is settled, its counters
    summed from the chunks and stored with the transition. Each settled chunk asks, `settled` being
    it (all_settled: consistent reads after its own settle, so the last one to settle sees them all
    settled; the conditional transition finishes the broadcast once however many see it)."""
    b = get(corp_id, broadcast_id)
    if b is None or b.status != "sending" or not b.chunked:
        return None
    chunks = all_settled(corp_id, b, settled)
    if chunks is None:
        return None
    sums = totals(chunks)
    extra, values = "".join(f", {k} = :t_{k}" for k in sums), {f":t_{k}": v for k, v in sums.items()}
    to = "failed" if b.chunks and sums["chunks_failed"] == b.chunks else "sent"
    if to == "sent" and sums["chunks_sent"]:  # tracking pulls its results and reminds from now on
        return _transition(corp_id, broadcast_id, to=to, from_=("sending",), now=now, extra_set=extra + TRACK,
                           values={**values, **_track(corp_id, broadcast_id, now + TRACK_FIRST_SECONDS)})
    return _transition(corp_id, broadcast_id, to=to, from_=("sending",), now=now, extra_set=extra, values=values)


FINISH_PAGE = 8  # chunk items per read of the finish check (~350 B each: one 4 KB read unit)


def all_settled(corp_id: str, b: BroadcastItem, settled: ChunkItem | None) -> list[ChunkItem] | None:
    """The broadcast's chunks if every one is stored and settled, else None. From `settled` (a chunk
    just settled, its `seq` known) the chunk items are read outward in key order, a page after it and
    a page before it in turn, and the reading stops at the first gap in `seq` (a chunk never called:
    not stored) or chunk not settled; only the last settle reads them all. Chunks settle roughly in
    key order (their messages are queued so), so a settle that is not the last reads about one page.
    Without a `seq` (a chunk queued before it existed), every chunk item is read."""
    if settled is None or settled.seq is None or settled.status not in SETTLED:
        chunks = chunks_of(corp_id, b.broadcast_id)
        return chunks if len(chunks) == b.chunks and all(c.status in SETTLED for c in chunks) else None
    table, pk, prefix = get_table(), keys.corp_partition(corp_id), keys.broadcast_chunk_prefix(b.broadcast_id)
    start = table.cursor_at({"PK": pk, "SK": settled.key_sk}, index=None)
    found = [settled]
    sides = {True: (start, settled.seq + 1, b.chunks), False: (start, settled.seq - 1, -1)}  # cursor, next, end
    while sides:
        for forward in list(sides):
            cursor, expected, end = sides[forward]
            items, cursor = table.query(pk, sk_prefix=prefix, cursor=cursor, limit=FINISH_PAGE,
                                        newest_first=not forward, consistent=True)
            for c in (ChunkItem.model_validate(i) for i in items):
                if c.seq is None:
                    return all_settled(corp_id, b, None)
                if c.seq != expected or c.status not in SETTLED:
                    return None
                found.append(c)
                expected += 1 if forward else -1
            if cursor:
                sides[forward] = (cursor, expected, end)
            elif expected != end:
                return None  # chunks past the last one stored on this side were never called
            else:
                del sides[forward]
    return found


# -- tracking's index --------------------------------------------------------------------------------------
TRACK_FIRST_SECONDS = 60
TRACK = f", {schema.GSI1_PK} = :tpk, {schema.GSI1_SK} = :tsk"


def _track(corp_id: str, broadcast_id: str, at: int) -> dict[str, Any]:
    return {":tpk": keys.tracked_broadcasts_partition(), ":tsk": f"{at:012d}#{corp_id}#{broadcast_id}"}


def tracked_due(now: float, *, limit: int = 100) -> list[tuple[str, str]]:
    items, _ = get_table().query(keys.tracked_broadcasts_partition(), index=schema.GSI1,
                                 sk_between=("0", f"{int(now):012d}#\uffff"), limit=limit)
    return [tuple(i[schema.GSI1_SK].split("#", 2)[1:]) for i in items]  # type: ignore[misc]


def track_at(corp_id: str, broadcast_id: str, at: int | None) -> None:
    """Next tracking pass at `at`; None: tracking is over (out of the index)."""
    if at is None:
        get_table().update(keys.broadcast(corp_id, broadcast_id),
                           expression=f"REMOVE {schema.GSI1_PK}, {schema.GSI1_SK}")
    else:
        get_table().update(keys.broadcast(corp_id, broadcast_id), expression=f"SET {TRACK[2:]}",
                           values=_track(corp_id, broadcast_id, at))


def put_part(corp_id: str, broadcast_id: str, part: PartItem) -> None:
    get_table().put({**keys.broadcast_part(corp_id, broadcast_id, part.sender, part.step, part.k),
                     "type": "bcast_part", **part.model_dump(exclude_none=True)})


def get_part(corp_id: str, sk: str) -> PartItem:
    return PartItem.model_validate(get_table().get({"PK": keys.corp_partition(corp_id), "SK": sk}, consistent=True))


def set_fields(corp_id: str, broadcast_id: str, **fields: Any) -> None:
    """SET the fields given (None: REMOVE)."""
    sets = {k: v for k, v in fields.items() if v is not None}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets) if sets else ""
    removed = [k for k, v in fields.items() if v is None]
    if removed:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in removed)
    get_table().update(keys.broadcast(corp_id, broadcast_id), expression=expression.strip(),
                       names={f"#{k}": k for k in fields}, values={f":{k}": v for k, v in sets.items()} or None)


# -- plan steps and parts ----------------------------------------------------------------------------------
def put_parts(corp_id: str, broadcast_id: str, parts: list[PartItem], step: StepItem) -> None:
    """Deterministic keys and content: a redelivered step writes the same items again."""
    table = get_table()
    table.batch_put([{**keys.broadcast_part(corp_id, broadcast_id, p.sender, p.step, p.k), "type": "bcast_part",
                      **p.model_dump()} for p in parts])
    table.put({**keys.broadcast_step(corp_id, broadcast_id, step.step), "type": "bcast_step", **step.model_dump()})


def part_sk(broadcast_id: str, sender: str, step: int, k: int) -> str:
    return keys.broadcast_part("", broadcast_id, sender, step, k)["SK"]


def steps(corp_id: str, broadcast_id: str) -> list[StepItem]:
    """Every recorded step's summary (one small item per plan step)."""
    return [StepItem.model_validate(i) for i in get_table().query_all(
        keys.corp_partition(corp_id), sk_prefix=keys.broadcast_step_prefix(broadcast_id), consistent=True)]


def recipients(corp_id: str, chunk: ChunkItem) -> list[str]:
    """The chunk's recipients, in order, from its parts' slices."""
    pk = keys.corp_partition(corp_id)
    found = {i["SK"]: i for i in get_table().batch_get([{"PK": pk, "SK": s.sk} for s in chunk.slices],
                                                       consistent=True)}
    out: list[str] = []
    for s in chunk.slices:
        out.extend(found[s.sk]["recipients"][s.start:s.end])
    return out


def parts_page(corp_id: str, broadcast_id: str, *, limit: int, cursor: str | None) -> tuple[list[PartItem], str | None]:
    items, next_cursor = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.broadcast_part_prefix(
        broadcast_id), limit=limit, cursor=cursor)
    return [PartItem.model_validate(i) for i in items], next_cursor


# -- chunks ----------------------------------------------------------------------------------------------
def _chunk_key(corp_id: str, c: ChunkItem) -> dict[str, str]:
    return keys.broadcast_chunk(corp_id, c.broadcast_id, c.sender, c.k)


def _put_chunk(corp_id: str, c: ChunkItem, *, was: ChunkItem) -> bool:
    """The whole chunk written as `c`, if it is still as `was` left it (its status and attempts; a chunk
    never called, attempts 0, may not be stored yet: its definition came with its message). False if
    another delivery moved it first."""
    condition, values = "#status = :was AND attempts = :a", {":was": was.status, ":a": was.attempts}
    if was.attempts == 0 and was.status == "queued":
        condition = f"attribute_not_exists(PK) OR ({condition})"
    try:
        get_table().put({**_chunk_key(corp_id, c), "type": "bcast_chunk",
                         **c.model_dump(mode="json", exclude_none=True)},
                        condition=condition, names={"#status": "status"}, values=values)
    except ConditionFailed:
        return False
    return True


def get_chunk(corp_id: str, broadcast_id: str, sender: str, k: int) -> ChunkItem | None:
    item = get_table().get(keys.broadcast_chunk(corp_id, broadcast_id, sender, k), consistent=True)
    return ChunkItem.model_validate(item) if item else None


def chunks_of(corp_id: str, broadcast_id: str, sender: str | None = None, *,
              consistent: bool = True) -> list[ChunkItem]:
    """The broadcast's chunks that were called or settled (a chunk is stored from its first call on)."""
    prefix = keys.broadcast_chunk_prefix(broadcast_id) + (f"{sender}#" if sender is not None else "")
    return [ChunkItem.model_validate(i) for i in get_table().query_all(
        keys.corp_partition(corp_id), sk_prefix=prefix, consistent=consistent)]


def chunk_calling(corp_id: str, c: ChunkItem, *, now: int, caller: str) -> ChunkItem | None:
    """queued -> calling (attempts + 1, `caller` = the message's token), just before the WeCom call;
    the chunk's first call creates its item (one conditional put). None if another delivery moved it."""
    calling = c.model_copy(update={"status": "calling", "call_started_at": now, "attempts": c.attempts + 1,
                                   "caller": caller})
    return calling if _put_chunk(corp_id, calling, was=c) else None


def chunk_requeued(corp_id: str, c: ChunkItem) -> ChunkItem | None:
    """calling -> queued (`c` as it was while calling, its attempts counted): WeCom answered with an
    error, or a lookup found no task. None if another delivery moved it meanwhile."""
    try:
        get_table().update(_chunk_key(corp_id, c), expression="SET #status = :queued",
                           names={"#status": "status"},
                           values={":queued": "queued", ":calling": "calling", ":a": c.attempts},
                           condition="#status = :calling AND attempts = :a")
    except ConditionFailed:
        return None
    return c.model_copy(update={"status": "queued"})


def settle_chunk(corp_id: str, c: ChunkItem, *, status: str, now: int, msgid: str | None = None,
                 fail_list: list[str] | None = None, errcode: int | None = None,
                 released: bool = False) -> ChunkItem | None:
    """The chunk's outcome, exactly once: one conditional put of the chunk (on the status and attempts
    `c` has, as this delivery left or read it); returns the chunk settled, or None if another delivery
    moved or settled it first.
    `released`: it holds no claims to give back. The broadcast's counters are the chunks' (totals).

    Written before it, idempotently (the same content again by a redelivery): the fail list's pages,
    and for a groups chunk its msgid record (refused, MsgidTaken, when another chunk has it: a
    lookup's candidates for groups are told apart by these; for customers by the cap claims)."""
    table = get_table()
    if msgid and c.kind == "groups":
        try:
            table.put({**keys.broadcast_msgid(corp_id, msgid), "type": "bcast_msgid", "broadcast_id": c.broadcast_id,
                       "chunk": c.key_sk}, condition="attribute_not_exists(PK) OR chunk = :chunk",
                      values={":chunk": c.key_sk})
        except ConditionFailed as exc:
            raise MsgidTaken(f"{msgid} is recorded by another chunk") from exc
    fails = list(fail_list or [])
    table.batch_put([{**keys.broadcast_fails(corp_id, c.broadcast_id, c.sender, c.k, n), "type": "bcast_fails",
                      "ids": fails[i:i + FAIL_PAGE]} for n, i in enumerate(range(0, len(fails), FAIL_PAGE))])
    settled = c.model_copy(update={"status": status, "settled_at": now, "msgid": msgid, "fail_count": len(fails),
                                   "errcode": errcode, "released": released})
    return settled if _put_chunk(corp_id, settled, was=c) else None


FAIL_PAGE = 1000  # fail list ids per item (~50 KB): a full chunk's list is 10 items


def fail_list(corp_id: str, c: ChunkItem) -> list[str]:
    """The ids WeCom's answer listed as not sent to (its fail_list), in order."""
    pages = [keys.broadcast_fails(corp_id, c.broadcast_id, c.sender, c.k, n)
             for n in range(-(-c.fail_count // FAIL_PAGE))]
    found = {i["SK"]: i["ids"] for i in get_table().batch_get(pages, consistent=True)} if pages else {}
    return [i for key in pages for i in found[key["SK"]]]


class MsgidTaken(Exception):
    """A lookup took another chunk's task for this one's: the retry looks up without it."""


def mark_chunk(corp_id: str, c: ChunkItem, **fields: Any) -> None:
    get_table().update(_chunk_key(corp_id, c), expression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                       names={f"#{k}": k for k in fields}, values={f":{k}": v for k, v in fields.items()})


def recorded_msgids(corp_id: str, msgids: list[str]) -> dict[str, str]:
    """Which of these WeCom msgids a groups chunk has recorded already: msgid -> the chunk's sort key."""
    if not msgids:
        return {}
    found = get_table().batch_get([keys.broadcast_msgid(corp_id, m) for m in msgids], consistent=True)
    return {i["SK"].split("#", 1)[1]: i["chunk"] for i in found}


def others_msgids(corp_id: str, broadcast_id: str, sender: str, claims: list[tuple[str, str]]) -> set[str]:
    """The msgids of `sender`'s chunks in the other broadcasts that claimed these (day, customer): a
    task of `sender` listing a customer of ours comes from a broadcast holding a claim on that
    customer. One BatchGetItem of the claims, then a Query of each such broadcast's chunks of `sender`."""
    if not claims:
        return set()
    found = get_table().batch_get([keys.cap_claim(corp_id, d, x) for d, x in dict.fromkeys(claims)], consistent=True)
    own = claim_attr(broadcast_id)
    others = {attr[2:] for item in found for attr, value in item.items()
              if attr.startswith("b_") and attr != own and isinstance(value, str)
              and value.partition("|")[0].partition("#")[2] == sender}
    return {c.msgid for b in sorted(others) for c in chunks_of(corp_id, b, sender) if c.msgid}


# -- cap claims ------------------------------------------------------------------------------------------
class ClaimRefused(Exception):
    def __init__(self, old: dict[str, Any] | None):
        super().__init__("claim refused")
        self.old = old or {}


def claim_attr(broadcast_id: str) -> str:
    return f"b_{broadcast_id}"


def claim(corp_id: str, day: str, customer_id: str, broadcast_id: str, value: str, *, cap: int, now: int,
          replacing: str | None = None) -> None:
    """One UpdateItem: this broadcast's claim on the customer's day, counted in `n`, under the cap.
    `replacing`: a provisional marker of this broadcast that the claim takes over. ClaimRefused
    carries the item as found."""
    condition = "attribute_not_exists(#b)" if replacing is None else "#b = :old"
    values: dict[str, Any] = {":v": value, ":one": 1, ":cap": cap, ":exp": now + CLAIM_TTL_SECONDS}
    if replacing is not None:
        values[":old"] = replacing
    try:
        get_table().update(keys.cap_claim(corp_id, day, customer_id),
                           expression="SET #b = :v, expires_at = :exp ADD n :one",
                           names={"#b": claim_attr(broadcast_id)},
                           values=values, condition=f"{condition} AND (attribute_not_exists(n) OR n < :cap)",
                           old_on_failure=True)
    except ConditionFailed as exc:
        raise ClaimRefused(exc.old_item) from exc


def mark(corp_id: str, day: str, customer_id: str, broadcast_id: str, marker: str, *, now: int) -> None:
    """A provisional marker (an excluded customer, counted once): no claim is held. ClaimRefused if
    the broadcast has a value there already."""
    try:
        get_table().update(keys.cap_claim(corp_id, day, customer_id), expression="SET #b = :v, expires_at = "
                           "if_not_exists(expires_at, :exp)", names={"#b": claim_attr(broadcast_id)},
                           values={":v": marker, ":exp": now + CLAIM_TTL_SECONDS},
                           condition="attribute_not_exists(#b)", old_on_failure=True)
    except ConditionFailed as exc:
        raise ClaimRefused(exc.old_item) from exc


def release(corp_id: str, day: str, customer_id: str, broadcast_id: str) -> bool:
    """Give a held claim back (idempotent: a claim released already, or a marker, is left alone)."""
    try:
        get_table().update(keys.cap_claim(corp_id, day, customer_id), expression="REMOVE #b ADD n :minus",
                           names={"#b": claim_attr(broadcast_id)}, values={":minus": -1, ":x": "x:"},
                           condition="attribute_exists(#b) AND NOT begins_with(#b, :x)")
    except ConditionFailed:
        return False
    return True


def claims_of(corp_id: str, day: str, customer_id: str) -> dict[str, Any] | None:
    return get_table().get(keys.cap_claim(corp_id, day, customer_id), consistent=True)


class Claim(Model):
    """A broadcast's claim on a customer's day, still held: planned for them and not given back."""

    broadcast_id: str
    day: str
    sender: str


def held_claims(corp_id: str, customer_id: str, days: list[str]) -> list[Claim]:
    """The claims held on these days (one BatchGetItem: up to 100 days). A marker (an excluded
    customer: `x:<reason>:<step>`) is no claim; a released claim is gone from its item."""
    found = get_table().batch_get([keys.cap_claim(corp_id, day, customer_id) for day in days])
    claims = []
    for item in found:
        day = item["SK"].split("#")[1]
        for attr, value in item.items():
            if attr.startswith("b_") and isinstance(value, str) and not value.startswith("x:"):
                # `<step>#<sender>`, or `<step>#<sender>|<marker it replaced>`
                claims.append(Claim(broadcast_id=attr[2:], day=day, sender=value.partition("|")[0].split("#", 1)[1]))
    return claims


def get_many(corp_id: str, broadcast_ids: list[str]) -> list[BroadcastItem]:
    """The broadcast items (without their counts item's sending counters), 100 per read."""
    found = get_table().batch_get([keys.broadcast(corp_id, i) for i in broadcast_ids])
    return [b for b in (_of(i) for i in found) if b is not None]


# -- policy ----------------------------------------------------------------------------------------------
def get_policy(corp_id: str) -> Policy:
    item = get_table().get(keys.broadcast_policy(corp_id))
    return Policy.model_validate(item) if item else Policy()


def put_policy(corp_id: str, policy: Policy) -> None:
    get_table().put({**keys.broadcast_policy(corp_id), "type": "broadcast_policy", **policy.model_dump()})
