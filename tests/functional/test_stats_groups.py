"""/api/v1/stats/groups: joins by scene, quits, net, groups opened and over-threshold joins; totals
that do not depend on `by`, rows that add up to them, and bad ranges refused."""

from __future__ import annotations

import pytest

from tests.functional.test_acquisition import _today
from tests.helpers import CORP_ID

SUMMED = ("joins", "joins_scan", "joins_invite", "quits", "quits_removed", "net", "groups_opened",
          "groups_dismissed")


def _stats(world, by: str, day: str | None = None) -> dict:
    day = day or _today()
    status, stats = world.call("GET", f"/api/v1/stats/groups?from={day}&to={day}&by={by}")
    assert status == 200, stats
    return stats


def test_group_stats(world):
    sim = world.sb.simulator
    coded = sim.create_group(CORP_ID, "alice", "Store 1")["chat_id"]
    plain = sim.create_group(CORP_ID, "bob", "Store 2")["chat_id"]
    world.pump()
    # A group code on `coded` alone, threshold 2: alice + the first scan reach it, and with no other
    # group to list the next two scans land past it (over-threshold joins, counted by the code).
    status, code = world.call("POST", "/api/v1/group-codes", {"name": "Store 1", "pool": [coded], "threshold": 2})
    assert status == 201, code
    config_id = code["config_id"]
    scanned = []
    for i in range(3):  # each join handled as it arrives
        scanned.append(sim.join_group(CORP_ID, config_id, name=f"S{i}")["external_userid"])
        world.pump()
    sim.invite_to_group(CORP_ID, plain, "bob", external_userid="wmInvited")
    sim.invite_to_group(CORP_ID, coded, "alice", external_userid="wmLinked")
    sim.leave_group(CORP_ID, coded, scanned[0])
    sim.leave_group(CORP_ID, plain, "wmInvited", removed=True)
    world.pump()

    totals = {by: _stats(world, by)["total"] for by in ("day", "code", "group")}
    assert totals["day"] == totals["code"] == totals["group"]
    total = totals["day"]
    assert {f: total[f] for f in SUMMED} == {"joins": 5, "joins_scan": 3, "joins_invite": 2, "quits": 2,
                                             "quits_removed": 1, "net": 3, "groups_opened": 2,
                                             "groups_dismissed": 0}
    assert total["over_threshold_joins"] == 2
    for by in ("day", "group"):  # rows add up to the total
        rows = _stats(world, by)["rows"]
        assert {f: sum(r[f] for r in rows) for f in SUMMED} == {f: total[f] for f in SUMMED}, by
    (day,) = _stats(world, "day")["rows"]
    assert (day["key"], day["over_threshold_joins"]) == (_today(), 2)
    by_group = {r["key"]: r for r in _stats(world, "group")["rows"]}
    assert (by_group[coded]["joins"], by_group[coded]["quits"], by_group[plain]["quits_removed"]) == (4, 1, 1)
    (row,) = _stats(world, "code")["rows"]  # the scans into the groups the code listed
    assert (row["key"], row["joins_scan"], row["joins_invite"], row["over_threshold_joins"]) == \
        (code["code_id"], 3, 0, 2)


def test_days_are_the_corps_days(world):
    """Kiritimati (UTC+14) and Pago Pago (UTC-11) never share a date: the group counts on the corp's."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from chalicelib.corps import items as corp_items
    from chalicelib.platform import caches

    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        corp_items.update_corp(CORP_ID, time_zone=zone, updated_at=0)
        caches.clear_all()
        world.sb.simulator.create_group(CORP_ID, "alice", zone)
        world.pump()
        day = datetime.now(ZoneInfo(zone)).date().isoformat()
        assert _stats(world, "day", day)["total"]["groups_opened"] == 1, zone


@pytest.mark.parametrize("query", ["from=2026-02-01&to=2026-01-01", "from=2024-01-01&to=2026-01-01",
                                   "from=2026-01-01&to=2026-01-02&by=staff", "from=yesterday&to=2026-01-01",
                                   "to=2026-01-01"])
def test_bad_ranges_are_400(world, query):
    status, body = world.call("GET", f"/api/v1/stats/groups?{query}")
    assert status == 400, body
