"""/api/v1/groups: the list with its filters and pages, one group's detail, and bad input."""

from __future__ import annotations

import pytest

from tests.helpers import CORP_ID


@pytest.fixture
def groups(world):
    """Three groups through the sandbox: two of alice's (one with 3 customers), one of bob's."""
    sim = world.sb.simulator
    big = sim.create_group(CORP_ID, "alice", "Store Beijing", members=["carol"])["chat_id"]
    small = sim.create_group(CORP_ID, "alice", "Store Shanghai")["chat_id"]
    other = sim.create_group(CORP_ID, "bob", "VIP club")["chat_id"]
    for name in ("wmA", "wmB", "wmC"):
        sim.invite_to_group(CORP_ID, big, "carol", external_userid=name)
    sim.invite_to_group(CORP_ID, small, "alice", external_userid="wmD")
    sim.invite_to_group(CORP_ID, other, "bob", external_userid="wmE")
    world.pump()
    return {"big": big, "small": small, "other": other}


def _ids(world, query: str = "") -> list[str]:
    status, body = world.call("GET", f"/api/v1/groups{query}")
    assert status == 200, body
    return sorted(g["group_id"] for g in body["items"])


def test_list_filters(world, groups):
    big, small, other = groups["big"], groups["small"], groups["other"]
    assert _ids(world) == sorted(groups.values())
    assert _ids(world, "?owner=alice") == sorted([big, small])
    assert _ids(world, "?min_members=3") == [big]  # alice, carol, 3 customers
    assert _ids(world, "?max_members=2") == sorted([small, other])
    assert _ids(world, "?min_members=2&max_members=2&owner=bob") == [other]
    assert _ids(world, "?name=Store") == sorted([big, small])
    assert _ids(world, "?status=dismissed") == []
    world.sb.simulator.dismiss_group(CORP_ID, other)
    world.pump()
    assert _ids(world, "?status=dismissed") == [other]


def test_list_by_group_code(world, groups):
    """A group code's pool, as the operator sets and changes it, is what the filter finds."""
    status, code = world.call("POST", "/api/v1/group-codes", {"name": "Store 7", "pool": [groups["small"]],
                                                              "threshold": 150})
    assert status == 201, code
    gc = code["code_id"]
    assert _ids(world, f"?group_code={gc}") == [groups["small"]]
    status, body = world.call("GET", f"/api/v1/groups/{groups['small']}")
    assert body["codes"] == [gc]
    status, changed = world.call("PATCH", f"/api/v1/group-codes/{gc}", {"pool": [groups["big"]]})
    assert status == 200, changed
    assert _ids(world, f"?group_code={gc}") == [groups["big"]]
    assert world.call("GET", f"/api/v1/groups/{groups['small']}")[1]["codes"] == []


def test_list_pages(world, groups):
    seen, cursor = [], None
    for _ in range(5):
        status, body = world.call("GET", "/api/v1/groups?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        seen += [g["group_id"] for g in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(groups.values())
    assert world.call("GET", "/api/v1/groups?cursor=bogus")[0] == 400


def test_detail(world, groups):
    status, body = world.call("GET", f"/api/v1/groups/{groups['big']}")
    assert status == 200, body
    assert (body["name"], body["owner"], body["status"], body["member_count"]) == ("Store Beijing", "alice",
                                                                                  "active", 5)
    assert body["member_version"] == world.sb.world.corp(CORP_ID).chats[groups["big"]].member_version
    members = {m["member_id"]: m for m in body["members"]}
    assert set(members) == {"alice", "carol", "wmA", "wmB", "wmC"}
    assert members["wmB"]["invitor"] == "carol" and members["wmB"]["member_type"] == 2
    assert members["wmB"]["join_time"] and members["wmB"]["join_scene"] == 2


@pytest.mark.parametrize("query", ["?min_members=5&max_members=2", "?min_members=-1", "?max_members=501",
                                   "?status=open", "?limit=0", "?color=red", "?name="])
def test_bad_list_queries_are_400(world, query):
    status, body = world.call("GET", f"/api/v1/groups{query}")
    assert status == 400, body


def test_unknown_group_is_404_with_its_id(world):
    status, body = world.call("GET", "/api/v1/groups/wrNoSuchGroup")
    assert status == 404
    assert "wrNoSuchGroup" in body["error"]["message"]


def test_another_corps_group_is_not_found(world, groups):
    from tests.helpers import register

    other_key = register(world.client, corp_id="wwOther")["api_key"]
    resp = world.client.http.get(f"/api/v1/groups/{groups['big']}", headers={"Authorization": f"Bearer {other_key}"})
    assert resp.status_code == 404
    resp = world.client.http.get("/api/v1/groups", headers={"Authorization": f"Bearer {other_key}"})
    assert resp.status_code == 200 and '"items":[]' in resp.body.decode().replace(" ", "")
