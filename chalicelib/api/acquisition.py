"""/api/v1 for acquisition: channel codes, the default welcome, tags, customers, contact stats.

Models and capabilities are named lazily (`Lazy("module:Name")`) and imported inside the views:
importing app.py registers these routes without building their models, so the callback path's
cold start does not pay for the operator API.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error, validation_details

bp = Blueprint(__name__)

CC, TAGS, CUST = "chalicelib.channel_codes", "chalicelib.tags", "chalicelib.customers"

register_error(f"{CC}:InvalidChannelCode", 400, "invalid_channel_code", lambda e: e.details)
register_error(f"{CC}:NotFound", 404, "not_found")
register_error(f"{CC}:InvalidUpdate", 400, "validation_error", lambda e: validation_details(e.error))
register_error("chalicelib.store.channel_codes:StateTaken", 409, "state_taken")
register_error("chalicelib.store.channel_codes:VersionConflict", 409, "edit_conflict")
register_error(f"{TAGS}:UnknownTags", 400, "unknown_tags", lambda e: {"tag_ids": e.tag_ids})
register_error(f"{TAGS}:TagNotFound", 404, "not_found")
register_error(f"{TAGS}:TagLimit", 409, "tag_limit")
register_error(f"{TAGS}:TagExists", 409, "tag_exists", lambda e: {"names": e.names, "group_name": e.group})
register_error(f"{CUST}:CustomerNotFound", 404, "not_found")
register_error("chalicelib.store.sync_jobs:JobRunning", 409, "sync_running", lambda e: {"job_id": e.job_id})
register_error("chalicelib.store.sync_jobs:JobFinished", 409, "sync_not_running",
               lambda e: {"job_id": e.job_id, "status": e.status})
register_error("chalicelib.customer_sync:JobNotFound", 404, "not_found")

CODES = f"{API_PREFIX}/channel-codes"
CODE_VIEW = Lazy(f"{CC}:ChannelCodeView")


# -- channel codes ----------------------------------------------------------------------------------
@endpoint(bp, "POST", CODES, summary="Create a channel code (creates WeCom's contact way)",
          body=Lazy(f"{CC}:ChannelCodeCreate"), response=CODE_VIEW, status=201)
def create_channel_code(call: Call) -> Any:
    from chalicelib import channel_codes

    return channel_codes.ChannelCodeView.of(channel_codes.create(call.principal.corp_id, call.body))


@endpoint(bp, "GET", CODES, summary="List channel codes", query=PageQuery,
          response=Lazy(f"{CC}:ChannelCodeView", page=True))
def list_channel_codes(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.channel_codes import ChannelCodeView
    from chalicelib.store import channel_codes as channel_store

    items, cursor = channel_store.list_codes(call.principal.corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[ChannelCodeView](items=[ChannelCodeView.of(i) for i in items], next_cursor=cursor)


@endpoint(bp, "GET", f"{CODES}/{{state}}", summary="One channel code", response=CODE_VIEW)
def get_channel_code(call: Call) -> Any:
    from chalicelib import channel_codes

    return channel_codes.ChannelCodeView.of(channel_codes.get(call.principal.corp_id, call.params["state"]))


@endpoint(bp, "PATCH", f"{CODES}/{{state}}", summary="Change a channel code (WeCom is updated only if routing changes)",
          body=Lazy(f"{CC}:ChannelCodeUpdate"), response=CODE_VIEW)
def update_channel_code(call: Call) -> Any:
    from chalicelib import channel_codes

    return channel_codes.ChannelCodeView.of(
        channel_codes.update(call.principal.corp_id, call.params["state"], call.body))


@endpoint(bp, "DELETE", f"{CODES}/{{state}}", summary="Delete a channel code (and its WeCom contact way)",
          status=204)
def delete_channel_code(call: Call) -> None:
    from chalicelib import channel_codes

    channel_codes.delete(call.principal.corp_id, call.params["state"])


# -- the default welcome ------------------------------------------------------------------------------
DEFAULT_WELCOME = Lazy("chalicelib.welcome:DefaultWelcome")


@endpoint(bp, "PUT", f"{API_PREFIX}/welcome/default", summary="Set the welcome for contacts with no channel",
          body=DEFAULT_WELCOME, response=DEFAULT_WELCOME)
def put_default_welcome(call: Call) -> Any:
    from chalicelib import welcome

    welcome.set_default_welcome(call.principal.corp_id, call.body.welcome)
    return call.body


@endpoint(bp, "GET", f"{API_PREFIX}/welcome/default", summary="The welcome for contacts with no channel",
          response=DEFAULT_WELCOME)
def get_default_welcome(call: Call) -> Any:
    from chalicelib import welcome

    return welcome.DefaultWelcome(welcome=welcome.default_welcome(call.principal.corp_id))


# -- tags -------------------------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/tags", summary="The tag library, by group", response=Lazy(f"{TAGS}:TagLibrary"))
def list_tags(call: Call) -> Any:
    from chalicelib import tags

    return tags.TagLibrary(groups=tags.library(call.principal.corp_id))


@endpoint(bp, "POST", f"{API_PREFIX}/tags", summary="Create tags (in WeCom, then mirrored)",
          body=Lazy(f"{TAGS}:TagCreate"), response=Lazy(f"{TAGS}:TagGroupView"), status=201)
def create_tags(call: Call) -> Any:
    from chalicelib import tags

    return tags.create(call.principal.corp_id, call.body)


@endpoint(bp, "PATCH", f"{API_PREFIX}/tags/{{tag_id}}", summary="Rename a tag", body=Lazy(f"{TAGS}:TagRename"),
          response=Lazy("chalicelib.store.tags:TagItem"))
def rename_tag(call: Call) -> Any:
    from chalicelib import tags

    return tags.rename(call.principal.corp_id, call.params["tag_id"], call.body)


@endpoint(bp, "DELETE", f"{API_PREFIX}/tags/{{tag_id}}", summary="Delete a tag", status=204)
def delete_tag(call: Call) -> None:
    from chalicelib import tags

    tags.delete(call.principal.corp_id, call.params["tag_id"])


@endpoint(bp, "POST", f"{API_PREFIX}/tags/sync", summary="Re-read the tag library from WeCom now",
          response=Lazy(f"{TAGS}:SyncResult"))
def sync_tags(call: Call) -> Any:
    from chalicelib import tags

    return tags.SyncResult(**tags.sync_library(call.principal.corp_id))


# -- customers --------------------------------------------------------------------------------------
@endpoint(bp, "POST", f"{API_PREFIX}/customers/tags", summary="Tag customers (one or up to 100 relations)",
          body=Lazy(f"{TAGS}:BulkTagChange"), response=Lazy(f"{TAGS}:TagChangeResults"))
def tag_customers(call: Call) -> Any:
    from chalicelib import tags

    return tags.TagChangeResults(results=tags.change_many(call.principal.corp_id, call.body))


@endpoint(bp, "POST", f"{API_PREFIX}/customers/{{customer_id}}/tags",
          summary="Tag / untag one customer's relation with a staff member", body=Lazy(f"{TAGS}:RelationTagChange"),
          response=Lazy(f"{TAGS}:TagChangeResult"))
def tag_customer(call: Call) -> Any:
    from pydantic import ValidationError

    from chalicelib import customers, tags
    from chalicelib.api.core import ApiError

    try:
        change = tags.CustomerTagChange(customer_id=call.params["customer_id"], **call.body.model_dump())
    except ValidationError as exc:
        raise ApiError(400, "validation_error", "the request body is invalid", validation_details(exc)) from exc
    result = tags.change_customer_tags(call.principal.corp_id, change)
    if result.status == "no_relation":
        # Looked up only on this path: a customer we do not know at all is 404, not a missing relation.
        customers.require_known(call.principal.corp_id, change.customer_id)
        raise ApiError(409, "no_relation", "this customer is not (or no longer) a contact of that staff member")
    return result


@endpoint(bp, "GET", f"{API_PREFIX}/customers", summary="Customers (relations customer x staff), newest first",
          query=Lazy(f"{CUST}:CustomerQuery"), response=Lazy("chalicelib.store.contacts:RelationItem", page=True))
def list_customers(call: Call) -> Any:
    from chalicelib import customers
    from chalicelib.api.core import Page
    from chalicelib.store.contacts import RelationItem

    items, cursor = customers.search(call.principal.corp_id, call.query)
    return Page[RelationItem](items=items, next_cursor=cursor)


@endpoint(bp, "GET", f"{API_PREFIX}/customers/{{customer_id}}", summary="One customer: relations, tags, timeline",
          response=Lazy(f"{CUST}:CustomerDetail"))
def get_customer(call: Call) -> Any:
    from chalicelib import customers

    return customers.detail(call.principal.corp_id, call.params["customer_id"])


SYNC_JOB = Lazy("chalicelib.store.sync_jobs:SyncJob")
SYNCS = f"{API_PREFIX}/customer-syncs"


# The body is optional (no field yet; `{}` or none), so it is parsed here rather than by the endpoint
# decorator, which requires one; the OpenAPI document still describes it (below).
@endpoint(bp, "POST", SYNCS, summary="Start a full customer sync from WeCom; body optional", response=SYNC_JOB,
          status=202)
def start_customer_sync(call: Call) -> Any:
    from chalicelib import customer_sync
    from chalicelib.api.core import _parse_body

    raw = bp.current_request.raw_body
    if raw and raw.strip():
        _parse_body(raw, customer_sync.SyncStart)  # unknown fields: 400 validation_error
    return customer_sync.start(call.principal.corp_id)


def _sync_view(job: Any) -> Any:
    return job.model_copy(update={"state": {k: v for k, v in job.state.items() if k != "staff"}})


@endpoint(bp, "GET", f"{SYNCS}/{{job_id}}", summary="Progress of a customer sync", response=SYNC_JOB)
def get_customer_sync(call: Call) -> Any:
    from chalicelib import customer_sync
    from chalicelib.store import sync_jobs

    job = sync_jobs.get(call.principal.corp_id, call.params["job_id"])
    if job is None:
        raise customer_sync.JobNotFound(call.params["job_id"])
    return _sync_view(job)


@endpoint(bp, "DELETE", f"{SYNCS}/{{job_id}}", response=SYNC_JOB,
          summary="Cancel a running customer sync (it ends `failed` with error `cancelled`; the lock is freed)")
def cancel_customer_sync(call: Call) -> Any:
    from chalicelib import customer_sync

    return _sync_view(customer_sync.cancel(call.principal.corp_id, call.params["job_id"]))


def _document_sync_body() -> None:
    from chalicelib.api.core import ENDPOINTS

    for spec in ENDPOINTS:
        if spec.method == "POST" and spec.path == SYNCS:
            spec.body = Lazy("chalicelib.customer_sync:SyncStart")


_document_sync_body()


# -- stats ------------------------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/stats/contacts", summary="Adds, lost, removed, net by day / channel / staff",
          query=Lazy("chalicelib.stats:ContactStatsQuery"), response=Lazy("chalicelib.stats:ContactStats"))
def contact_stats(call: Call) -> Any:
    from chalicelib import stats

    return stats.contact_stats(call.principal.corp_id, call.query)
