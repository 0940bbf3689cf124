"""A handover's WeCom calls, through the sync queue (message kind `handovers`, one chunk per message;
chalicelib.customers.sync.handle_message dispatches here and defers what WeCom limits), and their
settling (callbacks aside: steps.py): the minute tick's reconcile of lost answers and transfer_result polls.

Chunks run one after the other (the next is sent when one is answered), which paces a handover's
calls; each is claimed before its call (items.move_chunk), so a redelivered message starts nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from chalicelib.handovers import items
from chalicelib.handovers.items import ChunkItem, EntryItem, EntryStatus, HandoverItem

logger = logging.getLogger(__name__)

KIND = "handovers"  # the sync queue's message kind (chalicelib.customers.sync.KINDS)
STALL_SECONDS = 300  # a pending chunk not moving is re-sent; a claim this old without an answer is reconciled
POLL_SECONDS = 600  # transfer_result per handover at most this often while a customer waits
# transfer_result's status -> ours (wecom-api.md 3.10: 1 done, 2 waiting, 3 refused, 4 takeover full, 5 none)
RESULT_STATUS: dict[int, EntryStatus] = {1: "done", 2: "waiting", 3: "refused", 4: "takeover_full"}
LIMIT_REACHED = 40128  # the customer (or group) was moved twice in 90 days already


def get(corp_id: str, handover_id: str) -> HandoverItem:
    from chalicelib.handovers.service import HandoverNotFound

    h = items.get(corp_id, handover_id)
    if h is None:
        raise HandoverNotFound(handover_id)
    return h


def send(corp_id: str, handover_id: str, chunk: int, *, delay: int = 0) -> None:
    from chalicelib.platform import queues

    queues.send(queues.SYNC, queues.SyncPageMessage(corp_id=corp_id, job_id=handover_id, kind=KIND,
                                                    cursor={"page": chunk}), delay_seconds=delay)


def handle_page(corp_id: str, job_id: str, page: int, *, now: float | None = None) -> str:
    """Chunk `page` of handover `job_id` (the sync queue's `handovers` messages): claim it, call WeCom,
    record each customer's answer, send the next chunk. A chunk not pending any more (another delivery
    claimed it) starts nothing. WeCom limiting or busy frees the claim and is raised, for the sync
    consumer to defer the message by WeCom's wait."""
    now = int(time.time() if now is None else now)
    chunk = items.get_chunk(corp_id, job_id, page)
    h = items.get(corp_id, job_id)
    if chunk is None or h is None:
        return "stale"
    if chunk.status != "pending":
        return "duplicate"
    try:
        chunk = items.move_chunk(corp_id, chunk, was="pending", to="calling", now=now, claimed_at=now,
                                 calls=chunk.calls + 1)
    except items.Claimed:
        return "duplicate"
    return _call(corp_id, h, chunk, now=now)


def _call(corp_id: str, h: HandoverItem, chunk: ChunkItem, *, now: int) -> str:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors

    client = corps.wecom_client(corp_id)
    try:
        results = _transfer(client, h, chunk)
    except errors.ApiError as exc:
        # WeCom answered limited or busy, or refused our credentials (a secret being changed: the sync
        # consumer reloads the corp): nothing was started, the chunk waits for its retry or the tick
        if exc.retryable or isinstance(exc, errors.AuthError):
            wait = int(getattr(exc, "retry_after", 0) or 0)
            items.move_chunk(corp_id, chunk, was="calling", to="pending", now=now, retry_at=now + wait)
            raise
        # WeCom refused the call itself (e.g. 40097 not resigned): each of its ids failed with the errcode
        logger.warning("handover %s chunk %d refused: errcode %s", h.handover_id, chunk.chunk, exc.errcode)
        _record(corp_id, h, chunk, {i: ("failed", exc.errcode) for i in chunk.ids}, now=now, status="failed",
                errcode=exc.errcode)
        return "failed"
    except errors.WeComUnavailable:  # the answer was lost (it may have been done): WeCom's own record decides
        try:
            return reconcile(corp_id, h, chunk, now=now)
        except errors.WeComError:
            logger.warning("handover %s chunk %d: answer lost, reconciled by the tick", h.handover_id, chunk.chunk)
            return "uncertain"
    _record(corp_id, h, chunk, results, now=now)
    return "called"


def _started(errcode: int | None) -> tuple[EntryStatus, int | None]:
    if errcode == 0:
        return "waiting", None
    return ("limit_reached" if errcode == LIMIT_REACHED else "failed"), errcode


def _transfer(client: Any, h: HandoverItem, chunk: ChunkItem) -> dict[str, tuple[EntryStatus, int | None]]:
    from chalicelib.wecom import models as m

    in_service = h.mode == "in_service"
    if chunk.kind == "customer":
        req = m.TransferCustomerRequest(handover_userid=h.from_staff_id, takeover_userid=chunk.takeover_id,
                                        external_userid=chunk.ids,
                                        transfer_success_msg=h.message if in_service else None)
        resp = client.transfer_customer(req) if in_service else client.resigned_transfer_customer(req)
        answered = {c.external_userid: c.errcode for c in resp.customer}
        return {i: _started(answered.get(i, -1)) for i in chunk.ids}
    resp = client.groupchat_transfer(m.GroupChatTransferRequest(chat_id_list=chunk.ids, new_owner=chunk.takeover_id),
                                     onjob=in_service)
    failed = {f.chat_id: f.errcode for f in resp.failed_chat_list}
    return {i: _started(failed[i]) if i in failed else ("done", None) for i in chunk.ids}


def _record(corp_id: str, h: HandoverItem, chunk: ChunkItem, results: dict[str, tuple[EntryStatus, int | None]],
            *, now: int, status: str = "called", errcode: int | None = None,
            takeover_times: dict[str, int] | None = None) -> None:
    """The chunk's answers on its entries, then the chunk settled (under its claim), then the next chunk."""
    times = takeover_times or {}
    items.put_entries(corp_id, [
        EntryItem(handover_id=h.handover_id, kind=chunk.kind, target_id=i, takeover_id=chunk.takeover_id,
                  chunk=chunk.chunk, status=s, errcode=e, updated_at=now,
                  takeover_time=times.get(i) or (now if chunk.kind == "group" and s == "done" else None))
        for i, (s, e) in results.items()])
    try:
        items.move_chunk(corp_id, chunk, was="calling", to=status, now=now, errcode=errcode)  # type: ignore[arg-type]
    except items.Claimed:
        return  # settled by another run meanwhile (the tick's reconcile): it sent the next one
    _next(corp_id, h, chunk.chunk, now=now)


def _next(corp_id: str, h: HandoverItem, chunk: int, *, now: int) -> None:
    if chunk + 1 < h.chunks:
        send(corp_id, h.handover_id, chunk + 1)
    else:
        _settle(corp_id, get(corp_id, h.handover_id), now=now)


def reconcile(corp_id: str, h: HandoverItem, chunk: ChunkItem, *, now: int) -> str:
    """A claimed chunk whose answer was lost: what WeCom shows started (transfer_result; for groups the
    owner groupchat/get names) is recorded, the rest goes back to pending and is called again."""
    from chalicelib.corps import registry as corps

    client = corps.wecom_client(corp_id)
    started: dict[str, tuple[EntryStatus, int | None]] = {}
    times: dict[str, int] = {}
    if chunk.kind == "customer":
        known = {r.external_userid: r for r in _transfer_results(client, h, chunk.takeover_id)}
        for i in chunk.ids:
            r = known.get(i)
            if r is not None and r.status in RESULT_STATUS:
                started[i] = (RESULT_STATUS[r.status], None)
                if r.takeover_time:
                    times[i] = r.takeover_time
    else:
        for i in chunk.ids:
            if client.get_groupchat(i).group_chat.owner == chunk.takeover_id:
                started[i] = ("done", None)
    rest = [i for i in chunk.ids if i not in started]
    if not rest:
        _record(corp_id, h, chunk, started, now=now, takeover_times=times)
        return "reconciled"
    items.put_entries(corp_id, [
        EntryItem(handover_id=h.handover_id, kind=chunk.kind, target_id=i, takeover_id=chunk.takeover_id,
                  chunk=chunk.chunk, status=s, takeover_time=times.get(i), updated_at=now)
        for i, (s, _) in started.items()])
    try:
        items.move_chunk(corp_id, chunk, was="calling", to="pending", now=now, ids=rest)
    except items.Claimed:
        return "duplicate"
    send(corp_id, h.handover_id, chunk.chunk)
    return "recalled"


def _transfer_results(client: Any, h: HandoverItem, takeover: str) -> Iterator[Any]:
    from chalicelib.wecom import models as m

    cursor = None
    while True:
        page = client.transfer_result(m.TransferResultRequest(handover_userid=h.from_staff_id, takeover_userid=takeover,
                                                              cursor=cursor), resigned=h.mode == "resigned")
        yield from page.customer
        if not page.next_cursor:
            return
        cursor = page.next_cursor


# -- settling: the minute tick ------------------------------------------------------------------------------
def poll(corp_id: str, h: HandoverItem, *, now: int) -> int:
    """transfer_result for each takeover with waiting customers: their settled statuses recorded."""
    from chalicelib.corps import registry as corps

    client = corps.wecom_client(corp_id)
    waiting = [e for e in items.entries(corp_id, h.handover_id, "customer") if e.status == "waiting"]
    changed = []
    for takeover in sorted({e.takeover_id for e in waiting}):
        known = {r.external_userid: r for r in _transfer_results(client, h, takeover)}
        for e in (e for e in waiting if e.takeover_id == takeover):
            r = known.get(e.target_id)
            status = RESULT_STATUS.get(r.status) if r is not None else None
            if status is not None and status != e.status:
                changed.append(e.model_copy(update={"status": status, "updated_at": now,
                                                    "takeover_time": r.takeover_time or e.takeover_time}))
    items.put_entries(corp_id, changed)
    items.save(corp_id, h.model_copy(update={"polled_at": now}))
    return len(changed)


def _settle(corp_id: str, h: HandoverItem, *, now: int) -> HandoverItem:
    """running -> waiting once every chunk is answered; -> done once no customer waits."""
    if h.status == "done":
        return h
    if any(c.status in ("pending", "calling") for c in items.chunks(corp_id, h.handover_id)):
        return h
    unsettled = any(e.status in items.UNSETTLED for e in items.entries(corp_id, h.handover_id, "customer"))
    status = "waiting" if unsettled else "done"
    if status != h.status:
        h = h.model_copy(update={"status": status, "updated_at": now,
                                 "finished_at": now if status == "done" else None})
        items.save(corp_id, h)
    return h


def tick_one(corp_id: str, handover_id: str, *, now: int) -> dict[str, int]:
    from chalicelib.wecom import errors

    result = {"resent": 0, "reconciled": 0, "polled": 0}
    h = get(corp_id, handover_id)
    chunks = items.chunks(corp_id, handover_id)
    for c in chunks:
        if c.status == "calling" and now - (c.claimed_at or 0) >= STALL_SECONDS:
            try:
                reconcile(corp_id, h, c, now=now)
                result["reconciled"] += 1
            except errors.WeComError:
                logger.warning("handover %s chunk %d: WeCom cannot say yet", handover_id, c.chunk)
    calling = any(c.status == "calling" for c in chunks)
    pending = next((c for c in chunks if c.status == "pending"), None)
    moved = max((c.updated_at for c in chunks), default=0)
    if pending is not None and not calling and now - moved >= STALL_SECONDS and now >= pending.retry_at:
        send(corp_id, handover_id, pending.chunk)  # its message was lost, or dropped after its deferrals
        result["resent"] += 1
    h = _settle(corp_id, get(corp_id, handover_id), now=now)
    if h.status == "waiting" and now - h.polled_at >= POLL_SECONDS:
        result["polled"] = poll(corp_id, h, now=now)
        _settle(corp_id, get(corp_id, handover_id), now=now)
    return result


def tick(*, now: float | None = None) -> dict[str, int]:
    now = int(time.time() if now is None else now)
    totals = {"handovers": 0, "resent": 0, "reconciled": 0, "polled": 0, "failures": 0}
    for corp_id, handover_id in items.open_handovers():
        totals["handovers"] += 1
        try:
            for k, v in tick_one(corp_id, handover_id, now=now).items():
                totals[k] += v
        except Exception:
            logger.exception("handover tick failed for %s/%s", corp_id, handover_id)
            totals["failures"] += 1
    return totals
