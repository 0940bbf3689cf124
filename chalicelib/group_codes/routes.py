"""/api/v1/group-codes: group live codes (群活码): create, list, read, change, delete, status, and
their group welcome templates. Models and logic are named lazily and imported inside the views."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error, validation_details

bp = Blueprint(__name__)

GC = "chalicelib.group_codes.service"

register_error(f"{GC}:InvalidGroupCode", 400, "invalid_group_code", lambda e: e.details)
register_error(f"{GC}:GroupCodeNotFound", 404, "not_found")
register_error(f"{GC}:InvalidUpdate", 400, "validation_error", lambda e: validation_details(e.error))
register_error("chalicelib.platform.errors:StateTaken", 409, "state_taken")
register_error("chalicelib.group_codes.items:EditConflict", 409, "edit_conflict")

CODES = f"{API_PREFIX}/group-codes"
CODE = f"{CODES}/{{code_id}}"
CODE_VIEW = Lazy(f"{GC}:GroupCodeView")


@endpoint(bp, "POST", CODES, summary="Create a group code (creates WeCom's join way)",
          body=Lazy(f"{GC}:GroupCodeCreate"), response=CODE_VIEW, status=201)
def create_group_code(call: Call) -> Any:
    from chalicelib.group_codes import service

    return service.GroupCodeView.of(service.create(call.principal.corp_id, call.body))


@endpoint(bp, "GET", CODES, summary="List group codes", query=PageQuery,
          response=Lazy(f"{GC}:GroupCodeView", page=True))
def list_group_codes(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.group_codes import items
    from chalicelib.group_codes.service import GroupCodeView

    codes, cursor = items.list_codes(call.principal.corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[GroupCodeView](items=[GroupCodeView.of(c) for c in codes], next_cursor=cursor)


@endpoint(bp, "GET", CODE, summary="One group code", response=CODE_VIEW)
def get_group_code(call: Call) -> Any:
    from chalicelib.group_codes import service

    return service.GroupCodeView.of(service.get(call.principal.corp_id, call.params["code_id"]))


@endpoint(bp, "PATCH", CODE, summary="Change a group code (WeCom is updated only if its list or settings change)",
          body=Lazy(f"{GC}:GroupCodeUpdate"), response=CODE_VIEW)
def update_group_code(call: Call) -> Any:
    from chalicelib.group_codes import service

    return service.GroupCodeView.of(service.update(call.principal.corp_id, call.params["code_id"], call.body))


@endpoint(bp, "DELETE", CODE, summary="Delete a group code (and its WeCom join way and welcome template)",
          status=204)
def delete_group_code(call: Call) -> None:
    from chalicelib.group_codes import service

    service.delete(call.principal.corp_id, call.params["code_id"])


@endpoint(bp, "GET", f"{CODE}/status", summary="Listed groups with counts, pool, open seats, status, alerts, welcome",
          response=Lazy(f"{GC}:GroupCodeStatus"))
def group_code_status(call: Call) -> Any:
    from chalicelib.group_codes import service

    return service.status(call.principal.corp_id, call.params["code_id"])


@endpoint(bp, "PUT", f"{CODE}/welcome", summary="Set the code's group welcome (WeCom template add or edit)",
          body=Lazy(f"{GC}:GroupWelcomeIn"), response=CODE_VIEW)
def set_group_code_welcome(call: Call) -> Any:
    from chalicelib.group_codes import service

    return service.GroupCodeView.of(service.set_welcome(call.principal.corp_id, call.params["code_id"], call.body))


@endpoint(bp, "GET", f"{CODE}/welcome", summary="The code's group welcome as WeCom holds it",
          response=Lazy("chalicelib.group_codes.items:GroupWelcome"))
def get_group_code_welcome(call: Call) -> Any:
    from chalicelib.group_codes import service

    return service.get_welcome(call.principal.corp_id, call.params["code_id"])


@endpoint(bp, "DELETE", f"{CODE}/welcome", summary="Delete the code's group welcome template", status=204)
def delete_group_code_welcome(call: Call) -> None:
    from chalicelib.group_codes import service

    service.delete_welcome(call.principal.corp_id, call.params["code_id"])
