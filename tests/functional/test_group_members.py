"""Exact group member counts from change_external_chat under lost, reordered and repeated callbacks
(WeCom's member versions: chalicelib/groups/items.py), checked against the sandbox's truth."""

from __future__ import annotations

from tests.helpers import CORP_ID, drain_queue, sqs_event

GET = "externalcontact/groupchat/get"


def _truth(world, chat_id: str) -> tuple[int, str]:
    chat = world.sb.world.corp(CORP_ID).chats[chat_id]
    return len(chat.members), chat.member_version


def _stored(chat_id: str) -> tuple[int | None, str | None]:
    from chalicelib.groups import items as group_items

    group = group_items.get_group(CORP_ID, chat_id, consistent=True)
    return group.member_count, group.member_version


def _consume(world, bodies: list[str]) -> None:
    payload = world.client.lambda_.invoke("on_events", sqs_event(bodies)).payload
    assert payload == {"batchItemFailures": []}


def _group_reads(world) -> int:
    return len(world.sb.requests(GET))


def _new_group(world, *customers: str) -> str:
    chat_id = world.sb.simulator.create_group(CORP_ID, "alice", "Store 1", members=["bob"],
                                              customers=list(customers))["chat_id"]
    world.pump()
    return chat_id


def test_joins_and_quits_keep_the_exact_count(world):
    from chalicelib.groups import items as group_items

    chat_id = _new_group(world, "wmA")
    sim = world.sb.simulator
    for name in ("wmB", "wmC", "wmD"):
        sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid=name)
        world.pump()
        assert _stored(chat_id) == _truth(world, chat_id)
    sim.leave_group(CORP_ID, chat_id, "wmC")
    world.pump()
    assert _stored(chat_id) == _truth(world, chat_id)
    assert group_items.member_count(CORP_ID, chat_id) == 5  # alice, bob, wmA, wmB, wmD
    # The first versioned event found no stored version (the create carries none): one read, then
    # every following event moved the count by its own change without asking WeCom again.
    assert _group_reads(world) == 1
    group = group_items.get_group(CORP_ID, chat_id)
    assert (group.name, group.owner, group.status) == ("Store 1", "alice", "active")
    status = {m.member_id: m.status for m in group_items.members(CORP_ID, chat_id)}
    assert status == {"alice": "joined", "bob": "joined", "wmA": "joined", "wmB": "joined",
                      "wmC": "left", "wmD": "joined"}


def test_redelivered_events_count_once(world):
    chat_id = _new_group(world)
    world.sb.simulator.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmA")
    world.sb.simulator.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmB")
    world.replay(-1, times=3)  # WeCom retrying the last callback
    bodies = drain_queue(world.settings.events_queue)
    _consume(world, bodies)
    _consume(world, bodies)  # SQS redelivering the whole batch
    assert _stored(chat_id) == _truth(world, chat_id) == (4, _truth(world, chat_id)[1])


def test_a_dropped_add_member_is_repaired_by_the_version_gap(world):
    from chalicelib.groups import items as group_items

    chat_id = _new_group(world)
    sim = world.sb.simulator
    sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmA")
    world.pump()
    reads = _group_reads(world)
    sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmLost")
    assert drain_queue(world.settings.events_queue)  # this add_member never reaches a step
    assert _stored(chat_id)[0] == 3
    sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmB")
    world.pump()
    # wmB's LastMemVer is not the stored version: the gap re-read groupchat/get
    assert _stored(chat_id) == _truth(world, chat_id)
    assert group_items.member_count(CORP_ID, chat_id) == 5
    assert _group_reads(world) == reads + 1
    lost = {m.member_id: m for m in group_items.members(CORP_ID, chat_id)}["wmLost"]
    assert (lost.status, lost.invitor, lost.join_scene) == ("joined", "alice", 2)


def test_out_of_order_delivery_ends_exact_and_older_events_cost_no_read(world):
    chat_id = _new_group(world)
    sim = world.sb.simulator
    sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmA")
    world.pump()
    reads = _group_reads(world)
    for name in ("wmB", "wmC", "wmD"):
        sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid=name)
    sim.leave_group(CORP_ID, chat_id, "wmA")
    bodies = drain_queue(world.settings.events_queue)
    assert len(bodies) == 4
    for body in reversed(bodies):  # the newest first, each in its own batch
        _consume(world, [body])
    assert _stored(chat_id) == _truth(world, chat_id)
    assert _stored(chat_id)[0] == 5  # alice, bob, wmB, wmC, wmD
    # the newest event's gap read the truth once; the older ones start at versions it moved past
    assert _group_reads(world) == reads + 1


def test_events_and_a_read_racing_never_let_an_older_state_win(world):
    """A read taken before a change, written after the change was counted, must not win; nor may
    an event counted from a version a read already moved past."""
    import pytest

    from chalicelib.corps import registry as corps
    from chalicelib.groups import items as group_items
    from chalicelib.groups import service
    from chalicelib.store import ConditionFailed

    chat_id = _new_group(world)
    sim = world.sb.simulator
    sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmA")
    world.pump()
    seen = group_items.get_group(CORP_ID, chat_id, consistent=True)
    old_read = corps.wecom_client(CORP_ID).get_groupchat(chat_id).group_chat  # 3 members
    sim.invite_to_group(CORP_ID, chat_id, "alice", external_userid="wmB")
    world.pump()
    assert _stored(chat_id) == _truth(world, chat_id)
    with pytest.raises(ConditionFailed):
        group_items.record_read(CORP_ID, old_read, seen=seen, read_at=0)
    assert _stored(chat_id) == _truth(world, chat_id)
    # the same old read, taken again as current, is recognised as behind the stored count
    assert service.refresh_members(CORP_ID, chat_id, client=corps.wecom_client(CORP_ID)).member_count == 4
    # an event counted against a version that a read has since moved past: its commit drops the count
    from chalicelib.store import events as event_store

    change = group_items.CountChange(seen, seen.member_version, "vX", 1)
    op = group_items.group_changed(CORP_ID, chat_id, at=2**31, fields={"last_change": "probe"}, count=change)
    event_store.commit(CORP_ID, "probe", steps=["groups.probe"], ops=[op], expires_at=2**31, route="probe")
    assert _stored(chat_id) == _truth(world, chat_id)
    assert group_items.get_group(CORP_ID, chat_id).last_change == "probe"  # its other fields still apply


def test_a_joins_stand_in_never_creates_a_member_item_without_its_identity(world, monkeypatch):
    """A join whose member item a later write had moved (a read of groupchat/get at a later join
    time) leaves its time and scene through a stand-in; when the item is gone by the time the
    stand-in applies (here deleted between the commit's attempts), the stand-in must not create a
    bare item (no group_id / member_id: every later read of the group's members failed on it) and
    the join must not be lost: it is written whole."""
    from chalicelib.groups import items as group_items
    from chalicelib.store import ConditionFailed, get_table, keys
    from chalicelib.store import events as event_store

    chat_id = _new_group(world)
    table = get_table()
    key = keys.group_member(CORP_ID, chat_id, "wmZ")
    group_items._update_member(CORP_ID, chat_id, "wmZ", at=200, status="joined", fields={"join_scene": 3})
    ops = group_items.members_changed(CORP_ID, chat_id, ["wmZ"], status="joined", at=100, scene=3)
    transact, gone = type(table).transact, []

    def transact_then_lose_the_item(self, operations, **kwargs):
        try:
            return transact(self, operations, **kwargs)
        except ConditionFailed:
            if not gone:
                gone.append(self.delete(key))
            raise

    monkeypatch.setattr(type(table), "transact", transact_then_lose_the_item)
    event_store.commit(CORP_ID, "probe-gone", steps=["groups.probe"], ops=ops, expires_at=2**31, route="probe")
    assert gone
    stored = table.get(key, consistent=True)
    assert stored is not None and (stored.get("group_id"), stored.get("member_id")) == (chat_id, "wmZ")
    [member] = [m for m in group_items.members(CORP_ID, chat_id) if m.member_id == "wmZ"]
    assert (member.status, member.joined_at, member.scene) == ("joined", 100, 3)
    assert [g.group_id for g in group_items.member_groups(CORP_ID, "wmZ", limit=10)] == [chat_id]


def test_a_read_rewrites_member_items_left_without_identity(world):
    """Member items an older version's stand-in left bare (no group_id / member_id) made every read
    of groupchat/get for the group fail, so its count could never be repaired. The read writes
    them anew from WeCom's list: a listed member joined, another left."""
    from chalicelib.corps import registry as corps
    from chalicelib.groups import items as group_items
    from chalicelib.groups import service
    from chalicelib.store import get_table, keys

    chat_id = _new_group(world, "wmA")
    for member_id in ("wmA", "wmGone"):
        get_table().update(keys.group_member(CORP_ID, chat_id, member_id),
                           expression="SET joined_at = if_not_exists(joined_at, :at), scene = if_not_exists(scene, :s)",
                           values={":at": 100, ":s": 3})
    service.refresh_members(CORP_ID, chat_id, client=corps.wecom_client(CORP_ID))
    status = {m.member_id: m.status for m in group_items.members(CORP_ID, chat_id)}
    assert status == {"alice": "joined", "bob": "joined", "wmA": "joined", "wmGone": "left"}
    assert _stored(chat_id) == _truth(world, chat_id)


def test_unknown_group_has_no_count(world):
    from chalicelib.groups import items as group_items

    assert group_items.member_count(CORP_ID, "wrNope") is None
    assert group_items.get_group(CORP_ID, "wrNope") is None
