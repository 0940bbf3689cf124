"""/api/v1/customers and /api/v1/customer-syncs: customers, their relations and timelines, and full syncs from WeCom.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error

bp = Blueprint(__name__)

CUST = "chalicelib.customers.service"

register_error(f"{CUST}:CustomerNotFound", 404, "not_found")
register_error("chalicelib.customers.sync_items:JobRunning", 409, "sync_running", lambda e: {"job_id": e.job_id})
register_error("chalicelib.customers.sync_items:JobFinished", 409, "sync_not_running",
               lambda e: {"job_id": e.job_id, "status": e.status})
register_error("chalicelib.customers.sync:JobNotFound", 404, "not_found")


# -- customers --------------------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/customers", summary="Customers (relations customer x staff), newest first",
          query=Lazy(f"{CUST}:CustomerQuery"), response=Lazy(f"{CUST}:CustomerRow", page=True))
def list_customers(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.customers import service as customers

    items, cursor = customers.search(call.principal.corp_id, call.query)
    return Page[customers.CustomerRow](items=items, next_cursor=cursor)


@endpoint(bp, "GET", f"{API_PREFIX}/customers/{{customer_id}}", summary="One customer: relations, tags, timeline",
          response=Lazy(f"{CUST}:CustomerDetail"))
def get_customer(call: Call) -> Any:
    from chalicelib.customers import service as customers

    return customers.detail(call.principal.corp_id, call.params["customer_id"])


SYNC_JOB = Lazy("chalicelib.customers.sync_items:SyncJob")
SYNCS = f"{API_PREFIX}/customer-syncs"


# The body is optional (no field yet; `{}` or none), so it is parsed here rather than by the endpoint
# decorator, which requires one; the OpenAPI document still describes it (below).
@endpoint(bp, "POST", SYNCS, summary="Start a full customer sync from WeCom; body optional", response=SYNC_JOB,
          status=202)
def start_customer_sync(call: Call) -> Any:
    from chalicelib.api.core import _parse_body
    from chalicelib.customers import sync as customer_sync

    raw = bp.current_request.raw_body
    if raw and raw.strip():
        _parse_body(raw, customer_sync.SyncStart)  # unknown fields: 400 validation_error
    return customer_sync.start(call.principal.corp_id)


def _sync_view(job: Any) -> Any:
    return job.model_copy(update={"state": {k: v for k, v in job.state.items() if k != "staff"}})


@endpoint(bp, "GET", SYNCS, summary="Recent customer syncs, newest first", query=PageQuery,
          response=Lazy("chalicelib.customers.sync_items:SyncJob", page=True))
def list_customer_syncs(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.customers import sync_items as sync_jobs

    jobs, cursor = sync_jobs.recent(call.principal.corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[sync_jobs.SyncJob](items=[_sync_view(j) for j in jobs], next_cursor=cursor)


@endpoint(bp, "GET", f"{SYNCS}/{{job_id}}", summary="Progress of a customer sync", response=SYNC_JOB)
def get_customer_sync(call: Call) -> Any:
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    job = sync_jobs.get(call.principal.corp_id, call.params["job_id"])
    if job is None:
        raise customer_sync.JobNotFound(call.params["job_id"])
    return _sync_view(job)


@endpoint(bp, "DELETE", f"{SYNCS}/{{job_id}}", response=SYNC_JOB,
          summary="Cancel a running customer sync (it ends `failed` with error `cancelled`; the lock is freed)")
def cancel_customer_sync(call: Call) -> Any:
    from chalicelib.customers import sync as customer_sync

    return _sync_view(customer_sync.cancel(call.principal.corp_id, call.params["job_id"]))


def _document_sync_body() -> None:
    from chalicelib.api.core import ENDPOINTS

    for spec in ENDPOINTS:
        if spec.method == "POST" and spec.path == SYNCS:
            spec.body = Lazy("chalicelib.customers.sync:SyncStart")


_document_sync_body()
