"""/api/v1 for acquisition: channel codes, the default welcome, tags, customers, contact stats."""

from __future__ import annotations

from chalice import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import channel_codes, customer_sync, customers, stats, tags, welcome
from chalicelib.api.core import API_PREFIX, Call, Page, PageQuery, endpoint, register_error, validation_details
from chalicelib.content import MessageContent
from chalicelib.store import channel_codes as channel_store
from chalicelib.store import sync_jobs
from chalicelib.store.contacts import RelationItem
from chalicelib.store.sync_jobs import SyncJob
from chalicelib.store.tags import TagItem

bp = Blueprint(__name__)

register_error(channel_codes.InvalidChannelCode, 400, "invalid_channel_code", lambda e: e.details)
register_error(channel_codes.NotFound, 404, "not_found")
register_error(channel_codes.InvalidUpdate, 400, "validation_error", lambda e: validation_details(e.error))
register_error(channel_store.StateTaken, 409, "state_taken")
register_error(channel_store.VersionConflict, 409, "edit_conflict")
register_error(tags.UnknownTags, 400, "unknown_tags", lambda e: {"tag_ids": e.tag_ids})
register_error(tags.TagNotFound, 404, "not_found")
register_error(tags.TagLimit, 409, "tag_limit")
register_error(customers.CustomerNotFound, 404, "not_found")
register_error(sync_jobs.JobRunning, 409, "sync_running", lambda e: {"job_id": e.job_id})

CODES = f"{API_PREFIX}/channel-codes"


@endpoint(bp, "POST", CODES, summary="Create a channel code (creates WeCom's contact way)",
          body=channel_codes.ChannelCodeCreate, response=channel_codes.ChannelCodeView, status=201)
def create_channel_code(call: Call) -> channel_codes.ChannelCodeView:
    return channel_codes.ChannelCodeView.of(channel_codes.create(call.principal.corp_id, call.body))


@endpoint(bp, "GET", CODES, summary="List channel codes", query=PageQuery,
          response=Page[channel_codes.ChannelCodeView])
def list_channel_codes(call: Call) -> Page[channel_codes.ChannelCodeView]:
    items, cursor = channel_store.list_codes(call.principal.corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[channel_codes.ChannelCodeView](items=[channel_codes.ChannelCodeView.of(i) for i in items],
                                               next_cursor=cursor)


@endpoint(bp, "GET", f"{CODES}/{{state}}", summary="One channel code", response=channel_codes.ChannelCodeView)
def get_channel_code(call: Call) -> channel_codes.ChannelCodeView:
    return channel_codes.ChannelCodeView.of(channel_codes.get(call.principal.corp_id, call.params["state"]))


@endpoint(bp, "PATCH", f"{CODES}/{{state}}", summary="Change a channel code (WeCom is updated only if routing changes)",
          body=channel_codes.ChannelCodeUpdate, response=channel_codes.ChannelCodeView)
def update_channel_code(call: Call) -> channel_codes.ChannelCodeView:
    return channel_codes.ChannelCodeView.of(
        channel_codes.update(call.principal.corp_id, call.params["state"], call.body))


@endpoint(bp, "DELETE", f"{CODES}/{{state}}", summary="Delete a channel code (and its WeCom contact way)",
          status=204)
def delete_channel_code(call: Call) -> None:
    channel_codes.delete(call.principal.corp_id, call.params["state"])


class DefaultWelcome(BaseModel):
    welcome: MessageContent | None


@endpoint(bp, "PUT", f"{API_PREFIX}/welcome/default", summary="Set the welcome for contacts with no channel",
          body=DefaultWelcome, response=DefaultWelcome)
def put_default_welcome(call: Call) -> DefaultWelcome:
    welcome.set_default_welcome(call.principal.corp_id, call.body.welcome)
    return call.body


@endpoint(bp, "GET", f"{API_PREFIX}/welcome/default", summary="The welcome for contacts with no channel",
          response=DefaultWelcome)
def get_default_welcome(call: Call) -> DefaultWelcome:
    return DefaultWelcome(welcome=welcome.default_welcome(call.principal.corp_id))


class TagLibrary(BaseModel):
    groups: list[tags.TagGroupView]


class SyncResult(BaseModel):
    tags: int
    written: int
    deleted: int


@endpoint(bp, "GET", f"{API_PREFIX}/tags", summary="The tag library, by group", response=TagLibrary)
def list_tags(call: Call) -> TagLibrary:
    return TagLibrary(groups=tags.library(call.principal.corp_id))


@endpoint(bp, "POST", f"{API_PREFIX}/tags", summary="Create tags (in WeCom, then mirrored)",
          body=tags.TagCreate, response=tags.TagGroupView, status=201)
def create_tags(call: Call) -> tags.TagGroupView:
    return tags.create(call.principal.corp_id, call.body)


@endpoint(bp, "PATCH", f"{API_PREFIX}/tags/{{tag_id}}", summary="Rename a tag", body=tags.TagRename,
          response=TagItem)
def rename_tag(call: Call) -> TagItem:
    return tags.rename(call.principal.corp_id, call.params["tag_id"], call.body)


@endpoint(bp, "DELETE", f"{API_PREFIX}/tags/{{tag_id}}", summary="Delete a tag", status=204)
def delete_tag(call: Call) -> None:
    tags.delete(call.principal.corp_id, call.params["tag_id"])


@endpoint(bp, "POST", f"{API_PREFIX}/tags/sync", summary="Re-read the tag library from WeCom now",
          response=SyncResult)
def sync_tags(call: Call) -> SyncResult:
    return SyncResult(**tags.sync_library(call.principal.corp_id))


class TagChangeResults(BaseModel):
    results: list[tags.TagChangeResult]


@endpoint(bp, "POST", f"{API_PREFIX}/customers/tags", summary="Tag customers (one or up to 100 relations)",
          body=tags.BulkTagChange, response=TagChangeResults)
def tag_customers(call: Call) -> TagChangeResults:
    return TagChangeResults(results=tags.change_many(call.principal.corp_id, call.body))


class RelationTagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(min_length=1, max_length=64)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


@endpoint(bp, "POST", f"{API_PREFIX}/customers/{{customer_id}}/tags",
          summary="Tag / untag one customer's relation with a staff member", body=RelationTagChange,
          response=tags.TagChangeResult)
def tag_customer(call: Call) -> tags.TagChangeResult:
    from pydantic import ValidationError

    from chalicelib.api.core import ApiError

    try:
        change = tags.CustomerTagChange(customer_id=call.params["customer_id"], **call.body.model_dump())
    except ValidationError as exc:
        raise ApiError(400, "validation_error", "the request body is invalid", validation_details(exc)) from exc
    result = tags.change_customer_tags(call.principal.corp_id, change)
    if result.status == "no_relation":
        raise ApiError(409, "no_relation", "this customer is not (or no longer) a contact of that staff member")
    return result


@endpoint(bp, "GET", f"{API_PREFIX}/customers", summary="Customers (relations customer x staff), newest first",
          query=customers.CustomerQuery, response=Page[RelationItem])
def list_customers(call: Call) -> Page[RelationItem]:
    items, cursor = customers.search(call.principal.corp_id, call.query)
    return Page[RelationItem](items=items, next_cursor=cursor)


@endpoint(bp, "GET", f"{API_PREFIX}/customers/{{customer_id}}", summary="One customer: relations, tags, timeline",
          response=customers.CustomerDetail)
def get_customer(call: Call) -> customers.CustomerDetail:
    return customers.detail(call.principal.corp_id, call.params["customer_id"])


@endpoint(bp, "POST", f"{API_PREFIX}/customer-syncs", summary="Start a full customer sync from WeCom",
          response=SyncJob, status=202)
def start_customer_sync(call: Call) -> SyncJob:
    return customer_sync.start(call.principal.corp_id)


@endpoint(bp, "GET", f"{API_PREFIX}/customer-syncs/{{job_id}}", summary="Progress of a customer sync",
          response=SyncJob)
def get_customer_sync(call: Call) -> SyncJob:
    job = sync_jobs.get(call.principal.corp_id, call.params["job_id"])
    if job is None:
        raise customers.CustomerNotFound("sync job")
    return job.model_copy(update={"state": {k: v for k, v in job.state.items() if k != "staff"}})


@endpoint(bp, "GET", f"{API_PREFIX}/stats/contacts", summary="Adds, lost, removed, net by day / channel / staff",
          query=stats.ContactStatsQuery, response=stats.ContactStats)
def contact_stats(call: Call) -> stats.ContactStats:
    return stats.contact_stats(call.principal.corp_id, call.query)
