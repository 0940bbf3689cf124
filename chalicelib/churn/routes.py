"""/api/v1/churn: the relations customers or staff members ended (not by a handover), filtered;
/api/v1/churn-alerts: the corp's churn-alert setting (off by default)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, endpoint, register_error

bp = Blueprint(__name__)

SVC = "chalicelib.churn.service"

register_error(f"{SVC}:InvalidChurnRequest", 400, "validation_error")
register_error(f"{SVC}:NoAgent", 400, "agent_required")
SETTINGS = Lazy(f"{SVC}:AlertSettingsView")


@endpoint(bp, "GET", f"{API_PREFIX}/churn", summary="Ended relations, newest first: who left whom, from which "
          "channel, with which tags, how long after adding, whether welcomed", query=Lazy(f"{SVC}:ChurnQuery"),
          response=Lazy(f"{SVC}:ChurnView", page=True))
def list_churn(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.churn import service

    found, cursor = service.search(call.principal.corp_id, call.query)
    return Page[service.ChurnView](items=found, next_cursor=cursor)


@endpoint(bp, "GET", f"{API_PREFIX}/churn-alerts", summary="The corp's churn-alert setting", response=SETTINGS)
def get_churn_alerts(call: Call) -> Any:
    from chalicelib.churn import service

    return service.view_settings(call.principal.corp_id)


@endpoint(bp, "PUT", f"{API_PREFIX}/churn-alerts", summary="Set churn alerts: per event or digest, to the "
          "member and/or managers", body=Lazy(f"{SVC}:AlertSettingsBody"), response=SETTINGS,
          errors=("chalicelib.handovers.service:UnknownStaff",))
def put_churn_alerts(call: Call) -> Any:
    from chalicelib.churn import service

    return service.put_settings(call.principal.corp_id, call.body)
