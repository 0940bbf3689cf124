"""/api/v1/broadcasts and /api/v1/broadcast-policy: mass messages (群发) to a segment's customers,
to groups, or as a Moments post; now or at a time; cancellable until sent.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error

bp = Blueprint(__name__)

SVC = "chalicelib.broadcasts.service"

register_error(f"{SVC}:BroadcastNotFound", 404, "not_found")
register_error(f"{SVC}:BroadcastFinished", 409, "broadcast_finished")
register_error(f"{SVC}:InvalidBroadcast", 400, "validation_error")
register_error(f"{SVC}:UnknownStaff", 400, "unknown_staff")
register_error(f"{SVC}:UnknownGroups", 400, "unknown_groups")

BROADCASTS = f"{API_PREFIX}/broadcasts"
VIEW = Lazy(f"{SVC}:BroadcastView")
POLICY = Lazy("chalicelib.broadcasts.items:Policy")


@endpoint(bp, "POST", BROADCASTS, summary="Create a broadcast: sent now, or at `send_at` (checked before anything "
                                          "is stored or queued)",
          body=Lazy(f"{SVC}:BroadcastCreate"), response=VIEW, status=201,
          errors=("chalicelib.segments.service:SegmentNotFound", "chalicelib.segments.service:InvalidFilter",
                  "chalicelib.tags.service:UnknownTags", "chalicelib.group_codes.service:GroupCodeNotFound",
                  f"{SVC}:InvalidBroadcast", f"{SVC}:UnknownStaff", f"{SVC}:UnknownGroups"))
def create_broadcast(call: Call) -> Any:
    from chalicelib.broadcasts import service as broadcasts

    return broadcasts.BroadcastView.of(broadcasts.create(call.principal.corp_id, call.body))


@endpoint(bp, "GET", BROADCASTS, summary="List broadcasts, newest first (optionally by status)",
          query=Lazy(f"{SVC}:BroadcastQuery"), response=Lazy(f"{SVC}:BroadcastView", page=True))
def list_broadcasts(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts.service import BroadcastView

    q = call.query
    found, cursor = bitems.list_broadcasts(call.principal.corp_id, status=q.status, limit=q.limit, cursor=q.cursor)
    return Page[BroadcastView](items=[BroadcastView.of(b) for b in found], next_cursor=cursor)


@endpoint(bp, "GET", f"{BROADCASTS}/{{broadcast_id}}", summary="One broadcast: status, counts, progress",
          response=VIEW)
def get_broadcast(call: Call) -> Any:
    from chalicelib.broadcasts import service as broadcasts

    return broadcasts.BroadcastView.of(broadcasts.get(call.principal.corp_id, call.params["broadcast_id"]))


@endpoint(bp, "GET", f"{BROADCASTS}/{{broadcast_id}}/recipients",
          summary="The broadcast's recipients with their sender and status, page by page (statuses: tracking)",
          query=PageQuery, response=Lazy(f"{SVC}:RecipientRow", page=True))
def list_recipients(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.broadcasts import service as broadcasts
    from chalicelib.broadcasts import tracking

    b = broadcasts.get(call.principal.corp_id, call.params["broadcast_id"])
    rows, cursor = tracking.recipients_page(call.principal.corp_id, b.broadcast_id, limit=call.query.limit,
                                            cursor=call.query.cursor)
    return Page[broadcasts.RecipientRow](items=[broadcasts.RecipientRow(**r) for r in rows], next_cursor=cursor)


@endpoint(bp, "POST", f"{BROADCASTS}/{{broadcast_id}}/cancel",
          summary="Cancel a broadcast: what is not sent yet is not sent; tasks staff have not confirmed are recalled",
          response=VIEW)
def cancel_broadcast(call: Call) -> Any:
    from chalicelib.broadcasts import service as broadcasts

    return broadcasts.BroadcastView.of(broadcasts.cancel(call.principal.corp_id, call.params["broadcast_id"]))


@endpoint(bp, "GET", f"{API_PREFIX}/broadcast-policy", summary="The corp's broadcast policy (per-customer daily cap)",
          response=POLICY)
def get_policy(call: Call) -> Any:
    from chalicelib.broadcasts import service as broadcasts

    return broadcasts.get_policy(call.principal.corp_id)


@endpoint(bp, "PUT", f"{API_PREFIX}/broadcast-policy", summary="Set the corp's broadcast policy (applies to "
                                                                 "broadcasts created from now on)",
          body=Lazy(f"{SVC}:PolicyUpdate"), response=POLICY)
def put_policy(call: Call) -> Any:
    from chalicelib.broadcasts import service as broadcasts

    return broadcasts.put_policy(call.principal.corp_id, call.body)
