"""The `sends` queue's consumer (app.py `on_sends` -> `handle_batch`): plan steps, chunking steps,
and one WeCom call per `send` / `moment` message, exactly once.

A chunk is sent once (add_msg_template creates a task WeCom cannot take back in one call):
1. a settled chunk (`sent` / `failed` / `cancelled`) is a duplicate (its claims released if that
   was not finished); a cancelled broadcast cancels a queued chunk and releases its claims;
2. a chunk found `calling` (an attempt that timed out or died mid-call) is LOOKED UP before any
   call: get_groupmsg_list_v2 of its sender since the call started; a candidate is ours when its
   send result lists one of our recipients and no other broadcast's chunk settled with it. Found:
   recorded as sent (the recipients WeCom did not list are its fail list). Not found: called again;
3. queued -> calling (a conditional put: the chunk's item is created by its first call, from the
   definition in its message), add_msg_template, then the outcome (a conditional put again; the
   broadcast's counters are summed from its chunks). WeCom answering 45009 / busy puts the chunk
   back to queued (WeCom did not create a task) and defers the message; a timeout or 5xx leaves it
   calling (it may exist) and defers; a configuration errcode (AuthError: 40001, 48002, 60011,
   60020 ...) puts it back to queued and defers it with backoff up to CONFIG_DEFERRALS times (the
   operator fixes WeCom's settings), then fails it; a definitive errcode fails the chunk and
   releases its claims.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib.broadcasts import items as bitems
from chalicelib.broadcasts import planner
from chalicelib.broadcasts.items import BroadcastItem, ChunkItem

logger = logging.getLogger(__name__)

LOOKUP_MARGIN = 60  # seconds before call_started_at that a lost task's create_time may show
MAX_DEFERRALS = 24
# A configuration problem (errors.AuthError: wrong secret 40001, API not granted to the app 48002,
# member outside the app's visible range 60011, IP not trusted 60020 ...) is the operator's to fix
# in WeCom's admin console: the message is deferred with the queue's backoff (5 s doubling to 15 min:
# ~4.4 hours over 24 deferrals), then the chunk fails with the errcode (claims released).
CONFIG_DEFERRALS = MAX_DEFERRALS
CALL_LEASE_SECONDS = 60  # a call another delivery started less long ago may still be in flight


class ChunkBusy(Exception):
    """Another delivery of this chunk (a duplicate message) may be calling WeCom right now."""


# Images given by pic_url (and for Moments a link's cover, its picurl) are fetched and uploaded to
# WeCom (media/upload; Moments: media/upload_attachment) right before the first call that needs them;
# the media_id, kept on the broadcast, lives 3 days: uploaded again after 2.5.
MEDIA_REUSE_SECONDS = int(2.5 * 86400)
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # WeCom's limit for an image (JPG / PNG)
IMAGE_FETCH_TIMEOUT = 10.0


class ImageUnreachable(Exception):
    """The image's server did not answer usefully (connection, timeout, 5xx, 429): tried again later
    (the queue's backoff, MAX_DEFERRALS times: ~4.4 hours), then the calls that need it fail."""


class ImageRefused(Exception):
    """The image cannot be sent (4xx, over 10 MB, not a JPG / PNG, WeCom refused the upload): the
    calls that need it fail."""

    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.errcode = errcode


# on_sends' Lambda timeout (.chalice/config.json; test_infra keeps them equal). A message started
# with less than MESSAGE_RESERVE_SECONDS of the batch left is put back on the queue instead (a WeCom
# call may take 5 s); a plan step stops reading PLAN_RESERVE_SECONDS before the batch's end.
BATCH_SECONDS = 15.0
MESSAGE_RESERVE_SECONDS = 7.0
PLAN_RESERVE_SECONDS = 5.0


def handle_batch(records: list[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    """records: (message_id, body) of one SQS batch; Lambda's partial batch response."""
    from chalicelib.platform import consumer, queues

    deadline = time.monotonic() + BATCH_SECONDS
    return consumer.handle_each(records, lambda body: handle_message(body, deadline=deadline), queue=queues.SENDS)


def parse(body: str) -> Any:
    from pydantic import TypeAdapter, ValidationError

    from chalicelib.platform.consumer import Unprocessable

    try:
        return TypeAdapter(planner.SendsMessage).validate_json(body)
    except ValidationError as exc:
        raise Unprocessable(f"the message cannot be read: {exc}") from exc


HANDLERS = {"chunk": "run_chunking"}


def handle_message(body: str, *, deadline: float | None = None) -> str:
    from chalicelib.platform import queues

    msg = parse(body)
    if deadline is not None and time.monotonic() > deadline - MESSAGE_RESERVE_SECONDS:
        queues.send(queues.SENDS, msg)  # too little of the batch's time left: the next invocation takes it
        return "postponed"
    try:
        if msg.kind == "plan":
            return planner.run_step(msg, until=None if deadline is None else deadline - PLAN_RESERVE_SECONDS)
        if msg.kind in HANDLERS:
            return getattr(planner, HANDLERS[msg.kind])(msg)
        return {"send": send_chunk, "moment": send_moment, "recall": recall, "track": track}[msg.kind](msg)
    except Exception as exc:
        wait = _wait(exc, msg.attempt)
        if wait is None or msg.attempt >= MAX_DEFERRALS:
            raise
        logger.warning("deferring %s of broadcast %s by %.0fs: %r", msg.kind, msg.broadcast_id, wait, exc)
        queues.defer(queues.SENDS, msg, delay_seconds=wait)
        return "deferred"


def _wait(exc: Exception, attempt: int) -> float | None:
    """Seconds before a deferred message is tried again; None: not deferred."""
    from chalicelib.platform import consumer, queues
    from chalicelib.wecom import errors

    if isinstance(exc, ChunkBusy):
        return CALL_LEASE_SECONDS
    if isinstance(exc, (errors.AuthError, ImageUnreachable)):
        return float(queues.backoff_delay(attempt))
    return consumer._retry_after(exc, attempt)


def _waits_for_operator(exc: Exception, msg: Any) -> bool:
    """A configuration problem the operator may still fix (CONFIG_DEFERRALS): try again later."""
    from chalicelib.wecom import errors

    return isinstance(exc, errors.AuthError) and msg.attempt < CONFIG_DEFERRALS


# -- one chunk ------------------------------------------------------------------------------------------------
def _client(corp_id: str) -> Any:
    from chalicelib.corps import registry

    return registry.wecom_client(corp_id)


def _chat_type(c: ChunkItem) -> str:
    return "group" if c.kind == "groups" else "single"


def _release(corp_id: str, b: BroadcastItem, c: ChunkItem, customers: list[str]) -> None:
    """Give back the claims of these customers (a failed chunk: up to 10,000, in parallel); marked
    released once done, so a delivery killed half-way is redone by the next."""
    if c.kind == "customers" and customers:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(planner.CLAIM_WORKERS, len(customers))) as pool:
            list(pool.map(lambda customer: bitems.release(corp_id, b.day, customer, b.broadcast_id), customers))
    bitems.mark_chunk(corp_id, c, released=True)


def _settled(corp_id: str, b: BroadcastItem, c: ChunkItem, *, status: str, msgid: str | None = None,
             fail_list: list[str] | None = None, errcode: int | None = None,
             recipients: list[str] | None = None) -> str:
    now = int(time.time())
    nothing_held = c.kind == "groups" or (status == "sent" and not fail_list)  # no claims to give back
    settled = bitems.settle_chunk(corp_id, c, status=status, now=now, msgid=msgid, fail_list=fail_list,
                                  errcode=errcode, released=nothing_held)
    if settled is None:
        return "duplicate"
    if not nothing_held:
        _release(corp_id, b, c, fail_list or [] if status == "sent" else
                 recipients if recipients is not None else bitems.recipients(corp_id, c))
    bitems.finish(corp_id, b.broadcast_id, now=now, settled=settled)
    if status == "sent" and b.status == "cancelled":
        _recall(corp_id, c.model_copy(update={"msgid": msgid}))
        _track_cancelled(corp_id, b.broadcast_id, now)
    return status


def lookup(corp_id: str, b: BroadcastItem, c: ChunkItem, recipients: list[str],
           text: str | None) -> tuple[str, list[str]] | None:
    """The task an earlier attempt of this chunk created, if WeCom has it: (msgid, fail list). A
    candidate is a task of the chunk's sender created since the call started, with the chunk's text,
    whose send result lists one of the chunk's recipients (so not another chunk of this broadcast:
    their recipients are others) and that no other broadcast's chunk settled with (customers: the
    broadcasts holding a cap claim on the customer it lists; groups: the msgid records)."""
    from chalicelib.wecom.models import GroupMsgListRequest

    client = _client(corp_id)
    start = (c.call_started_at or int(time.time())) - LOOKUP_MARGIN
    found, cursor = [], None
    while True:
        page = client.get_groupmsg_list_v2(GroupMsgListRequest(
            chat_type=_chat_type(c), start_time=start, end_time=max(start, int(time.time())) + LOOKUP_MARGIN,
            creator=c.sender, filter_type=0, limit=100, cursor=cursor))
        found += [m for m in page.group_msg_list if (m.text.content if m.text else None) == text]
        cursor = page.next_cursor or None
        if not cursor:
            break
    ours, candidates = set(recipients), []
    for m in found:
        first = client.get_groupmsg_send_result(m.msgid, c.sender, limit=1000)
        shared = sorted({r.external_userid or r.chat_id for r in first.send_list} & ours)
        if shared:  # else another task of this sender: not ours
            candidates.append((m, first, shared[0]))
    if c.kind == "groups":
        taken = {m for m, chunk in bitems.recorded_msgids(corp_id, [m.msgid for m, _, _ in candidates]).items()
                 if chunk != c.key_sk}
    else:
        from chalicelib.broadcasts.service import day_of

        taken = bitems.others_msgids(corp_id, b.broadcast_id, c.sender, [
            (day_of(corp_id, int(m.create_time) - back), x) for m, _, x in candidates for back in OTHERS_SENT_WITHIN])
    for m, result, _ in candidates:
        if m.msgid in taken:
            continue
        listed: set[str] = set()
        while True:
            listed |= {r.external_userid or r.chat_id for r in result.send_list}
            if not result.next_cursor:
                return m.msgid, [r for r in recipients if r not in listed]
            result = client.get_groupmsg_send_result(m.msgid, c.sender, limit=1000, cursor=result.next_cursor)
    return None


# Another broadcast's task seen by a lookup was created within a day of that broadcast's send time
# (its cap day): its claims are read on the task's day and the day before.
OTHERS_SENT_WITHIN = (0, 86400)


def _text(corp_id: str, b: BroadcastItem, c: ChunkItem) -> str | None:
    """The chunk's text: the broadcast's, {staff_name} filled in with its sender's."""
    from chalicelib.corps import staff
    from chalicelib.platform.content import MessageContent

    content = MessageContent.model_validate(b.content)
    name = staff.name(corp_id, c.sender) if content.needs_staff_name else None
    return content.render_text(customer_name=None, staff_name=name)


def _template(corp_id: str, b: BroadcastItem, c: ChunkItem, recipients: list[str],
              attachments: list[dict[str, Any]]) -> Any:
    from chalicelib.wecom.models import MsgTemplate

    text = _text(corp_id, b, c)
    target = {"chat_id_list": recipients} if c.kind == "groups" else {"external_userid": recipients}
    return MsgTemplate(chat_type=_chat_type(c), sender=c.sender, text={"content": text} if text else None,
                       attachments=attachments or None, **target)


def _fetch(url: str) -> bytes:
    """The image at `url` (redirects followed, at most IMAGE_MAX_BYTES read)."""
    import httpx

    from chalicelib.corps import registry

    try:
        with httpx.Client(transport=registry.http_transport(), timeout=IMAGE_FETCH_TIMEOUT,
                          follow_redirects=True) as http, http.stream("GET", url) as resp:
            if resp.status_code >= 500 or resp.status_code == 429:
                raise ImageUnreachable(f"image {url}: HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise ImageRefused(f"image {url}: HTTP {resp.status_code}")
            content = b""
            for block in resp.iter_bytes():
                content += block
                if len(content) > IMAGE_MAX_BYTES:
                    raise ImageRefused(f"image {url}: over {IMAGE_MAX_BYTES} bytes")
            return content
    except httpx.HTTPError as exc:
        raise ImageUnreachable(f"image {url}: {type(exc).__name__}") from exc


def _upload(corp_id: str, url: str, msg: Any, *, moments: bool) -> str:
    """The image uploaded to WeCom: for Moments with media/upload_attachment (attachment_type 1: the
    only media ids add_moment_task takes), else with media/upload."""
    from urllib.parse import urlsplit

    from chalicelib.wecom import errors

    content = _fetch(url)
    filename = (urlsplit(url).path.rsplit("/", 1)[-1] or "image")[-100:]
    client = _client(corp_id)
    try:
        if moments:
            return client.upload_attachment("image", filename, content)
        return client.upload_media("image", filename, content)
    except errors.ApiError as exc:
        if exc.retryable or _waits_for_operator(exc, msg):
            raise
        raise ImageRefused(f"image {url}: WeCom refused the upload (errcode {exc.errcode})", exc.errcode) from exc
    except ValueError as exc:  # not a JPG / PNG, or 5 bytes or less (checked as WeCom checks)
        raise ImageRefused(f"image {url}: {exc}") from exc


def _attachments(corp_id: str, b: BroadcastItem, msg: Any) -> list[dict[str, Any]]:
    """The broadcast's attachments for add_msg_template / add_moment_task: images by pic_url replaced
    by a media_id uploaded less than MEDIA_REUSE_SECONDS ago (uploaded now when there is none). For
    Moments a link's cover too: add_moment_task takes a link as {title, url, media_id}, the cover an
    image uploaded with media/upload_attachment (add_msg_template's link takes the picurl itself)."""
    from chalicelib.platform.content import MessageContent

    moments = b.target.get("kind") == "moments"
    attachments = MessageContent.model_validate(b.content).wecom_attachments()
    now, uploads = int(time.time()), dict(b.uploads)

    def media_id(url: str) -> str:
        upload = uploads.get(url)
        if upload is None or now - upload["uploaded_at"] > MEDIA_REUSE_SECONDS:
            upload = uploads[url] = {"media_id": _upload(corp_id, url, msg, moments=moments), "uploaded_at": now}
            bitems.set_fields(corp_id, b.broadcast_id, uploads=uploads)  # parallel chunks may each upload: harmless
        return upload["media_id"]

    for a in attachments:
        if a["msgtype"] == "image" and a["image"].get("pic_url"):
            a["image"] = {"media_id": media_id(a["image"]["pic_url"])}
        elif a["msgtype"] == "link" and moments and a["link"].get("picurl"):
            link = a["link"]
            a["link"] = {"title": link["title"], "url": link["url"], "media_id": media_id(link["picurl"])}
    return attachments


def send_chunk(msg: planner.SendMessage) -> str:
    from chalicelib.wecom import errors

    corp_id = msg.corp_id
    b = bitems.get(corp_id, msg.broadcast_id)
    c = bitems.get_chunk(corp_id, msg.broadcast_id, msg.sender, msg.k)
    if c is None and b is not None and msg.slices:  # never called: its item is written by its first call
        c = ChunkItem(broadcast_id=b.broadcast_id, sender=msg.sender, k=msg.k, kind=b.target["kind"],
                      slices=msg.slices, count=msg.count, seq=msg.seq)
    if c is None or b is None:
        raise LookupError(f"chunk {msg.sender}#{msg.k} of broadcast {msg.broadcast_id} is not stored")
    if c.status in bitems.SETTLED:
        if not c.released:
            _release(corp_id, b, c, bitems.fail_list(corp_id, c) if c.status == "sent"
                     else bitems.recipients(corp_id, c))
        if c.status == "sent" and b.status == "cancelled" and not c.recalled:
            _recall(corp_id, c)  # sent after the cancel, and this message deferred before its recall
        if b.status == "sending":  # the delivery that settled it may have died before finishing
            bitems.finish(corp_id, b.broadcast_id, now=int(time.time()), settled=c)
        return "duplicate"
    recipients = bitems.recipients(corp_id, c)
    if c.status == "calling":  # an earlier attempt may have created the task: look before calling
        if c.caller != msg.token and time.time() - (c.call_started_at or 0) < CALL_LEASE_SECONDS:
            raise ChunkBusy(f"chunk {c.sender}#{c.k} is being called by another delivery")
        found = lookup(corp_id, b, c, recipients, _text(corp_id, b, c))
        if found is not None:
            return _settled(corp_id, b, c, status="sent", msgid=found[0], fail_list=found[1])
        if b.status != "cancelled":
            c = bitems.chunk_requeued(corp_id, c)
            if c is None:
                return "duplicate"
    if b.status == "cancelled":
        return _settled(corp_id, b, c, status="cancelled", recipients=recipients)
    try:
        attachments = _attachments(corp_id, b, msg)
    except (ImageRefused, ImageUnreachable) as exc:
        if isinstance(exc, ImageUnreachable) and msg.attempt < MAX_DEFERRALS:
            raise  # deferred with backoff
        logger.error("chunk %s#%s of broadcast %s failed: %s", c.sender, c.k, b.broadcast_id, exc)
        bitems.set_fields(corp_id, b.broadcast_id, error=str(exc)[:500])
        return _settled(corp_id, b, c, status="failed", errcode=getattr(exc, "errcode", None),
                        recipients=recipients)
    calling = bitems.chunk_calling(corp_id, c, now=int(time.time()), caller=msg.token)
    if calling is None:
        return "duplicate"  # another delivery is calling
    c = calling
    try:
        resp = _client(corp_id).add_msg_template(_template(corp_id, b, c, recipients, attachments))
    except errors.ApiError as exc:
        if exc.retryable or _waits_for_operator(exc, msg):  # WeCom answered: it created nothing; the retry
            bitems.chunk_requeued(corp_id, c)                # calls without a lookup
            raise
        logger.error("chunk %s#%s of broadcast %s failed: %s", c.sender, c.k, b.broadcast_id, exc)
        return _settled(corp_id, b, c, status="failed", errcode=exc.errcode, recipients=recipients)
    return _settled(corp_id, b, c, status="sent", msgid=resp.msgid, fail_list=list(resp.fail_list))


# -- cancel: recall tasks already created ------------------------------------------------------------------------
def _recall(corp_id: str, c: ChunkItem) -> None:
    from chalicelib.wecom import errors

    try:
        _client(corp_id).cancel_groupmsg_send(c.msgid)
    except errors.ApiError as exc:
        if exc.retryable or isinstance(exc, errors.AuthError):  # a configuration error: the operator's to fix
            raise
        logger.warning("cancel_groupmsg_send %s refused: %s", c.msgid, exc)
    bitems.mark_chunk(corp_id, c, recalled=True)


def recall(msg: planner.RecallMessage) -> str:
    """A cancelled broadcast's tasks already created: cancel_groupmsg_send (a staff member who has
    not confirmed it can no longer send it). Chunks not sent yet are cancelled by their own messages."""
    b = bitems.get(msg.corp_id, msg.broadcast_id)
    if b is None or b.status != "cancelled":
        return "duplicate"
    if b.target.get("kind") == "moments":
        return "done"
    for c in bitems.chunks_of(msg.corp_id, msg.broadcast_id):
        if c.status == "sent" and c.msgid and not c.recalled:
            _recall(msg.corp_id, c)
    _track_cancelled(msg.corp_id, msg.broadcast_id, int(time.time()))
    return "done"


def _track_cancelled(corp_id: str, broadcast_id: str, now: int) -> None:
    """What staff confirmed before the recall still reached customers: tracking reads it (tracking.py)."""
    bitems.track_at(corp_id, broadcast_id, now + bitems.TRACK_FIRST_SECONDS)


def track(msg: planner.TrackMessage) -> str:
    from chalicelib.broadcasts import tracking

    return tracking.track(msg.corp_id, msg.broadcast_id, now=msg.now)


# -- Moments ---------------------------------------------------------------------------------------------------
def send_moment(msg: planner.MomentMessage) -> str:
    """One add_moment_task, its images by pic_url uploaded first with media/upload_attachment (the
    only media ids WeCom's Moments take; an image that cannot be fetched or uploaded fails the
    broadcast, after the retries when its server is down). WeCom offers no lookup of a moment task
    by content, so an attempt whose answer was lost is not repeated: the broadcast fails with
    `outcome_unknown` (a post twice on every sender's Moments is the worse harm)."""
    from chalicelib.platform.content import MessageContent
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import MomentTask

    corp_id = msg.corp_id
    b = bitems.get(corp_id, msg.broadcast_id)
    if b is None or b.status != "planning":
        return "duplicate"
    if b.error == "calling":
        bitems.set_fields(corp_id, b.broadcast_id, status="failed", error="outcome_unknown")
        return "failed"
    content = MessageContent.model_validate(b.content)
    t = b.target
    visible: dict[str, Any] = {}
    if t.get("sender_ids"):
        visible["sender_list"] = {"user_list": t["sender_ids"]}
    if t.get("tag_ids"):
        visible["external_contact_list"] = {"tag_list": t["tag_ids"]}
    try:
        attachments = _attachments(corp_id, b, msg)  # images uploaded for Moments, just before the post
    except (ImageRefused, ImageUnreachable) as exc:
        if isinstance(exc, ImageUnreachable) and msg.attempt < MAX_DEFERRALS:
            raise  # deferred with backoff
        bitems.set_fields(corp_id, b.broadcast_id, status="failed", error=str(exc)[:500])
        return "failed"
    task = MomentTask(text={"content": content.text} if content.text else None,
                      attachments=attachments or None, visible_range=visible or None)
    bitems.set_fields(corp_id, b.broadcast_id, error="calling")
    try:
        resp = _client(corp_id).add_moment_task(task)
    except errors.ApiError as exc:
        if exc.retryable or _waits_for_operator(exc, msg):
            bitems.set_fields(corp_id, b.broadcast_id, error=None)
            raise
        bitems.set_fields(corp_id, b.broadcast_id, status="failed", error=f"errcode {exc.errcode}")
        return "failed"
    except errors.WeComUnavailable:
        raise  # left `calling`: the retry fails it as outcome_unknown rather than post twice
    bitems.set_fields(corp_id, b.broadcast_id, status="sent", jobid=resp.jobid, error=None)
    bitems.track_at(corp_id, b.broadcast_id, int(time.time()) + bitems.TRACK_FIRST_SECONDS)
    return "sent"
