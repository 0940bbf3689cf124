"""/api/v1/tags and tagging customers: the tag library (标签) mirrored from WeCom, and marking tags on relations.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, endpoint, register_error, validation_details

bp = Blueprint(__name__)

TAGS = "chalicelib.tags.service"

register_error(f"{TAGS}:UnknownTags", 400, "unknown_tags")
register_error(f"{TAGS}:TagNotFound", 404, "not_found")
register_error(f"{TAGS}:TagLimit", 409, "tag_limit")
register_error(f"{TAGS}:TagExists", 409, "tag_exists", lambda e: {"names": e.names, "group_name": e.group})


# -- tags -------------------------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/tags", summary="The tag library, by group", response=Lazy(f"{TAGS}:TagLibrary"))
def list_tags(call: Call) -> Any:
    from chalicelib.tags import service as tags

    return tags.TagLibrary(groups=tags.library(call.principal.corp_id))


@endpoint(bp, "POST", f"{API_PREFIX}/tags", summary="Create tags (in WeCom, then mirrored)",
          body=Lazy(f"{TAGS}:TagCreate"), response=Lazy(f"{TAGS}:TagGroupView"), status=201)
def create_tags(call: Call) -> Any:
    from chalicelib.tags import service as tags

    return tags.create(call.principal.corp_id, call.body)


@endpoint(bp, "PATCH", f"{API_PREFIX}/tags/{{tag_id}}", summary="Rename a tag", body=Lazy(f"{TAGS}:TagRename"),
          response=Lazy("chalicelib.tags.items:TagItem"))
def rename_tag(call: Call) -> Any:
    from chalicelib.tags import service as tags

    return tags.rename(call.principal.corp_id, call.params["tag_id"], call.body)


@endpoint(bp, "DELETE", f"{API_PREFIX}/tags/{{tag_id}}", summary="Delete a tag", status=204)
def delete_tag(call: Call) -> None:
    from chalicelib.tags import service as tags

    tags.delete(call.principal.corp_id, call.params["tag_id"])


@endpoint(bp, "POST", f"{API_PREFIX}/tags/sync", summary="Re-read the tag library from WeCom now",
          response=Lazy(f"{TAGS}:SyncResult"))
def sync_tags(call: Call) -> Any:
    from chalicelib.tags import service as tags

    return tags.SyncResult(**tags.sync_library(call.principal.corp_id))


# -- tagging customers --------------------------------------------------------------------------------------
@endpoint(bp, "POST", f"{API_PREFIX}/customers/tags", summary="Tag customers (one or up to 100 relations)",
          body=Lazy(f"{TAGS}:BulkTagChange"), response=Lazy(f"{TAGS}:TagChangeResults"))
def tag_customers(call: Call) -> Any:
    from chalicelib.tags import service as tags

    return tags.TagChangeResults(results=tags.change_many(call.principal.corp_id, call.body))


@endpoint(bp, "POST", f"{API_PREFIX}/customers/{{customer_id}}/tags",
          summary="Tag / untag one customer's relation with a staff member", body=Lazy(f"{TAGS}:RelationTagChange"),
          response=Lazy(f"{TAGS}:TagChangeResult"))
def tag_customer(call: Call) -> Any:
    from pydantic import ValidationError

    from chalicelib.api.core import HttpError
    from chalicelib.customers import service as customers
    from chalicelib.tags import service as tags

    try:
        change = tags.CustomerTagChange(customer_id=call.params["customer_id"], **call.body.model_dump())
    except ValidationError as exc:
        raise HttpError(400, "validation_error", "the request body is invalid", validation_details(exc)) from exc
    result = tags.change_customer_tags(call.principal.corp_id, change)
    if result.status == "no_relation":
        # Looked up only on this path: a customer we do not know at all is 404, not a missing relation.
        customers.require_known(call.principal.corp_id, change.customer_id)
        raise HttpError(409, "no_relation", "this customer is not (or no longer) a contact of that staff member")
    return result
