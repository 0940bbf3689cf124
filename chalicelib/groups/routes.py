"""/api/v1/groups: customer groups with exact member counts, and their members.

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
