"""Long jobs run one page per queue message (full customer sync). The job item is the single
record of progress: a page is applied only if it is the job's next page (conditional write), so a
redelivered or duplicated page message is recognised and a killed run resumes where it stopped."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema

JobStatus = Literal["running", "done", "failed"]


class SyncJobError(Model):
    """Why a job failed: `code` is stable (clients branch on it), `message` is for people."""

    code: str = Field(description="wecom_auth (secret, permission, trusted IP), wecom_error (WeCom refused "
                                  "the request), stalled (the watchdog gave up), superseded (a newer sync "
                                  "took the lock), wecom_unavailable (WeCom busy, 5xx or unreachable "
                                  "for about an hour on one page), cancelled (DELETE /customer-syncs/{job})")
    message: str
    errcode: int | None = Field(None, description="WeCom's errcode, when WeCom refused")
    api: str | None = Field(None, description="the WeCom API that refused")


class SyncJob(Model):
    corp_id: str
    job_id: str
    kind: str
    status: JobStatus = "running"
    next_page: int = 0
    state: dict[str, Any] = Field(default_factory=dict, description="where the next page starts")
    progress: dict[str, int] = Field(default_factory=dict)
    started_at: int
    updated_at: int
    finished_at: int | None = None
    error: SyncJobError | None = None
    stalls: int = Field(0, description="times the watchdog had to resend the same page")
    stalled_page: int = -1

    @field_validator("error", mode="before")
    @classmethod
    def _legacy_error(cls, v: Any) -> Any:
        # Jobs failed before errors were structured hold a plain message.
        return {"code": "failed", "message": v} if isinstance(v, str) else v


class JobRunning(Exception):
    def __init__(self, job_id: str):
        super().__init__(job_id)
        self.job_id = job_id


class JobFinished(Exception):
    """The job is no longer running (done or failed), so it cannot be cancelled."""

    def __init__(self, job_id: str, status: str):
        super().__init__(job_id)
        self.job_id = job_id
        self.status = status


class StalePage(Exception):
    """The page was already applied (a redelivery) or the job is no longer running."""


def _item(job: SyncJob) -> dict[str, Any]:
    item = {**keys.sync_job(job.corp_id, job.job_id), "type": "sync_job", **job.model_dump()}
    if job.status == "running":
        item[schema.GSI2_PK] = keys.stalled_jobs_partition()
        item[schema.GSI2_SK] = f"{job.updated_at:012d}#{job.corp_id}#{job.job_id}"
    return item


def start(job: SyncJob, *, stale_after: int) -> None:
    """Create the job unless one of its kind is running for the corp (and not stale)."""
    table = get_table()
    lock = {**keys.sync_lock(job.corp_id, job.kind), "type": "sync_lock", "job_id": job.job_id,
            "locked_at": job.started_at}
    try:
        table.transact([
            table.op_put(lock, condition="attribute_not_exists(PK) OR locked_at < :stale",
                         values={":stale": job.started_at - stale_after}),
            table.op_put(_item(job), condition="attribute_not_exists(PK)"),
        ])
    except ConditionFailed as exc:
        current = table.get(keys.sync_lock(job.corp_id, job.kind), consistent=True)
        raise JobRunning(current["job_id"] if current else "") from exc


def get(corp_id: str, job_id: str) -> SyncJob | None:
    item = get_table().get(keys.sync_job(corp_id, job_id), consistent=True)
    return SyncJob.model_validate(item) if item else None


def _lock_refresh(table: Any, job: SyncJob, at: int) -> dict:
    """The lock names the job and when it last moved: a job that keeps moving keeps its lock
    however long it runs; one that stopped for good frees it (see `start`)."""
    return table.op_update(keys.sync_lock(job.corp_id, job.kind), expression="SET locked_at = :t",
                           condition="job_id = :j", values={":t": at, ":j": job.job_id})


def advance(job: SyncJob, *, page: int, updated: SyncJob) -> None:
    """Record page `page` as applied; StalePage if it already was (or the job ended)."""
    table = get_table()
    ops = [table.op_put(_item(updated), condition="next_page = :p AND #s = :running",
                        names={"#s": "status"}, values={":p": page, ":running": "running"}),
           _lock_refresh(table, job, updated.updated_at if updated.status == "running" else 0)]
    try:
        table.transact(ops)
    except ConditionFailed as exc:
        raise StalePage(f"{job.job_id} page {page}") from exc


def _if_at_page(table: Any, job: SyncJob, updated: SyncJob) -> dict:
    """Write `updated` only while `job` is still running at the page it was read at."""
    return table.op_put(_item(updated), condition="next_page = :p AND #s = :running",
                        names={"#s": "status"}, values={":p": job.next_page, ":running": "running"})


def record_stall(job: SyncJob, *, now: int, max_stalls: int) -> SyncJob:
    """The watchdog found `job` not moving: count it; after `max_stalls` at the same page the job
    fails (its page went to the DLQ or keeps failing) and its lock is freed."""
    table = get_table()
    stalls = job.stalls + 1 if job.stalled_page == job.next_page else 1
    failed = stalls > max_stalls
    error = SyncJobError(code="stalled", message=f"page {job.next_page} did not complete after {max_stalls} resends")
    updated = job.model_copy(update={
        "stalls": stalls, "stalled_page": job.next_page, "updated_at": now,
        "status": "failed" if failed else "running", "finished_at": now if failed else None,
        "error": error if failed else None})
    try:
        table.transact([_if_at_page(table, job, updated), _lock_refresh(table, job, 0 if failed else now)])
    except ConditionFailed as exc:
        if exc.reasons[:1] == ["ConditionalCheckFailed"]:
            raise StalePage(job.job_id) from exc
        # Another job took the lock after this one went stale: this one can never finish.
        updated = updated.model_copy(update={
            "status": "failed", "finished_at": now,
            "error": SyncJobError(code="superseded", message="superseded by a newer sync of the same kind")})
        try:
            table.transact([_if_at_page(table, job, updated)])
        except ConditionFailed as again:
            raise StalePage(job.job_id) from again
    return updated


def fail(job: SyncJob, *, error: SyncJobError, now: int) -> SyncJob:
    """End `job` as failed at the page it is at and free its lock, so a new sync may start at once;
    StalePage if the job moved or ended meanwhile."""
    table = get_table()
    updated = job.model_copy(update={"status": "failed", "finished_at": now, "updated_at": now, "error": error})
    try:
        table.transact([_if_at_page(table, job, updated), _lock_refresh(table, job, 0)])
    except ConditionFailed as exc:
        if exc.reasons[:1] == ["ConditionalCheckFailed"]:
            raise StalePage(job.job_id) from exc
        # The lock is a newer job's already (this one had gone stale): leave it to that job.
        try:
            table.transact([_if_at_page(table, job, updated)])
        except ConditionFailed as again:
            raise StalePage(job.job_id) from again
    return updated


def recent(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[SyncJob], str | None]:
    """The corp's jobs, newest first (job ids sort by start time)."""
    items, next_cursor = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.sync_job_prefix(),
                                           limit=limit, cursor=cursor, newest_first=True)
    return [SyncJob.model_validate(i) for i in items], next_cursor


def running_jobs(updated_before: int) -> list[SyncJob]:
    items = get_table().query_all(keys.stalled_jobs_partition(), index=schema.GSI2,
                                  sk_between=("0", f"{updated_before:012d}"))
    return [SyncJob.model_validate(i) for i in items]


def postpone(job: SyncJob, *, until: int) -> None:
    """Mark a running job as waiting (deferred page) so the watchdog leaves it alone until then."""
    table = get_table()
    try:
        table.transact([
            table.op_update(keys.sync_job(job.corp_id, job.job_id),
                            expression="SET updated_at = :u, GSI2SK = :sk", names={"#s": "status"},
                            values={":u": until, ":sk": f"{until:012d}#{job.corp_id}#{job.job_id}",
                                    ":running": "running"},
                            condition="#s = :running"),
            _lock_refresh(table, job, until)])
    except ConditionFailed:
        pass  # finished meanwhile
