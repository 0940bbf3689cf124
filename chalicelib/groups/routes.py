"""/api/v1/groups and /api/v1/group-syncs: customer groups with exact member counts, their members,
and full group syncs from WeCom.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, endpoint, register_error

bp = Blueprint(__name__)

SVC = "chalicelib.groups.service"

register_error(f"{SVC}:GroupNotFound", 404, "not_found")


@endpoint(bp, "GET", f"{API_PREFIX}/groups", summary="Customer groups by id, filtered",
          query=Lazy(f"{SVC}:GroupQuery"), response=Lazy("chalicelib.groups.items:GroupItem", page=True))
def list_groups(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.groups import service as groups
    from chalicelib.groups.items import GroupItem

    items, cursor = groups.search(call.principal.corp_id, call.query)
    return Page[GroupItem](items=items, next_cursor=cursor)


@endpoint(bp, "GET", f"{API_PREFIX}/groups/{{group_id}}", summary="One group: owner, admins, members, codes",
          response=Lazy(f"{SVC}:GroupDetail"))
def get_group(call: Call) -> Any:
    from chalicelib.groups import service as groups

    return groups.detail(call.principal.corp_id, call.params["group_id"])


SYNC_JOB = Lazy("chalicelib.customers.sync_items:SyncJob")
SYNCS = f"{API_PREFIX}/group-syncs"


# The body is optional (no field yet), parsed here as for customer syncs (409 sync_running while one
# runs: the error is registered with the customer sync's, which this one shares).
@endpoint(bp, "POST", SYNCS, summary="Start a full group sync from WeCom (groupchat/list + get); body optional",
          response=SYNC_JOB, status=202)
def start_group_sync(call: Call) -> Any:
    from chalicelib.api.core import _parse_body
    from chalicelib.customers import sync as jobs
    from chalicelib.groups import sync as group_sync

    raw = bp.current_request.raw_body
    if raw and raw.strip():
        _parse_body(raw, jobs.SyncStart)  # unknown fields: 400 validation_error
    return group_sync.start(call.principal.corp_id)


@endpoint(bp, "GET", f"{SYNCS}/{{job_id}}", summary="Progress of a group sync", response=SYNC_JOB)
def get_group_sync(call: Call) -> Any:
    from chalicelib.customers import sync as jobs
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.groups import sync as group_sync

    job = sync_jobs.get(call.principal.corp_id, call.params["job_id"])
    if job is None or job.kind != group_sync.KIND:
        raise jobs.JobNotFound(f"group sync {call.params['job_id']} not found")
    return job


def _document_sync_body() -> None:
    from chalicelib.api.core import ENDPOINTS

    for spec in ENDPOINTS:
        if spec.method == "POST" and spec.path == SYNCS:
            spec.body = Lazy("chalicelib.customers.sync:SyncStart")


_document_sync_body()
