"""A relation's lifecycle: an end counts once, a re-add starts the relation again, and a handover
keeps the customer's channel (attribution) and tags."""

from __future__ import annotations

from tests.functional.test_acquisition import _code
from tests.functional.test_stats_contacts import _stats, _transfer
from tests.helpers import CORP_ID


def _relation(customer: str, staff: str):
    from chalicelib.customers import items as customer_items

    return customer_items.get_relation(CORP_ID, customer, staff)


def test_a_second_end_of_an_ended_relation_counts_nothing(world):
    _, code = _code(world, staff_ids=["alice"])
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Twice")["external_userid"]
    world.sb.clock.advance(2)
    world.sb.simulator.customer_deletes_staff(CORP_ID, customer, "alice")
    world.sb.clock.advance(2)
    world.sb.simulator.staff_deletes_customer(CORP_ID, "alice", customer)
    world.pump()

    total = _stats(world, "day")["total"]
    assert (total["adds"], total["lost"], total["removed"], total["net"]) == (1, 1, 0, 0)
    assert _relation(customer, "alice").status == "removed"  # recorded all the same
    _, detail = world.call("GET", f"/api/v1/customers/{customer}")
    assert [e["kind"] for e in detail["timeline"] if e["kind"] in ("lost", "removed")] == ["lost", "removed"]


def test_two_ends_processed_at_once_cannot_both_count(world):
    """Both handlers read the relation active; the second commit finds it no longer as read."""
    import pytest

    from chalicelib.customers import items as customer_items
    from chalicelib.store import ConditionFailed
    from chalicelib.store.events import commit

    _, code = _code(world, staff_ids=["alice"])
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Race")["external_userid"]
    world.pump()
    read = _relation(customer, "alice")
    at = read.last_event_at + 2
    ops = [customer_items.relation_ended(CORP_ID, customer, "alice", status=s, at=at + i, counted_from=read)
           for i, s in enumerate(("lost", "removed"))]
    commit(CORP_ID, "race-1", steps=["customers.on_lost"], ops=[ops[0]], expires_at=at + 99, route="t")
    with pytest.raises(ConditionFailed):
        commit(CORP_ID, "race-2", steps=["customers.on_removed"], ops=[ops[1]], expires_at=at + 99, route="t")
    assert _relation(customer, "alice").status == "lost"


def test_a_customer_from_before_the_product_still_counts_as_churn(world):
    from chalicelib.customers import items as customer_items
    from tests.helpers import drain_queue

    customer = world.sb.simulator.add_staff(CORP_ID, "bob", name="Older")["external_userid"]
    drain_queue(world.settings.events_queue)  # the add happened before the product: never recorded
    world.sb.clock.advance(2)
    world.sb.simulator.customer_deletes_staff(CORP_ID, customer, "bob")
    world.pump()
    assert customer_items.get_relation(CORP_ID, customer, "bob").status == "lost"
    assert _stats(world, "day")["total"]["lost"] == 1


def test_a_re_add_starts_the_relation_again(world):
    tag_ids = world.tag("source", "poster")
    other = world.tag("interest", "shoes")
    _, code = _code(world, staff_ids=["alice"], tag_ids=tag_ids)
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Back")["external_userid"]
    world.pump()
    world.sb.simulator.staff_edits_customer(CORP_ID, "alice", customer, add_tag=other)
    world.pump()
    first = _relation(customer, "alice")
    assert set(first.tags) == set(tag_ids + other)
    world.sb.clock.advance(5)
    world.sb.simulator.staff_deletes_customer(CORP_ID, "alice", customer)
    world.pump()
    world.sb.clock.advance(100)
    world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], external_userid=customer)
    world.pump()

    again = _relation(customer, "alice")
    assert again.status == "active" and again.added_at > first.added_at + 100
    assert set(again.tags) == set(tag_ids)  # the channel code's, marked again; not the old relation's
    _, page = world.call("GET", f"/api/v1/customers?added_from={first.added_at + 50}&limit=50")
    assert [i["customer_id"] for i in page["items"]] == [customer]
    from chalicelib.customers import items as customer_items
    seen = customer_items.items_of_customer(CORP_ID, customer)[0]
    assert seen["first_seen_at"] == first.added_at  # the customer's first-seen time is kept


def _handed_over_from_alice_to_bob(world):
    """A customer of alice's through a tagged channel code, then handed over to bob in WeCom;
    the handover's two callbacks are queued, not yet consumed."""
    tag_ids = world.tag("source", "poster")
    _, code = _code(world, name="poster", staff_ids=["alice"], tag_ids=tag_ids)
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Moved")["external_userid"]
    world.pump()
    world.sb.clock.advance(2)
    _transfer(world, customer, "alice", "bob")
    return tag_ids, code, customer


def test_a_handover_keeps_the_channel_and_the_tags(world):
    tag_ids, code, customer = _handed_over_from_alice_to_bob(world)
    world.pump()

    bob = _relation(customer, "bob")
    assert bob.state == code["state"] and set(bob.tags) == set(tag_ids)
    channels = {r["key"]: r for r in _stats(world, "channel")["rows"]}
    assert channels[code["state"]]["adds"] == 2 and channels[code["state"]]["net"] == 1
    assert "-" not in channels or channels["-"]["adds"] == 0
    _, page = world.call("GET", f"/api/v1/customers?channel={code['state']}&status=active&limit=50")
    assert [(i["customer_id"], i["staff_id"]) for i in page["items"]] == [(customer, "bob")]


def test_a_handover_whose_add_arrives_first_still_keeps_the_channel_and_the_tags(world):
    """The two callbacks in the other order: bob's add (no State) is processed before alice's
    DELETE_BY_TRANSFER; the end then gives bob's relation the channel and moves its add there."""
    import json

    from tests.helpers import drain_queue, sqs_event

    tag_ids, code, customer = _handed_over_from_alice_to_bob(world)
    bodies = drain_queue(world.settings.events_queue)
    assert ["add_" in json.dumps(json.loads(b)["event"]) for b in bodies] == [False, True]
    for body in reversed(bodies):
        world.client.lambda_.invoke("on_events", sqs_event([body]))

    bob = _relation(customer, "bob")
    assert bob.state == code["state"] and set(bob.tags) == set(tag_ids)
    channels = {r["key"]: r for r in _stats(world, "channel")["rows"]}
    assert channels[code["state"]]["adds"] == 2 and channels[code["state"]]["net"] == 1
    assert "-" not in channels or (channels["-"]["adds"], channels["-"]["net"]) == (0, 0)
    total = _stats(world, "day")["total"]
    assert (total["adds"], total["transferred"], total["net"]) == (2, 1, 1)


def test_a_channel_code_add_costs_the_consumer_at_most_four_aws_requests(world, monkeypatch):
    """bench/welcome_burst.py's '<= 5 AWS requests per add' (1 is the callback's SendMessage):
    the relation of a channel-code add is not read; the store's conditions decide a re-add.
    WeCom pacing is counted apart: its lease (one UpdateItem per 5 calls of one API in one second)
    is taken again when the counted add lands in a later second than the warm-up, which on a busy
    machine it may or may not."""
    from bench import aws_requests
    from chalicelib.platform import caches
    from chalicelib.store.rate_limits import DynamoRateLimiter
    from tests.helpers import drain_queue, sqs_event

    leases = []
    lease = DynamoRateLimiter._lease
    monkeypatch.setattr(DynamoRateLimiter, "_lease", lambda self, *a, **k: leases.append(a) or lease(self, *a, **k))

    _, code = _code(world, staff_ids=["alice"])
    aws_requests.install()
    caches.clear_all()  # the hooks count clients made after install
    world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Warm-up")
    world.pump()  # a warm instance: corp, code and token cached
    world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Counted")
    bodies = drain_queue(world.settings.events_queue)
    leases.clear()
    try:
        with aws_requests.count_aws_requests() as counted:
            assert world.client.lambda_.invoke("on_events", sqs_event(bodies)).payload == {"batchItemFailures": []}
    finally:
        aws_requests.uninstall()
    assert counted["dynamodb.GetItem"] == 1, dict(counted)  # the event's exactly-once record only
    # at most one lease per WeCom API the add calls (externalcontact/get for the name, send_welcome_msg)
    assert len(leases) <= 2 and counted["dynamodb.UpdateItem"] >= len(leases), (leases, dict(counted))
    assert counted.total - len(leases) <= 4, (leases, dict(counted))
