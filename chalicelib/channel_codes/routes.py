"""/api/v1/channel-codes: create, list, read, change and delete channel codes (渠道活码).

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error, validation_details

bp = Blueprint(__name__)

CC = "chalicelib.channel_codes.service"

register_error(f"{CC}:InvalidChannelCode", 400, "invalid_channel_code", lambda e: e.details)
register_error(f"{CC}:ChannelCodeNotFound", 404, "not_found")
register_error(f"{CC}:InvalidUpdate", 400, "validation_error", lambda e: validation_details(e.error))
register_error("chalicelib.platform.errors:StateTaken", 409, "state_taken")
register_error("chalicelib.channel_codes.items:VersionConflict", 409, "edit_conflict")

CODES = f"{API_PREFIX}/channel-codes"
CODE_VIEW = Lazy(f"{CC}:ChannelCodeView")


# -- channel codes ----------------------------------------------------------------------------------
@endpoint(bp, "POST", CODES, summary="Create a channel code (creates WeCom's contact way)",
          body=Lazy(f"{CC}:ChannelCodeCreate"), response=CODE_VIEW, status=201)
def create_channel_code(call: Call) -> Any:
    from chalicelib.channel_codes import service as channel_codes

    return channel_codes.ChannelCodeView.of(channel_codes.create(call.principal.corp_id, call.body))


@endpoint(bp, "GET", CODES, summary="List channel codes", query=PageQuery,
          response=Lazy(f"{CC}:ChannelCodeView", page=True))
def list_channel_codes(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.channel_codes import items as code_items
    from chalicelib.channel_codes.service import ChannelCodeView

    items, cursor = code_items.list_codes(call.principal.corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[ChannelCodeView](items=[ChannelCodeView.of(i) for i in items], next_cursor=cursor)


@endpoint(bp, "GET", f"{CODES}/{{state}}", summary="One channel code", response=CODE_VIEW)
def get_channel_code(call: Call) -> Any:
    from chalicelib.channel_codes import service as channel_codes

    return channel_codes.ChannelCodeView.of(channel_codes.get(call.principal.corp_id, call.params["state"]))


@endpoint(bp, "PATCH", f"{CODES}/{{state}}", summary="Change a channel code (WeCom is updated only if routing changes)",
          body=Lazy(f"{CC}:ChannelCodeUpdate"), response=CODE_VIEW)
def update_channel_code(call: Call) -> Any:
    from chalicelib.channel_codes import service as channel_codes

    return channel_codes.ChannelCodeView.of(
        channel_codes.update(call.principal.corp_id, call.params["state"], call.body))


@endpoint(bp, "DELETE", f"{CODES}/{{state}}", summary="Delete a channel code (and its WeCom contact way)",
          status=204)
def delete_channel_code(call: Call) -> None:
    from chalicelib.channel_codes import service as channel_codes

    channel_codes.delete(call.principal.corp_id, call.params["state"])
