"""Contact stats: every field is counted on every dimension the stats read, so totals do not
depend on `by`; and net is the change in active relations (a handover moves one, adds none)."""

from __future__ import annotations

from tests.functional.test_acquisition import _code, _today
from tests.helpers import CORP_ID

FIELDS = ("adds", "half_adds", "lost", "removed", "transferred", "net", "welcomes_sent", "welcomes_missed",
          "welcomes_already_sent", "tags_marked")


def _stats(world, by: str) -> dict:
    status, stats = world.call("GET", f"/api/v1/stats/contacts?from={_today()}&to={_today()}&by={by}")
    assert status == 200, stats
    return stats


def _active(world) -> int:
    _, page = world.call("GET", "/api/v1/customers?status=active&limit=200")
    assert page["next_cursor"] is None
    return len(page["items"])


def _transfer(world, customer: str, handover: str, takeover: str) -> None:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom.models import TransferCustomerRequest

    moved = corps.wecom_client(CORP_ID).transfer_customer(TransferCustomerRequest(
        handover_userid=handover, takeover_userid=takeover, external_userid=[customer]))
    assert moved.customer[0].errcode == 0
    world.sb.simulator.complete_transfers(CORP_ID, force=True)


def test_totals_do_not_depend_on_the_dimension(world):
    tag_ids = world.tag("source", "poster")
    _, tagged = _code(world, name="tagged", staff_ids=["alice"], tag_ids=tag_ids)
    _, plain = _code(world, name="plain", staff_ids=["bob"])
    customers = [world.sb.simulator.scan_contact_way(CORP_ID, tagged["config_id"], name=f"T{i}")["external_userid"]
                 for i in range(3)]
    other = world.sb.simulator.scan_contact_way(CORP_ID, plain["config_id"], name="P")["external_userid"]
    world.sb.simulator.add_staff(CORP_ID, "carol", name="No Code")  # no channel code: the "-" channel
    world.sb.simulator.add_staff(CORP_ID, "carol", name="Pending", half=True)
    world.sb.simulator.customer_deletes_staff(CORP_ID, customers[0], "alice")
    world.sb.simulator.staff_deletes_customer(CORP_ID, "bob", other)
    world.pump()
    _transfer(world, customers[1], "alice", "bob")
    world.pump()

    totals = {by: _stats(world, by)["total"] for by in ("day", "channel", "staff")}
    assert totals["day"]["tags_marked"] == 3
    for by in ("channel", "staff"):
        assert {f: totals[by][f] for f in FIELDS} == {f: totals["day"][f] for f in FIELDS}, by
    for by in ("day", "channel", "staff"):  # and the rows add up to the total
        rows = _stats(world, by)["rows"]
        assert {f: sum(r[f] for r in rows) for f in FIELDS} == {f: totals[by][f] for f in FIELDS}, by


def test_a_handover_moves_a_relation_and_adds_none(world):
    """alice's customer handed over to bob: del_external_contact (DELETE_BY_TRANSFER) for alice and
    add_external_contact for bob. Still one active relation: net counts the move out as well."""
    _, code = _code(world, staff_ids=["alice"])
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Handed Over")["external_userid"]
    world.pump()
    assert _active(world) == 1 and _stats(world, "day")["total"]["net"] == 1

    _transfer(world, customer, "alice", "bob")
    world.pump()
    total = _stats(world, "day")["total"]
    assert (total["adds"], total["transferred"], total["lost"], total["removed"]) == (2, 1, 0, 0)
    assert _active(world) == 1
    assert total["net"] == _active(world)  # counted from an empty corp: net is the active relations
    staff = {r["key"]: r for r in _stats(world, "staff")["rows"]}
    assert (staff["alice"]["net"], staff["bob"]["net"]) == (0, 1)  # alice's one went to bob
