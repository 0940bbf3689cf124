"""Tag API conflicts: a name taken in its group is 409 tag_exists (checked on the mirror before
WeCom is called, and WeCom's own 40071 mapped the same); an unknown customer is 404."""

from __future__ import annotations

from tests.functional.test_acquisition import _code
from tests.helpers import CORP_ID


def _names(world) -> list[tuple[str, str]]:
    _, library = world.call("GET", "/api/v1/tags")
    return sorted((g["group_name"], t["name"]) for g in library["groups"] for t in g["tags"])


def test_a_taken_tag_name_is_409_tag_exists_and_changes_nothing(world):
    vip, regular = world.tag("level", "vip", "regular")
    _, library = world.call("GET", "/api/v1/tags")
    group_id = library["groups"][0]["group_id"]
    before, calls = _names(world), len(world.sb.requests())
    for method, path, body in [
        ("POST", "/api/v1/tags", {"group_name": "level", "names": ["gold", "vip"]}),  # by group name
        ("POST", "/api/v1/tags", {"group_id": group_id, "names": ["vip"]}),
        ("PATCH", f"/api/v1/tags/{regular}", {"name": "vip"}),
    ]:
        status, answer = world.call(method, path, body)
        assert (status, answer["error"]["code"]) == (409, "tag_exists"), (method, body, answer)
        assert "vip" in answer["error"]["message"] and answer["error"]["details"]["names"] == ["vip"]
    assert _names(world) == before
    assert len(world.sb.requests()) == calls  # refused before WeCom was called

    # The same name in another group, and a tag renamed to its own name, are fine.
    world.tag("source", "vip")
    assert world.call("PATCH", f"/api/v1/tags/{vip}", {"name": "vip"})[0] == 200


def test_wecoms_40071_is_409_tag_exists_when_the_mirror_did_not_know(world):
    """A tag added in WeCom's console whose callback has not arrived yet: WeCom refuses with 40071."""
    from chalicelib.corps import registry as corps
    from chalicelib.wecom.models import AddCorpTagRequest

    regular, = world.tag("level", "regular")
    corps.wecom_client(CORP_ID).add_corp_tag(AddCorpTagRequest(group_name="level", tag=[{"name": "vip"}]))
    before = _names(world)
    status, answer = world.call("POST", "/api/v1/tags", {"group_name": "level", "names": ["vip"]})
    assert (status, answer["error"]["code"]) == (409, "tag_exists"), answer
    status, answer = world.call("PATCH", f"/api/v1/tags/{regular}", {"name": "vip"})
    assert (status, answer["error"]["code"]) == (409, "tag_exists"), answer
    assert _names(world) == before


def test_tagging_an_unknown_customer_is_404_a_known_one_without_relation_409(world):
    vip, = world.tag("level", "vip")
    _, code = _code(world)
    known = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="A")["external_userid"]
    world.pump()
    status, answer = world.call("POST", "/api/v1/customers/wmNobody/tags", {"staff_id": "alice", "add": [vip]})
    assert (status, answer["error"]["code"]) == (404, "not_found"), answer
    status, answer = world.call("POST", f"/api/v1/customers/{known}/tags", {"staff_id": "bob", "add": [vip]})
    assert (status, answer["error"]["code"]) == (409, "no_relation"), answer
    assert world.sb.requests("externalcontact/mark_tag") == []
