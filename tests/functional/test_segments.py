"""Segments (issue #11 part 1): saved selections of customers by tag expression, owner staff,
channel code, date added and status; previews; evaluation as a resumable stream of pages."""

from __future__ import annotations

import pytest

from tests.conftest import both_aws_backends
from tests.functional.test_acquisition import _code
from tests.helpers import CORP_ID

aws_backend = both_aws_backends  # the store under these tests: moto and bench/fake_aws.py

SEGMENTS = "/api/v1/segments"


def _customer(world, name: str, *, tags: list[str] = (), state: str, staff: str = "alice") -> str:
    status, code = _code(world, tag_ids=list(tags), state=state, staff_ids=[staff])
    assert status == 201, code
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=name)["external_userid"]
    world.pump()
    return customer


def _streamed(segment_id: str, **kwargs) -> list[tuple[str, str]]:
    from chalicelib.segments import service as segments

    return [(m.customer_id, m.staff_id) for page in segments.members(CORP_ID, segment_id, **kwargs)
            for m in page.members]


def _save(world, filter_: dict, name: str = "seg") -> dict:
    status, body = world.call("POST", SEGMENTS, {"name": name, "filter": filter_})
    assert status == 201, body
    return body


@pytest.fixture
def shop(world):
    """Five customers: tags masks / alcohol / vip, two channel codes' owners, one lost."""
    masks, alcohol, vip = world.tag("wants", "masks", "alcohol", "vip")
    c = {
        "ann": _customer(world, "Ann", tags=[masks], state="poster-1"),
        "bea": _customer(world, "Bea", tags=[alcohol], state="poster-2"),
        "cid": _customer(world, "Cid", tags=[masks, alcohol], state="poster-3", staff="bob"),
        "dot": _customer(world, "Dot", tags=[masks, vip], state="poster-4", staff="bob"),
        "eve": _customer(world, "Eve", state="poster-5"),
    }
    world.sb.simulator.customer_deletes_staff(CORP_ID, c["eve"], "alice")
    world.pump()
    return world, c, {"masks": masks, "alcohol": alcohol, "vip": vip}


def _tag(t: str) -> dict:
    return {"tag": t}


def test_a_tag_expression_segment_reaches_exactly_the_customers_it_names_each_once(shop):
    world, c, t = shop
    expr = {"and": [{"or": [_tag(t["masks"]), _tag(t["alcohol"])]}, {"not": _tag(t["vip"])}]}
    seg = _save(world, {"tags": expr})
    got = _streamed(seg["segment_id"])
    assert sorted(got) == sorted([(c["ann"], "alice"), (c["bea"], "alice"), (c["cid"], "bob")])
    assert len(got) == len(set(got))


def test_nested_and_or_not(shop):
    world, c, t = shop
    # exactly one of masks / alcohol (xor), or vip
    xor = {"and": [{"or": [_tag(t["masks"]), _tag(t["alcohol"])]},
                   {"not": {"and": [_tag(t["masks"]), _tag(t["alcohol"])]}}]}
    seg = _save(world, {"tags": {"or": [xor, _tag(t["vip"])]}})
    assert {cu for cu, _ in _streamed(seg["segment_id"])} == {c["ann"], c["bea"], c["dot"]}
    seg = _save(world, {"tags": {"not": {"or": [_tag(t["masks"]), _tag(t["alcohol"])]}}})
    assert {cu for cu, _ in _streamed(seg["segment_id"])} == {c["eve"]}  # no tags at all matches a `not`


def test_owner_channel_and_status_filters(shop):
    world, c, t = shop
    by = {
        "owner": ({"staff_ids": ["bob"]}, {c["cid"], c["dot"]}),
        "owner+tag": ({"staff_ids": ["bob", "alice"], "tags": _tag(t["alcohol"])}, {c["bea"], c["cid"]}),
        "channel": ({"channels": ["poster-2", "poster-4"]}, {c["bea"], c["dot"]}),
        "no channel": ({"channels": ["-"]}, set()),
        "lost": ({"statuses": ["lost"]}, {c["eve"]}),
        "active": ({"statuses": ["active"], "channels": ["poster-1", "poster-5"]}, {c["ann"]}),
    }
    for name, (filter_, expected) in by.items():
        seg = _save(world, filter_, name)
        assert {cu for cu, _ in _streamed(seg["segment_id"])} == expected, name
        status, preview = world.call("POST", f"{SEGMENTS}/preview", {"filter": filter_})
        assert status == 200 and preview["count"] == len(expected), (name, preview)
        assert preview["index"] == ("staff" if "staff_ids" in filter_ else "corp")


def test_added_between_by_epoch_and_by_date(world):
    world.sb.clock.advance(-200)  # within the callback's allowed skew
    early = _customer(world, "Early", state="p-early")
    world.sb.clock.advance(200)
    late = _customer(world, "Late", state="p-late")
    from chalicelib.customers import items as customer_items

    early_at = customer_items.get_relation(CORP_ID, early, "alice").added_at
    late_at = customer_items.get_relation(CORP_ID, late, "alice").added_at
    assert late_at - early_at >= 150
    cases = [({"added_to": early_at + 50}, {early}), ({"added_from": early_at + 50}, {late}),
             ({"added_from": early_at, "added_to": late_at}, {early, late}),
             ({"added_from": "2000-01-01"}, {early, late}), ({"added_to": "2000-01-01"}, set())]
    for filter_, expected in cases:
        seg = _save(world, filter_)
        assert {cu for cu, _ in _streamed(seg["segment_id"])} == expected, filter_


def test_preview_counts_what_the_stream_yields_and_names_a_sample(shop):
    world, c, t = shop
    seg = _save(world, {"tags": {"or": [_tag(t["masks"]), _tag(t["alcohol"])]}})
    status, preview = world.call("POST", f"{SEGMENTS}/{seg['segment_id']}/preview", {"sample": 2})
    assert status == 200, preview
    assert preview["count"] == len(_streamed(seg["segment_id"])) == 4
    assert len(preview["sample"]) == 2
    names = {"Ann": c["ann"], "Bea": c["bea"], "Cid": c["cid"], "Dot": c["dot"]}
    assert all(names[row["customer_name"]] == row["customer_id"] for row in preview["sample"])
    assert all(row["staff_name"] in ("Alice", "Bob") for row in preview["sample"])
    status, unsaved = world.call("POST", f"{SEGMENTS}/preview", {"filter": {"tags": _tag(t["vip"])}})
    assert status == 200 and unsaved["count"] == 1 and unsaved["sample"][0]["customer_id"] == c["dot"]


def test_the_evaluator_reads_in_pages_and_resumes_from_any_page(shop):
    from chalicelib.segments import service as segments
    from chalicelib.store import get_table

    world, c, t = shop
    seg = _save(world, {"statuses": ["active", "lost"]})
    table = get_table()
    limits: list[int] = []
    original = table.client.query

    def counted(**kwargs):
        limits.append(kwargs["Limit"])
        return original(**kwargs)

    table.client.query = counted
    try:
        pages = list(segments.members(CORP_ID, seg["segment_id"], page_size=2))
    finally:
        del table.client.query
    assert limits and set(limits) == {2} and len(limits) >= 3  # 5 relations, 2 per read
    assert all(len(p.members) <= 2 for p in pages) and pages[-1].cursor is None
    everyone = [(m.customer_id, m.staff_id) for p in pages for m in p.members]
    assert sorted(cu for cu, _ in everyone) == sorted(c.values())
    resumed = [(m.customer_id, m.staff_id) for p in segments.members(CORP_ID, seg["segment_id"], page_size=2,
                                                                    cursor=pages[0].cursor) for m in p.members]
    assert [*[(m.customer_id, m.staff_id) for m in pages[0].members], *resumed] == everyone


def test_several_staff_partitions_resume_across_partitions(shop):
    from chalicelib.segments import service as segments

    world, c, t = shop
    seg = _save(world, {"staff_ids": ["bob", "alice"]})
    pages = list(segments.members(CORP_ID, seg["segment_id"], page_size=1))
    everyone = [m.customer_id for p in pages for m in p.members]
    assert sorted(everyone) == sorted(c.values())
    for i, page in enumerate(pages[:-1]):
        rest = [m.customer_id for p in segments.members(CORP_ID, seg["segment_id"], page_size=1,
                                                        cursor=page.cursor) for m in p.members]
        assert [m.customer_id for p in pages[:i + 1] for m in p.members] + rest == everyone


def test_crud_and_unknown_ids(shop):
    world, c, t = shop
    seg = _save(world, {"tags": _tag(t["masks"])}, "masks")
    sid = seg["segment_id"]
    assert world.call("GET", f"{SEGMENTS}/{sid}") == (200, seg)
    status, page = world.call("GET", SEGMENTS)
    assert status == 200 and [s["segment_id"] for s in page["items"]] == [sid]
    status, changed = world.call("PATCH", f"{SEGMENTS}/{sid}", {"name": "vip", "filter": {"tags": _tag(t["vip"])}})
    assert status == 200 and changed["name"] == "vip" and changed["version"] == 2, changed
    assert _streamed(sid) == [(c["dot"], "bob")]
    assert world.call("DELETE", f"{SEGMENTS}/{sid}")[0] == 204
    for method, path, body in (("GET", f"{SEGMENTS}/{sid}", None), ("DELETE", f"{SEGMENTS}/{sid}", None),
                               ("PATCH", f"{SEGMENTS}/{sid}", {"name": "x"}),
                               ("POST", f"{SEGMENTS}/{sid}/preview", {})):
        status, body = world.call(method, path, body)
        assert (status, body["error"]["code"]) == (404, "not_found"), (method, body)


def test_bad_filters_are_a_clear_400_and_store_nothing(shop):
    world, c, t = shop
    deep = _tag(t["masks"])
    for _ in range(5):
        deep = {"not": deep}
    bad = {
        "empty": ({}, "validation_error"),
        "contradiction": ({"tags": {"and": [_tag(t["masks"]), {"not": _tag(t["masks"])}]}}, "validation_error"),
        "nested contradiction": ({"tags": {"and": [{"or": [_tag(t["vip"]), _tag(t["masks"])]},
                                                   {"not": {"or": [_tag(t["masks"]), _tag(t["vip"])]}}]}},
                                 "validation_error"),
        "from after to": ({"added_from": 2000, "added_to": 1000}, "validation_error"),
        "dates reversed": ({"added_from": "2024-05-02", "added_to": "2024-05-01"}, "validation_error"),
        "too deep": ({"tags": deep}, "validation_error"),
        "two keys": ({"tags": {"tag": t["vip"], "not": _tag(t["vip"])}}, "validation_error"),
        "empty and": ({"tags": {"and": []}}, "validation_error"),
        "unknown field": ({"colour": "red"}, "validation_error"),
        "unknown tags": ({"tags": {"or": [_tag("nope-1"), _tag(t["vip"]), _tag("nope-2")]}}, "unknown_tags"),
    }
    for name, (filter_, code) in bad.items():
        for path, body in ((SEGMENTS, {"name": name, "filter": filter_}), (f"{SEGMENTS}/preview", {"filter": filter_})):
            status, answer = world.call("POST", path, body)
            assert (status, answer["error"]["code"]) == (400, code), (name, path, answer)
            if code == "unknown_tags":
                fields = [d["field"] for d in answer["error"]["details"]]
                assert fields == ["filter.tags.or.0.tag", "filter.tags.or.2.tag"], answer
    seg = _save(world, {"tags": _tag(t["vip"])})
    status, answer = world.call("PATCH", f"{SEGMENTS}/{seg['segment_id']}", {"filter": bad["contradiction"][0]})
    assert status == 400, answer
    status, page = world.call("GET", SEGMENTS)
    assert [s["filter"] for s in page["items"]] == [{"tags": _tag(t["vip"])}]  # nothing else stored or changed
