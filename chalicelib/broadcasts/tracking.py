"""Tracking a sent broadcast: WeCom's results into its totals and per-recipient statuses, and
reminders to staff who have not confirmed their task.

A customer mass message reaches customers only once its staff member confirms it in the WeCom
client. From the moment a broadcast is `sent`, it sits in GSI1 `BCASTS#TRACK` at its next check;
the minute tick (`tick`) queues one `track` message per due broadcast (and moves the check
`TRACK_EVERY` on), so the work runs on the sends queue, one broadcast per message. A pass
(`track`), per chunk sent:
- get_groupmsg_task: has its sender confirmed? Once confirmed, get_groupmsg_send_result (all pages)
  gives each recipient's status (1 delivered, 2 no longer a customer, 3 over WeCom's receive quota,
  0 not sent), written into the parts once (`statuses`, beside `recipients`) and counted on the chunk;
- not confirmed `remind_after_minutes` after the send: remind_groupmsg_send, at most 3 times, 8 h
  apart (WeCom allows 3 per 24 h; 41094 ends the reminders);
then the broadcast's totals are set from its chunks (recomputed, so a repeated pass changes
nothing). Tracking ends when every chunk's results are read, or `TRACK_FOR` after the send.
A broadcast cancelled after it started is tracked too (from its recall on): a task its staff
member confirmed before the recall is read like any other (confirmed, delivered); a recalled task
nobody confirmed is final (its recipients `cancelled`); no reminders. It ends once every chunk is
settled and final.
Moments: get_moment_task_result once the task is done: moment_id, invalid senders and tags.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib.broadcasts import items as bitems
from chalicelib.broadcasts.items import BroadcastItem, ChunkItem

logger = logging.getLogger(__name__)

TRACK_EVERY = 600
TRACK_FOR = 3 * 86400
REMIND_APART = 8 * 3600
MAX_REMINDERS = 3
RESULT_STATUS = {0: "unsent", 1: "delivered", 2: "not_friend", 3: "over_quota"}


def tick(*, now: float) -> int:
    """Queue a tracking pass for each broadcast due one."""
    from chalicelib.broadcasts import planner

    queued = 0
    for corp_id, broadcast_id in bitems.tracked_due(now):
        planner.send_message(planner.TrackMessage(corp_id=corp_id, broadcast_id=broadcast_id, now=int(now)))
        bitems.track_at(corp_id, broadcast_id, int(now) + TRACK_EVERY)
        queued += 1
    return queued


def _client(corp_id: str) -> Any:
    from chalicelib.corps import registry

    return registry.wecom_client(corp_id)


def _confirmed(client: Any, c: ChunkItem) -> bool:
    cursor = None
    while True:
        page = client.get_groupmsg_task(c.msgid, limit=1000, cursor=cursor)
        if any(t.userid == c.sender and t.status == 2 for t in page.task_list):
            return True
        cursor = page.next_cursor or None
        if not cursor:
            return False


def _results(client: Any, c: ChunkItem) -> dict[str, str]:
    out: dict[str, str] = {}
    cursor = None
    while True:
        page = client.get_groupmsg_send_result(c.msgid, c.sender, limit=1000, cursor=cursor)
        out.update({(r.external_userid or r.chat_id): RESULT_STATUS.get(r.status, "unsent") for r in page.send_list})
        cursor = page.next_cursor or None
        if not cursor:
            return out


def _write(corp_id: str, c: ChunkItem, statuses: dict[str, str], default: str) -> None:
    """The chunk's recipients' statuses into its slices of the parts (read, set, put back)."""
    for s in c.slices:
        part = bitems.get_part(corp_id, s.sk)
        current = part.statuses or ["planned"] * len(part.recipients)
        for i in range(s.start, s.end):
            current[i] = statuses.get(part.recipients[i], default)
        bitems.put_part(corp_id, c.broadcast_id, part.model_copy(update={"statuses": current}))


def _remind(client: Any, corp_id: str, c: ChunkItem, *, after: int, now: int) -> None:
    from chalicelib.wecom import errors

    if c.reminders >= MAX_REMINDERS or now - (c.settled_at or now) < after:
        return
    if c.reminded_at is not None and now - c.reminded_at < REMIND_APART:
        return
    try:
        client.remind_groupmsg_send(c.msgid)
        bitems.mark_chunk(corp_id, c, reminders=c.reminders + 1, reminded_at=now)
    except errors.ApiError as exc:
        if exc.retryable:
            raise
        logger.warning("remind_groupmsg_send %s refused: %s", c.msgid, exc)
        bitems.mark_chunk(corp_id, c, reminders=MAX_REMINDERS, reminded_at=now)


def _chunk(client: Any, corp_id: str, c: ChunkItem, *, remind_after: int | None, now: int) -> ChunkItem:
    """One chunk's pass; returns it as it now stands. remind_after None: a cancelled broadcast (no
    reminders; a recalled task nobody confirmed is final, its recipients `cancelled`)."""
    if c.status in ("queued", "calling"):  # a cancelled broadcast's chunk its own message has not settled yet
        return c
    if c.status != "sent":
        if c.written != "final":
            _write(corp_id, c, {}, c.status)
            bitems.mark_chunk(corp_id, c, written="final")
        return c.model_copy(update={"written": "final"})
    if c.written == "final":
        return c
    fails = {r: "not_friend" for r in bitems.fail_list(corp_id, c)}
    if not _confirmed(client, c):
        if remind_after is None:
            if not c.recalled:
                return c  # the recall is still to come: its staff member may confirm until then
            _write(corp_id, c, fails, "cancelled")
            bitems.mark_chunk(corp_id, c, written="final")
            return c.model_copy(update={"written": "final"})
        if c.written is None:
            _write(corp_id, c, fails, "sent")
            bitems.mark_chunk(corp_id, c, written="sent")
        _remind(client, corp_id, c, after=remind_after, now=now)
        return c
    results = {**_results(client, c), **fails}
    _write(corp_id, c, results, "unsent")
    counts: dict[str, int] = {}
    for r, status in results.items():
        if r not in fails:
            counts[status] = counts.get(status, 0) + 1
    bitems.mark_chunk(corp_id, c, confirmed=True, results=counts, written="final")
    return c.model_copy(update={"confirmed": True, "results": counts, "written": "final"})


def _moment(corp_id: str, b: BroadcastItem) -> bool:
    """Moments: the task's result once WeCom has it; True when done."""
    if not b.jobid or b.moment:
        return True
    result = _client(corp_id).get_moment_task_result(b.jobid)
    if result.status != 3:  # 1 started, 2 running, 3 done
        return False
    r = result.result or {}
    bitems.set_fields(corp_id, b.broadcast_id, moment={
        "moment_id": r.get("moment_id"),
        "invalid_senders": (r.get("invalid_sender_list") or {}).get("user_list") or [],
        "invalid_tags": (r.get("invalid_external_contact_list") or {}).get("tag_list") or []})
    return True


def track(corp_id: str, broadcast_id: str, *, now: float | None = None) -> str:
    now_s = int(time.time() if now is None else now)
    b = bitems.get(corp_id, broadcast_id)
    if b is None or b.status not in ("sent", "cancelled"):
        if b is not None:
            bitems.track_at(corp_id, broadcast_id, None)
        return "untracked"
    if b.target.get("kind") == "moments":
        if _moment(corp_id, b) or now_s - b.updated_at > TRACK_FOR:
            bitems.track_at(corp_id, broadcast_id, None)
        return "tracked"
    client = _client(corp_id)
    cancelled = b.status == "cancelled"
    remind_after = None if cancelled else bitems.get_policy(corp_id).remind_after_minutes * 60
    chunks = [_chunk(client, corp_id, c, remind_after=remind_after, now=now_s)
              for c in bitems.chunks_of(corp_id, broadcast_id)]
    sent = [c for c in chunks if c.status == "sent"]
    total = {k: sum(c.results.get(k, 0) for c in sent) for k in ("delivered", "over_quota", "not_friend")}
    # A cancelled broadcast's sending counters (no finish stores them) go with this write: once every
    # chunk is settled they are final, and reads take them from here (bitems.with_totals).
    bitems.set_fields(corp_id, broadcast_id, confirmed=sum(c.count - c.fail_count for c in sent if c.confirmed),
                      delivered=total["delivered"], over_quota=total["over_quota"], unreachable=total["not_friend"],
                      **(bitems.totals(chunks) if cancelled else {}))
    done = all(c.written == "final" for c in chunks) and (b.chunked or not cancelled) and len(chunks) >= b.chunks
    if done or now_s - b.updated_at > TRACK_FOR:
        bitems.track_at(corp_id, broadcast_id, None)
    return "tracked"


# -- GET /broadcasts/{id}/recipients ---------------------------------------------------------------------------
def recipients_page(corp_id: str, broadcast_id: str, *, limit: int,
                    cursor: str | None) -> tuple[list[dict], str | None]:
    """Rows {recipient, sender, status} over the parts (sender, plan step order); the cursor holds
    the part listing's cursor and the offset inside the current part."""
    import base64
    import json

    from chalicelib.store import InvalidCursor

    inner, offset = None, 0
    if cursor:
        try:
            pos = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            inner, offset = pos["c"], int(pos["o"])
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidCursor("cursor is not valid") from exc
    rows: list[dict] = []
    while len(rows) < limit:
        parts, after = bitems.parts_page(corp_id, broadcast_id, limit=1, cursor=inner)
        if not parts:
            return rows, None
        part = parts[0]
        statuses = part.statuses or ["planned"] * len(part.recipients)
        take = part.recipients[offset:offset + limit - len(rows)]
        rows += [{"recipient": r, "sender": part.sender, "status": statuses[offset + i]} for i, r in enumerate(take)]
        offset += len(take)
        if offset >= len(part.recipients):
            if after is None:
                return rows, None
            inner, offset = after, 0
    raw = json.dumps({"c": inner, "o": offset}, separators=(",", ":")).encode()
    return rows, base64.urlsafe_b64encode(raw).decode().rstrip("=")
