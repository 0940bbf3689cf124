"""/api/v1/handovers: start a handover (in service or resigned), list and follow them per customer
and group; the departed members' customers awaiting assignment, listed and handed over in one call."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, WECOM, Call, Lazy, PageQuery, endpoint, register_error

bp = Blueprint(__name__)

SVC = "chalicelib.handovers.service"

register_error(f"{SVC}:InvalidHandover", 400, "validation_error")
register_error(f"{SVC}:UnknownStaff", 400, "unknown_staff")
register_error(f"{SVC}:StaffResigned", 400, "staff_resigned")
register_error(f"{SVC}:StaffInService", 400, "staff_in_service")
register_error(f"{SVC}:UnknownCustomers", 400, "unknown_customers")
register_error(f"{SVC}:UnknownSegment", 400, "unknown_segment")
register_error(f"{SVC}:NothingToHandOver", 400, "nothing_to_hand_over")
register_error(f"{SVC}:HandoverNotFound", 404, "not_found")

HANDOVERS = f"{API_PREFIX}/handovers"
VIEW = Lazy(f"{SVC}:HandoverView")
REFUSALS = (f"{SVC}:InvalidHandover", f"{SVC}:UnknownStaff", f"{SVC}:NothingToHandOver", WECOM)


@endpoint(bp, "POST", HANDOVERS, summary="Hand a member's customers (and groups) over to one or more takeovers",
          body=Lazy(f"{SVC}:HandoverCreate"), response=VIEW, status=202,
          errors=(*REFUSALS, f"{SVC}:StaffResigned", f"{SVC}:StaffInService", f"{SVC}:UnknownCustomers",
                  f"{SVC}:UnknownSegment"))
def start_handover(call: Call) -> Any:
    from chalicelib.handovers import service

    corp_id = call.principal.corp_id
    return service.HandoverView.of(corp_id, service.start(corp_id, call.body))


@endpoint(bp, "GET", HANDOVERS, summary="List handovers, newest first (without counts)", query=PageQuery,
          response=Lazy(f"{SVC}:HandoverView", page=True))
def list_handovers(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.handovers import items
    from chalicelib.handovers.service import HandoverView

    corp_id = call.principal.corp_id
    found, cursor = items.list_handovers(corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[HandoverView](items=[HandoverView.of(corp_id, h, counted=False) for h in found], next_cursor=cursor)


@endpoint(bp, "GET", f"{HANDOVERS}/unassigned", summary="Departed members' customers awaiting assignment (WeCom)",
          query=PageQuery, response=Lazy(f"{SVC}:UnassignedView", page=True), errors=(WECOM,))
def list_unassigned(call: Call) -> Any:
    from chalicelib.handovers import service

    return service.unassigned_page(call.principal.corp_id, limit=call.query.limit, cursor=call.query.cursor)


@endpoint(bp, "POST", f"{HANDOVERS}/unassigned",
          summary="Hand every departed member's customers awaiting assignment over (one handover per member)",
          body=Lazy(f"{SVC}:UnassignedHandover"), response=Lazy(f"{SVC}:HandoverList"), status=202, errors=REFUSALS)
def start_unassigned(call: Call) -> Any:
    from chalicelib.handovers import service

    corp_id = call.principal.corp_id
    return service.HandoverList(handovers=[service.HandoverView.of(corp_id, h)
                                           for h in service.start_unassigned(corp_id, call.body)])


@endpoint(bp, "GET", f"{HANDOVERS}/{{handover_id}}", summary="A handover with its customers and groups by status",
          response=VIEW)
def get_handover(call: Call) -> Any:
    from chalicelib.handovers import service

    corp_id = call.principal.corp_id
    return service.HandoverView.of(corp_id, service.get(corp_id, call.params["handover_id"]))


def _entries(call: Call, kind: str) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.handovers import items, service

    corp_id, handover_id = call.principal.corp_id, call.params["handover_id"]
    service.get(corp_id, handover_id)
    found, cursor = items.entries_page(corp_id, handover_id, kind, status=call.query.status,  # type: ignore[arg-type]
                                       limit=call.query.limit, cursor=call.query.cursor)
    return Page[service.EntryView](items=[service.EntryView.of(e) for e in found], next_cursor=cursor)


@endpoint(bp, "GET", f"{HANDOVERS}/{{handover_id}}/customers", summary="A handover's customers, one status each",
          query=Lazy(f"{SVC}:EntryQuery"), response=Lazy(f"{SVC}:EntryView", page=True),
          errors=(f"{SVC}:HandoverNotFound",))
def handover_customers(call: Call) -> Any:
    return _entries(call, "customer")


@endpoint(bp, "GET", f"{HANDOVERS}/{{handover_id}}/groups", summary="A handover's groups, one status each",
          query=Lazy(f"{SVC}:EntryQuery"), response=Lazy(f"{SVC}:EntryView", page=True),
          errors=(f"{SVC}:HandoverNotFound",))
def handover_groups(call: Call) -> Any:
    return _entries(call, "group")
