"""/api/v1/stats: contact stats (adds, lost, removed, net) by day, channel code and staff member;
group stats (joins, quits, groups opened) by day, group code and group.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, endpoint

bp = Blueprint(__name__)


# -- stats ------------------------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/stats/contacts", summary="Adds, lost, removed, net by day / channel / staff",
          query=Lazy("chalicelib.stats.service:ContactStatsQuery"),
          response=Lazy("chalicelib.stats.service:ContactStats"))
def contact_stats(call: Call) -> Any:
    from chalicelib.stats import service as stats

    return stats.contact_stats(call.principal.corp_id, call.query)


@endpoint(bp, "GET", f"{API_PREFIX}/stats/groups",
          summary="Group joins (scan / invite), quits, net, groups opened, over-threshold joins by day / code / group",
          query=Lazy("chalicelib.stats.service:GroupStatsQuery"), response=Lazy("chalicelib.stats.service:GroupStats"))
def group_stats(call: Call) -> Any:
    from chalicelib.stats import service as stats

    return stats.group_stats(call.principal.corp_id, call.query)
