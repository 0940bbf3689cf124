"""Full customer sync from WeCom, so a corp that already has a million customers can adopt the
product: get_follow_user_list, then batch/get_by_user over the staff in chunks of 100 with
WeCom's cursor, one page per queue message. The job, lock, page and retry mechanics here are
shared with the full group sync (chalicelib/groups/sync.py: `start(kind=...)`, `page_to_run`,
`finish_page`; `handle_message` sends each kind's pages to its `handle_page`).

Exactly one page message is in flight per job. The job item records the next page and WeCom's
cursor; a page is applied and the job advanced under a condition on the page number, so a
redelivered message is recognised, and a run killed mid-way resumes from the job item (the
minute tick re-sends the next page of a job that has not moved for `STALL_SECONDS`).

WeCom limiting us (45009) defers the page by the wait WeCom names; WeCom busy, answering 5xx or
unreachable defers it with a doubling delay (`queues.backoff_delay`, capped at SQS's 900 s), and after
`MAX_DEFERRALS` deferrals of the same page (about an hour) fails the job with error `wecom_unavailable`
and frees the lock. `cancel` (DELETE /customer-syncs/{job}) ends a running job the same way with error
`cancelled`; a page message still in flight then finds it not running and is ignored. WeCom refusing the
request itself (wrong secret, API not granted, IP not trusted: an `ApiError` that is not `retryable`) fails
the job at once with a stable `error` and frees the lock, as no retry can succeed.
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from chalicelib.customers import sync_items as sync_jobs
from chalicelib.customers.sync_items import SyncJob, SyncJobError
from chalicelib.platform.errors import NotFound
from chalicelib.platform.model import Model

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.wecom.errors import ApiError

logger = logging.getLogger(__name__)

KIND = "customers"
KINDS = ("customers", "groups", "handovers")  # chalicelib/<kind>/sync.py: handle_page
STAFF_PER_CALL = 100  # batch/get_by_user userid_list limit
CONTACTS_PER_CALL = 100  # its `limit` maximum
STALL_SECONDS = 300
RESEND_AFTER_SECONDS = 60
MAX_STALLS = 5  # watchdog resends of one page before the job is marked failed
MAX_DEFERRALS = 11  # 5+10+...+640+900*3 s: about 66 minutes of WeCom unavailable before the job fails


class SyncStart(Model):
    """POST /customer-syncs body: no options yet (an empty body or `{}`); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class JobNotFound(NotFound):
    """No such sync job for the corp."""

    what = "sync job"


def new_job_id() -> str:
    """16 hex digits that sort by start time (milliseconds, fixed width until the year 2527), then
    random: GET /customer-syncs lists jobs newest first by reading their keys backwards."""
    return f"{time.time_ns() // 1_000_000:011x}{uuid.uuid4().hex[:5]}"


def defer_delay(attempt: int) -> int:
    """Seconds to wait before the retry following deferral number `attempt` (0-based)."""
    from chalicelib.platform import queues

    return queues.backoff_delay(attempt)


def start(corp_id: str, *, now: float | None = None, kind: str = KIND,
          progress: dict[str, int] | None = None) -> SyncJob:
    """Start a sync of `kind` (JobRunning if one of that kind is already running for the corp). Its
    pages go to `chalicelib.<kind>.sync.handle_page` (see `handle_message`)."""
    now = int(time.time() if now is None else now)
    job = SyncJob(corp_id=corp_id, job_id=new_job_id(), kind=kind, started_at=now, updated_at=now,
                  progress={"staff": 0, "relations": 0, "new_customers": 0, "pages": 0} if progress is None
                  else progress)
    sync_jobs.start(job, stale_after=STALL_SECONDS * 3)
    _send_page(job, 0)
    return job


def _send_page(job: SyncJob, page: int, *, delay: int = 0) -> None:
    from chalicelib.platform import queues

    queues.send(queues.SYNC, queues.SyncPageMessage(corp_id=job.corp_id, job_id=job.job_id, kind=job.kind,
                                                    cursor={"page": page}), delay_seconds=delay)


def _convert(contacts: list[Any]) -> tuple[list[Any], list[Any]]:
    from chalicelib.customers.items import CustomerProfile, RelationItem
    from chalicelib.customers.steps import profile_of

    profiles: dict[str, CustomerProfile] = {}
    relations = []
    for entry in contacts:
        ec, follow = entry.external_contact, entry.follow_info
        created = getattr(follow, "createtime", None)
        prev = profiles.get(ec.external_userid)
        first_seen = min(x for x in (created, prev.first_seen_at if prev else None) if x) if (
            created or prev) else None
        profiles[ec.external_userid] = profile_of(ec, first_seen_at=first_seen)
        relations.append(RelationItem(
            customer_id=ec.external_userid, staff_id=follow.userid, status="active",
            state=getattr(follow, "state", None) or None, added_at=created,
            last_event_at=created or 0, tags=list(getattr(follow, "tag_id", None) or [])))
    return list(profiles.values()), relations


def page_to_run(corp_id: str, job_id: str, page: int, *, now: int) -> SyncJob | str:
    """The job if `page` is its next page to apply; else what the message is ("stale", "duplicate",
    "ahead"). Shared by every kind of sync."""
    job = sync_jobs.get(corp_id, job_id)
    if job is None or job.status != "running":
        return "stale"
    if page < job.next_page:
        # The job advanced past this page. Its next message was sent right after the advance;
        # resend it only if the job has not moved for a while (the sender may have died between
        # the two), else every redelivery would double the rest of the run.
        if page == job.next_page - 1 and now - job.updated_at >= RESEND_AFTER_SECONDS:
            _send_page(job, job.next_page)
        return "duplicate"
    if page > job.next_page:
        return "ahead"
    return job


def finish_page(job: SyncJob, page: int, *, now: int, state: dict[str, Any], progress: dict[str, int],
                done: bool) -> str:
    """Record page `page` as applied (under the job's page condition) and send the next one."""
    progress["pages"] = page + 1
    updated = job.model_copy(update={
        "next_page": page + 1, "state": state, "progress": progress, "updated_at": now,
        "status": "done" if done else "running", "finished_at": now if done else None})
    try:
        sync_jobs.advance(job, page=page, updated=updated)
    except sync_jobs.StalePage:
        return "duplicate"
    if not done:
        _send_page(updated, page + 1)
    return "done" if done else "advanced"


def handle_page(corp_id: str, job_id: str, page: int, *, now: float | None = None) -> str:
    from chalicelib.corps import registry as corps
    from chalicelib.customers import items as customer_items

    now = int(time.time() if now is None else now)
    job = page_to_run(corp_id, job_id, page, now=now)
    if isinstance(job, str):
        return job
    client = corps.wecom_client(corp_id)
    state = dict(job.state)
    progress = dict(job.progress)
    if "staff" not in state:
        staff = sorted(client.get_follow_user_list().follow_user)
        state = {"staff": staff, "chunk": 0, "cursor": ""}
        progress["staff"] = len(staff)
    else:
        staff = state["staff"]
        chunk = staff[state["chunk"] * STAFF_PER_CALL:(state["chunk"] + 1) * STAFF_PER_CALL]
        read_at = int(time.time())
        resp = client.batch_get_by_user(chunk, cursor=state["cursor"] or None, limit=CONTACTS_PER_CALL)
        profiles, relations = _convert(resp.external_contact_list)
        new_customers = customer_items.put_synced(corp_id, profiles, relations, read_at=read_at,
                                                 page_id=f"{job.job_id}#{page}")
        progress["relations"] = progress.get("relations", 0) + len(relations)
        progress["new_customers"] = progress.get("new_customers", 0) + new_customers
        if resp.next_cursor:
            state["cursor"] = resp.next_cursor
        else:
            state["chunk"] += 1
            state["cursor"] = ""
    done = state["chunk"] * STAFF_PER_CALL >= len(state["staff"])
    return finish_page(job, page, now=now, state=state, progress=progress, done=done)


def handle_message(body: str) -> str:
    from pydantic import ValidationError

    from chalicelib.corps import registry as corps
    from chalicelib.platform import queues
    from chalicelib.platform.consumer import Unprocessable
    from chalicelib.wecom import errors

    try:
        msg = queues.SyncPageMessage.model_validate_json(body)
    except ValidationError as exc:  # redelivering it cannot help: to the DLQ at once, with why
        raise Unprocessable(f"not a sync page message: {exc.error_count()} error(s)") from exc
    if msg.kind not in KINDS:
        raise Unprocessable(f"unknown sync kind {msg.kind}")
    page = int(msg.cursor.get("page", 0))
    # Each kind's pages run in chalicelib/<kind>/sync.py; everything around a page (deferral,
    # failure, cancel, the watchdog) is shared and lives here.
    run_page = handle_page if msg.kind == KIND else importlib.import_module(f"chalicelib.{msg.kind}.sync").handle_page
    try:
        return run_page(msg.corp_id, msg.job_id, page)
    except (errors.FrequencyLimited, errors.SystemBusy, errors.WeComUnavailable) as exc:
        # Retry later as a new message: waiting out a 45009 block must not count toward the DLQ.
        if isinstance(exc, errors.FrequencyLimited):
            wait = int(exc.retry_after or queues.BACKOFF_BASE_SECONDS)  # WeCom names its wait
        elif msg.attempt >= MAX_DEFERRALS:
            # WeCom busy or unreachable for about an hour on this page: stop holding the corp's lock.
            return _fail(msg.corp_id, msg.job_id, page, _unavailable_error(exc, page, msg.attempt))
        else:
            wait = defer_delay(msg.attempt)
        queues.defer(queues.SYNC, msg, delay_seconds=wait)
        job = sync_jobs.get(msg.corp_id, msg.job_id)
        if job is not None:
            sync_jobs.postpone(job, until=int(time.time()) + min(wait, queues.MAX_DELAY_SECONDS))
        return "deferred"
    except errors.ApiError as exc:
        if exc.retryable:
            raise  # a token refused even after the client's refresh: SQS redelivers the page
        if isinstance(exc, errors.AuthError) and corps.refresh(msg.corp_id) is not None:
            # This instance's secret may be one changed since through another (PATCH /corps):
            # the page is retried once with the stored one before the job is failed for it.
            return handle_message(body)
        # WeCom refuses the request itself (wrong secret, API not granted, IP not trusted, ...): every
        # retry would fail the same way while the job holds the corp's lock. End the job now; the
        # message is done (not sent toward the DLQ) and the operator starts a new sync once fixed.
        return _fail(msg.corp_id, msg.job_id, page, _refused_error(exc))


def _refused_error(exc: ApiError) -> SyncJobError:
    from chalicelib.wecom import errors

    auth = isinstance(exc, errors.AuthError)
    # The explanations table is errors.EXPLANATIONS; WeCom's errmsg carries a hint and the caller's IP.
    reason = errors.explain(exc.errcode) or (
        "WeCom refused the credentials or permissions" if auth else "WeCom refused the request")
    return SyncJobError(code="wecom_auth" if auth else "wecom_error", errcode=exc.errcode, api=exc.api or None,
                        message=f"errcode {exc.errcode}: {reason}")


def _unavailable_error(exc: Exception, page: int, deferrals: int) -> SyncJobError:
    errcode = getattr(exc, "errcode", None)
    errcode = errcode if isinstance(errcode, int) else None
    status = getattr(exc, "status_code", None)
    last = f"HTTP {status}" if status else f"errcode {errcode}" if errcode is not None else type(exc).__name__
    return SyncJobError(code="wecom_unavailable", errcode=errcode, api=getattr(exc, "api", None) or None,
                        message=f"WeCom was busy or unreachable for page {page} through {deferrals} retries "
                                f"(last: {last}); start a new sync once it answers")


def _fail(corp_id: str, job_id: str, page: int, error: SyncJobError) -> str:
    job = sync_jobs.get(corp_id, job_id)
    if job is None or job.status != "running" or job.next_page != page:
        return "stale"  # it ended or moved meanwhile (another copy of the page)
    try:
        sync_jobs.fail(job, error=error, now=int(time.time()))
    except sync_jobs.StalePage:
        return "stale"
    logger.error("sync %s/%s failed at page %d: %s (%s)", corp_id, job_id, page, error.message, error.api)
    return "failed"


def cancel(corp_id: str, job_id: str, *, now: float | None = None) -> SyncJob:
    """End a running job as failed with error `cancelled` and free its lock; a page message still in
    flight finds the job not running and is dropped. JobNotFound, or sync_jobs.JobFinished if it ended."""
    now = int(time.time() if now is None else now)
    error = SyncJobError(code="cancelled", message="cancelled by the operator")
    for _ in range(5):  # a page may advance the job between the read and the write: read it again
        job = sync_jobs.get(corp_id, job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.status != "running":
            raise sync_jobs.JobFinished(job_id, job.status)
        try:
            cancelled = sync_jobs.fail(job, error=error, now=now)
        except sync_jobs.StalePage:
            continue
        logger.warning("sync %s/%s cancelled at page %d", corp_id, job_id, job.next_page)
        return cancelled
    raise sync_jobs.StalePage(job_id)  # pragma: no cover - a job moving on every read


def resume_stalled(*, now: float | None = None) -> int:
    """Re-send the next page of jobs that stopped moving (a killed run, a lost message)."""
    now = int(time.time() if now is None else now)
    resumed = 0
    for job in sync_jobs.running_jobs(updated_before=now - STALL_SECONDS):
        try:
            job = sync_jobs.record_stall(job, now=now, max_stalls=MAX_STALLS)
        except sync_jobs.StalePage:
            continue  # it moved meanwhile
        if job.status == "failed":
            logger.error("sync %s/%s failed: %s", job.corp_id, job.job_id, job.error and job.error.message)
            continue
        logger.warning("resuming stalled sync %s/%s at page %d", job.corp_id, job.job_id, job.next_page)
        _send_page(job, job.next_page)
        resumed += 1
    return resumed
