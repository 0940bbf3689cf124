"""Edge cases found in review: each one a way the store could be left wrong or answer a 500."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.store import counters
from tests.conftest import both_aws_backends
from tests.helpers import CORP_ID

aws_backend = both_aws_backends  # every test here runs on moto and on bench/fake_aws.py


def test_lost_relation_stays_lost_across_two_syncs(aws):
    """WeCom keeps listing a customer who deleted the staff member; the sync must keep the end
    (and its time), or the second sync would revive the relation."""
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    rel = cs.RelationItem(customer_id="wm1", staff_id="alice", status="active", added_at=1000, last_event_at=1000)
    table.transact([cs.relation_added("corpA", rel).op])
    table.transact([cs.relation_ended("corpA", "wm1", "alice", status="lost", at=2000).op])
    profile = cs.CustomerProfile(customer_id="wm1", name="x")
    for read_at in (3000, 4000):
        cs.put_synced("corpA", [profile], [rel], read_at=read_at)
        after = cs.get_relation("corpA", "wm1", "alice")
        assert (after.status, after.ended_at) == ("lost", 2000)


def test_a_tag_edit_on_an_unknown_relation_leaves_no_partial_item(aws):
    """edit_external_contact for a relation not yet in the table (a customer from before the corp
    adopted the product) must not create an item that later breaks the lost handler."""
    from chalicelib.customers import items as cs
    from chalicelib.customers import steps
    from chalicelib.store import events as event_store
    from chalicelib.tags import items as tag_items

    # The tag step's op, committed as the event's commit does: dropped on an unknown relation.
    event_store.commit("corpA", "e" * 32, steps=["tags"], route="test", expires_at=2**31,
                       ops=[tag_items.relation_tags_set("corpA", "wm1", "alice", ["et1"])])
    assert cs.get_relation("corpA", "wm1", "alice") is None
    assert cs.items_of_customer("corpA", "wm1") == []

    class Event:
        external_user_id, user_id, create_time, source = "wm1", "alice", 2000, None

    class Ctx:
        corp_id, event, identity, day = "corpA", Event, "x" * 32, "2024-01-01"

    ops = steps.on_lost(Ctx)  # used to raise a ValidationError: the event went to the DLQ
    assert ops


def test_customer_detail_is_exact_not_a_prefix(world):
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    for cid, staff in (("wmA", "alice"), ("wmAB", "bob")):
        table.transact([cs.customer_seen(CORP_ID, cid, at=1000).op,
                        cs.relation_added(CORP_ID, cs.RelationItem(customer_id=cid, staff_id=staff, status="active",
                                                                    added_at=1000, last_event_at=1000)).op])
    status, body = world.call("GET", "/api/v1/customers/wmA")
    assert status == 200 and {r["customer_id"] for r in body["relations"]} == {"wmA"}
    assert world.call("GET", "/api/v1/customers/w")[0] == 404


def test_commit_survives_a_transient_transaction_conflict(aws):
    """Another consumer's transaction on the same hot counter (COUNT#day#corp#all) cancels ours
    with TransactionConflict: retried, not failed toward the DLQ."""
    from chalicelib.store import events as ev
    from chalicelib.store import get_table

    table = get_table()
    real = table.client

    class Flaky:
        calls = 0
        exceptions = real.exceptions

        def __getattr__(self, name):
            return getattr(real, name)

        def transact_write_items(self, **kw):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise real.exceptions.TransactionCanceledException(
                    {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                     "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
                    "TransactWriteItems")
            return real.transact_write_items(**kw)

    table.client = Flaky()
    try:
        ev.commit("corpA", "i" * 32, steps=["customers.on_add"],
                  ops=[counters.count("2024-01-01", "corp", "all", adds=1)], expires_at=9_999_999_999, route="x")
    finally:
        table.client = real
    assert Flaky.calls == 2
    assert ev.done_steps("corpA", "i" * 32) == {"customers.on_add"}


def test_invalid_channel_code_patch_is_400(world):
    status, body = world.call("POST", "/api/v1/channel-codes", {"name": "p", "state": "p1", "staff_ids": ["alice"]})
    assert status == 201, body
    for patch in ({"staff_ids": ["alice", "alice"]},
                  {"valid_from": 2_000_000_000, "valid_until": 1_000_000_000},
                  {"schedule": [{"staff_ids": ["bob"], "start": "10:00", "end": "09:00"}]}):
        status, body = world.call("PATCH", "/api/v1/channel-codes/p1", patch)
        assert (status, body["error"]["code"]) == (400, "validation_error"), patch


def _cursor(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


@pytest.mark.parametrize("bad", [{"PK": f"CORP#{CORP_ID}"}, {"PK": "x"},
                                 {"GSI2PK": f"CORP#{CORP_ID}#RELATIONS", "PK": 1, "SK": 2, "GSI2SK": {"a": 1}},
                                 {"PK": f"CORP#{CORP_ID}", "SK": "TAG#et1"}])
def test_tampered_cursors_are_400(bad, world):
    for path in ("/api/v1/channel-codes", "/api/v1/customers"):
        status, body = world.call("GET", f"{path}?cursor={_cursor(bad)}")
        assert (status, body["error"]["code"]) == (400, "invalid_request"), (path, bad)


def test_one_failing_code_does_not_stop_routing_of_the_others(world):
    from chalicelib.channel_codes import service as channel_codes

    for state in ("a-code", "b-code"):
        status, body = world.call("POST", "/api/v1/channel-codes", {
            "name": state, "state": state, "staff_ids": ["alice", "bob"], "backup_staff_ids": ["carol"],
            "valid_until": 2_000_000_000})
        assert status == 201, body
    world.sb.faults.add(kind="errcode", errcode=40058, path="externalcontact/update_contact_way", count=1)
    result = channel_codes.tick([CORP_ID], now=2_000_000_001)  # both windows ended: route to backup
    assert result == {"checked": 2, "changed": 1, "failed": 1}
    assert channel_codes.tick([CORP_ID], now=2_000_000_061) == {"checked": 2, "changed": 1, "failed": 0}


def test_a_deleted_tag_on_a_channel_code_does_not_block_its_adds(world):
    from chalicelib.customers import items as cs

    keep, gone = world.tag("source", "keep", "gone")
    _, code = world.call("POST", "/api/v1/channel-codes", {"name": "p", "staff_ids": ["alice"],
                                                            "tag_ids": [keep, gone]})
    assert world.call("DELETE", f"/api/v1/tags/{gone}")[0] == 204
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="T")["external_userid"]
    assert world.pump() == [{"batchItemFailures": []}]
    assert cs.get_relation(CORP_ID, customer, "alice").tags == [keep]


def test_the_tag_limit_is_a_409(world, monkeypatch):
    from chalicelib.tags import service as tags

    monkeypatch.setattr(tags, "MAX_TAGS_PER_CORP", 2)
    status, body = world.call("POST", "/api/v1/tags", {"group_name": "g", "names": ["a", "b", "c"]})
    assert (status, body["error"]["code"]) == (409, "tag_limit")


def test_a_code_that_cannot_be_saved_is_removed_from_wecom_again(world, monkeypatch):
    from chalicelib.channel_codes import items as code_items

    def broken(*a, **k):
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(code_items, "save_new", broken)
    status, _ = world.call("POST", "/api/v1/channel-codes", {"name": "p", "state": "s1", "staff_ids": ["alice"]})
    assert status == 500
    assert world.sb.dump(CORP_ID)["contact_ways"] == []  # created, then deleted: nothing untracked
    monkeypatch.undo()
    assert world.call("POST", "/api/v1/channel-codes", {"name": "p", "state": "s1", "staff_ids": ["alice"]})[0] == 201


def test_an_end_in_the_same_second_wins_over_an_add(aws):
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    table.transact([cs.relation_ended("corpA", "wm1", "alice", status="lost", at=1000).op])
    added = cs.RelationItem(customer_id="wm1", staff_id="alice", status="active", added_at=1000, last_event_at=1000)
    with pytest.raises(Exception):  # noqa: B017  (the condition refuses it; the consumer drops it as stale)
        table.transact([cs.relation_added("corpA", added).op])
    assert cs.get_relation("corpA", "wm1", "alice").status == "lost"
    # a half add and its acceptance in the same second both apply
    half = cs.RelationItem(customer_id="wm2", staff_id="alice", status="pending", added_at=1000, last_event_at=1000)
    table.transact([cs.relation_added("corpA", half).op])
    table.transact([cs.relation_added("corpA", half.model_copy(update={"status": "active"})).op])
    assert cs.get_relation("corpA", "wm2", "alice").status == "active"


def test_an_event_between_the_syncs_read_and_write_is_not_overwritten(aws):
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    rel = cs.RelationItem(customer_id="wm1", staff_id="alice", status="active", added_at=1000, last_event_at=1000)
    table.transact([cs.relation_added("corpA", rel).op])
    real_batch_get = table.batch_get
    calls = []

    def read_then_event(keys):  # the customer deletes the staff member right after the sync's read
        found = real_batch_get(keys)
        if not calls:
            table.transact([cs.relation_ended("corpA", "wm1", "alice", status="lost", at=1500).op])
        calls.append(keys)
        return found

    table.batch_get = read_then_event
    try:
        synced = rel.model_copy(update={"tags": ["et1"]})
        cs.put_synced("corpA", [cs.CustomerProfile(customer_id="wm1", name="x")], [synced], read_at=1200)
    finally:
        table.batch_get = real_batch_get
    after = cs.get_relation("corpA", "wm1", "alice")
    assert (after.status, after.ended_at) == ("lost", 1500)  # the event wins; the page was re-read
    assert len(calls) == 2


def test_a_filtered_customer_page_stops_at_its_read_budget(aws, monkeypatch):
    """A filter value no relation has must not read a whole corp in one request: the page comes
    back after FILTERED_READS reads, empty, with a cursor; following it reaches the end."""
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    for i in range(12):
        rel = cs.RelationItem(customer_id=f"wm{i:02d}", staff_id="alice", status="active",
                              added_at=1000 + i, last_event_at=1000 + i)
        table.transact([cs.relation_added("corpA", rel).op])
    monkeypatch.setattr(cs, "FILTERED_READS", 3)
    reads = []
    real_query = type(table).query

    def counted_query(self, *args, **kwargs):
        reads.append(kwargs["limit"])
        return real_query(self, *args, **kwargs)

    monkeypatch.setattr(type(table), "query", counted_query)

    items, cursor = cs.search_relations("corpA", status="lost", limit=2, cursor=None)
    assert (items, reads) == ([], [2, 2, 2]) and cursor is not None
    pages = 1
    while cursor:
        before = len(reads)
        items, cursor = cs.search_relations("corpA", status="lost", limit=2, cursor=cursor)
        assert items == [] and len(reads) - before <= 3
        pages += 1
    # 12 relations at 2 per read: 6 reads over 2 pages (+1 empty read where DynamoDB returns a
    # cursor at a Limit that ended exactly on the last item; moto does not)
    assert pages in (2, 3) and len(reads) in (6, 7)


@pytest.mark.parametrize("limit", [2, 3, 4, 5])
def test_a_listing_ends_on_its_last_full_page_without_a_cursor_to_an_empty_one(aws, limit, monkeypatch):
    """DynamoDB returns LastEvaluatedKey whenever it stops at Limit, even on the last item (moto
    does not: emulated here), which made an exactly full last page point to an empty one."""
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    real_query = table.client.query

    def aws_query(**kwargs):
        resp = real_query(**kwargs)
        if "Limit" in kwargs and len(resp["Items"]) == kwargs["Limit"] and "LastEvaluatedKey" not in resp:
            last = resp["Items"][-1]
            attrs = {"PK", "SK", kwargs.get("IndexName", "") + "PK", kwargs.get("IndexName", "") + "SK"}
            resp["LastEvaluatedKey"] = {k: v for k, v in last.items() if k in attrs}
        return resp

    monkeypatch.setattr(table.client, "query", aws_query)
    for i in range(4):
        rel = cs.RelationItem(customer_id=f"wm{i:02d}", staff_id="alice", status="active",
                              added_at=1000 + i, last_event_at=1000 + i)
        table.transact([cs.relation_added("corpA", rel).op])
    pages, cursor = [], None
    while True:
        items, cursor = cs.search_relations("corpA", limit=limit, cursor=cursor)
        pages.append([r.customer_id for r in items])
        if not cursor:
            break
    assert [c for page in pages for c in page] == ["wm03", "wm02", "wm01", "wm00"]
    assert all(pages) and [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)  # no empty page


def test_a_filtered_page_is_full_when_one_in_eight_match_and_nothing_is_skipped(aws):
    """Each read evaluates a whole page's worth, and items past the page are left for the next
    one (its cursor starts after the last item kept)."""
    from chalicelib.customers import items as cs
    from chalicelib.store import get_table

    table = get_table()
    adds = [cs.relation_added("corpA", cs.RelationItem(
        customer_id=f"wm{i:03d}", staff_id="alice", status="active", added_at=1000 + i, last_event_at=1000 + i)).op
        for i in range(400)]
    ends = [cs.relation_ended("corpA", f"wm{i:03d}", "alice", status="lost", at=5000 + i).op for i in range(0, 400, 8)]
    for chunk in (*(adds[i:i + 100] for i in range(0, 400, 100)), ends):
        table.transact(chunk)
    pages, cursor = [], None
    while True:
        items, cursor = cs.search_relations("corpA", status="lost", limit=25, cursor=cursor)
        pages.append([r.customer_id for r in items])
        if not cursor:
            break
    assert [len(p) for p in pages[:2]] == [25, 25]
    seen = [c for page in pages for c in page]
    assert sorted(seen) == [f"wm{i:03d}" for i in range(0, 400, 8)]  # each lost relation once


def test_a_failed_claim_returns_the_item_as_found(aws):
    """The cap claim of broadcasts: one UpdateItem `SET #b = :v ADD n :one` on condition, asking for
    ALL_OLD on failure: the item as found comes back with the error (no second read)."""
    from chalicelib.store import get_table
    from chalicelib.store.table import to_attrs

    table = get_table()
    key = {"PK": "CORP#corpA", "SK": "CAP#2024-01-01#wm1"}
    claim = {"UpdateExpression": "SET #b = :v ADD n :one",
             "ConditionExpression": "attribute_not_exists(#b) AND (attribute_not_exists(n) OR n < :cap)",
             "ExpressionAttributeNames": {"#b": "b_x"},
             "ExpressionAttributeValues": to_attrs({":v": "0#alice", ":one": 1, ":cap": 1}),
             "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    table.client.update_item(TableName=table.name, Key=to_attrs(key), **claim)
    with pytest.raises(table.client.exceptions.ConditionalCheckFailedException) as failed:
        table.client.update_item(TableName=table.name, Key=to_attrs(key), **claim)
    assert failed.value.response["Item"] == to_attrs({**key, "b_x": "0#alice", "n": 1})
    other = {**claim, "ExpressionAttributeNames": {"#b": "b_y"}}
    with pytest.raises(table.client.exceptions.ConditionalCheckFailedException):  # capped: n == cap
        table.client.update_item(TableName=table.name, Key=to_attrs(key), **other)
    table.update(key, expression="REMOVE #b ADD n :m", names={"#b": "b_x"}, values={":m": -1},
                 condition="attribute_exists(#b)")
    table.client.update_item(TableName=table.name, Key=to_attrs(key), **other)
    assert table.get(key) == {**key, "b_y": "0#alice", "n": 1}


def test_index_pages_in_both_directions_resume_after_their_cursor(aws):
    """GSI2 newest first and oldest first, a prefix and a range, paged one item at a time."""
    from chalicelib.store import get_table, schema

    table = get_table()
    for i in range(7):
        table.put({"PK": "CORP#corpA", "SK": f"X#{i}", schema.GSI2_PK: "CORP#corpA#X",
                   schema.GSI2_SK: f"{i % 3}#{i}"})
    table.put({"PK": "CORP#corpA", "SK": "Y#1", schema.GSI2_PK: "CORP#corpA#Y", schema.GSI2_SK: "1#1"})

    def paged(**kwargs):
        out, cursor = [], None
        while True:
            page, cursor = table.query("CORP#corpA#X", index=schema.GSI2, limit=1, cursor=cursor, **kwargs)
            out += [i["SK"] for i in page]
            if not cursor:
                return out

    assert paged() == ["X#0", "X#3", "X#6", "X#1", "X#4", "X#2", "X#5"]
    assert paged(newest_first=True) == ["X#5", "X#2", "X#4", "X#1", "X#6", "X#3", "X#0"]
    assert paged(sk_prefix="1#") == ["X#1", "X#4"]
    assert paged(sk_prefix="1#", newest_first=True) == ["X#4", "X#1"]
    assert paged(sk_between=("0#6", "2#2")) == ["X#6", "X#1", "X#4", "X#2"]
    assert paged(filter_expression="SK <> :s", values={":s": "X#4"}) == ["X#0", "X#3", "X#6", "X#1", "X#2", "X#5"]
