"""Customer groups (WeCom customer group chats) and their members.

The group item's `member_count` is WeCom's truth, kept exact by member versions (docs/architecture.md,
"Group member counts"): WeCom versions a group's member list, and every add/del_member callback
names the version before (`LastMemVer`) and after (`CurMemVer`) its change. An event moves the
stored count only from the version it starts at (a conditional update in its exactly-once commit);
anything else is a gap (a lost or reordered callback) that a read of groupchat/get repairs, written
only over the version seen before that read, so an older read never overwrites a newer state.
`member_history` holds the versions the stored count has moved past: an event starting at one of
them is already included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema
from chalicelib.store.events import StoreOp

if TYPE_CHECKING:
    from chalicelib.wecom.models import GroupChat

logger = logging.getLogger(__name__)

GroupStatus = Literal["active", "dismissed"]
MEMBER_HISTORY = 20  # versions remembered: an event delayed past this many later changes costs a read


class GroupItem(Model):
    """A customer group as stored: what its events and the last groupchat/get said."""

    group_id: str
    name: str = ""
    owner: str | None = None
    admins: list[str] = Field(default_factory=list)
    notice: str | None = None
    status: GroupStatus = "active"
    member_count: int | None = Field(None, description="members (staff and customers), WeCom's truth; "
                                                       "None until the first read or versioned event")
    member_version: str | None = Field(None, description="WeCom's member-list version that member_count is at")
    member_history: list[str] = Field(default_factory=list, description="versions member_count moved past")
    members_read_at: int | None = Field(None, description="when groupchat/get was last read (unix s)")
    members_seen_until: int | None = Field(None, description="the last read's latest join time (WeCom's clock): "
                                                             "a change before it is in that read")
    members_seen_last: list[str] = Field(default_factory=list, description="who joined at members_seen_until")
    codes: list[str] = Field(default_factory=list, description="group codes whose pool holds this group "
                                                               "(or held it, for a deleted code: attribution)")
    created_at: int | None = None
    last_event_at: int | None = None
    last_change: str | None = None


class MemberItem(Model):
    group_id: str
    member_id: str
    status: Literal["joined", "left"] = "joined"
    member_type: int | None = Field(None, description="1 staff member, 2 customer")
    join_time: int | None = Field(None, description="WeCom's join time, as groupchat/get last said")
    joined_at: int | None = Field(None, description="the add_member callback's CreateTime")
    join_scene: int | None = Field(None, description="groupchat/get: 1 invited, 2 link, 3 QR code")
    scene: int | None = Field(None, description="the callback's JoinScene / QuitScene")
    state: str | None = None
    invitor: str | None = None
    last_event_at: int | None = None


def set_code(corp_id: str, group_id: str, code_id: str, *, held: bool) -> None:
    """Add or remove a group code in the group's `codes` (kept by group_codes as its pools change).
    A group not stored yet gets nothing: no partial group item is created."""
    try:
        get_table().update(keys.group(corp_id, group_id), expression=("ADD" if held else "DELETE") + " codes :c",
                           values={":c": {code_id}}, condition="attribute_exists(PK)")
    except ConditionFailed:
        pass


def _group(item: dict[str, Any]) -> GroupItem:
    item = dict(item)
    item["codes"] = sorted(item.get("codes") or ())
    return GroupItem.model_validate(item)


def get_group(corp_id: str, group_id: str, *, consistent: bool = False) -> GroupItem | None:
    return group_of(get_table().get(keys.group(corp_id, group_id), consistent=consistent))


def group_of(item: dict[str, Any] | None) -> GroupItem | None:
    return _group(item) if item else None


def get_groups(corp_id: str, group_ids: list[str]) -> list[GroupItem]:
    """The stored groups among `group_ids`, by id (100 per read)."""
    found = get_table().batch_get([keys.group(corp_id, g) for g in group_ids]) if group_ids else []
    return sorted((_group(i) for i in found), key=lambda g: g.group_id)


def member_count(corp_id: str, group_id: str) -> int | None:
    """The group's exact member count (consistent read); None for an unknown group or one whose
    members were never read nor counted by a versioned event."""
    group = get_group(corp_id, group_id, consistent=True)
    return group.member_count if group else None


@dataclass(frozen=True)
class CountChange:
    """An add/del_member event's move of the member count from version `last` (what `seen` holds)
    to `cur`."""

    seen: GroupItem
    last: str
    cur: str
    delta: int


def group_changed(corp_id: str, group_id: str, *, at: int, status: GroupStatus | None = None,
                  fields: dict[str, Any] | None = None, created: bool = False,
                  count: CountChange | None = None, seen: GroupItem | None = None) -> StoreOp | None:
    """The event's update of the group item: its fields only if no newer event (CreateTime) wrote
    them; its count change (one op: a transaction touches an item once) only from its version.
    `seen`: the group as the event read it; when a newer event had already written its fields
    (`last_event_at` only grows), or a member change already counted would change nothing but
    `last_event_at`, they are left out rather than fail the commit (None: nothing to write)."""
    names = {"#type": "type", "#at": "last_event_at"}
    values: dict[str, Any] = {":type": "group", ":g": group_id, ":at": at, **_listed(corp_id, group_id)}
    sets = ["#type = :type", "group_id = :g", "#at = :at", f"{schema.GSI2_PK} = :gpk", f"{schema.GSI2_SK} = :gsk"]
    if status:
        names["#status"] = "status"
        values[":status"] = status
        sets.append("#status = :status")
    if created:
        sets.append("created_at = if_not_exists(created_at, :at)")
    for i, (name, value) in enumerate(sorted((fields or {}).items())):
        names[f"#f{i}"] = name
        values[f":f{i}"] = value
        sets.append(f"#f{i} = :f{i}")
    key = keys.group(corp_id, group_id)
    newer = "(attribute_not_exists(#at) OR #at <= :at)"
    fields_op = StoreOp(get_table().op_update(key, expression="SET " + ", ".join(sets), names=names,
                                              values=values, condition=newer), stale_ok=True)
    outdated = seen is not None and seen.last_event_at is not None and seen.last_event_at > at
    if count is None:
        # A member change already counted (a read or a later event) leaves an active group as it is:
        # its fields would only move last_event_at, at the price of a failed commit when newer.
        unchanged = seen is not None and seen.status == status == "active" and not fields and not created
        return None if outdated or unchanged else fields_op
    condition, count_values = _version_condition(count.seen)
    count_values.update({":cur": count.cur, ":hist": _moved_past(count.seen, count.cur), ":d": count.delta})
    count_set = "member_version = :cur, member_history = :hist"
    # Both; else the count alone (an older event by CreateTime still counts); else the fields alone
    # (a read moved the version past this change, which it includes); else nothing.
    count_op = StoreOp(get_table().op_update(key, expression=f"SET {count_set} ADD member_count :d",
                                             values=count_values, condition=condition),
                       stale_ok=True, if_stale=None if outdated else fields_op)
    if outdated:
        return count_op
    return StoreOp(
        get_table().op_update(key, expression="SET " + ", ".join([*sets, count_set]) + " ADD member_count :d",
                              names=names, values={**values, **count_values}, condition=f"{condition} AND {newer}"),
        stale_ok=True, if_stale=count_op)


def in_read(group: GroupItem, *, at: int, joined: list[str] | None = None) -> bool:
    """Whether the stored read of groupchat/get came after a change at CreateTime `at` (WeCom's
    clock, whole seconds): the read saw a member join later than `at`, or saw all of `joined` (an
    add_member's members) join at `at` itself. The stored count is then past that change."""
    until = group.members_seen_until
    if until is None:
        return False
    return at < until or (at == until and bool(joined) and set(joined) <= set(group.members_seen_last))


def _listed(corp_id: str, group_id: str) -> dict[str, str]:
    """The group's place in the groups list (GSI2), so listing groups never reads member items."""
    return {":gpk": keys.groups_partition(corp_id), ":gsk": group_id}


def _moved_past(seen: GroupItem | None, new_version: str) -> list[str]:
    if seen is None or not seen.member_version or seen.member_version == new_version:
        return list(seen.member_history) if seen else []
    return [seen.member_version, *seen.member_history][:MEMBER_HISTORY]


def _version_condition(seen: GroupItem | None) -> tuple[str, dict[str, Any]]:
    if seen is None or seen.member_version is None:
        return "attribute_not_exists(member_version)", {}
    return "member_version = :seen", {":seen": seen.member_version}


def record_read(corp_id: str, chat: GroupChat, *, seen: GroupItem | None, read_at: int) -> None:
    """Store what groupchat/get said, over the version `seen` held before the read only (else
    ConditionFailed: the stored state moved meanwhile, possibly past this read)."""
    condition, values = _version_condition(seen)
    version = chat.member_version or ""
    until = max((m.join_time or 0 for m in chat.member_list), default=0)
    get_table().update(
        keys.group(corp_id, chat.chat_id),
        expression=(f"SET {schema.GSI2_PK} = :gpk, {schema.GSI2_SK} = :gsk, #type = :type, group_id = :g, "
                    "#name = :name, #owner = :owner, admins = :admins, "
                    "notice = :notice, member_count = :n, member_version = :v, member_history = :hist, "
                    "members_read_at = :t, members_seen_until = :until, members_seen_last = :last, "
                    "#status = if_not_exists(#status, :active), "
                    "created_at = if_not_exists(created_at, :created)"),
        names={"#type": "type", "#name": "name", "#owner": "owner", "#status": "status"},
        values={**values, **_listed(corp_id, chat.chat_id), ":type": "group", ":g": chat.chat_id,
                ":name": chat.name, ":owner": chat.owner,
                ":admins": [a.get("userid", "") for a in chat.admin_list], ":notice": chat.notice,
                ":n": len(chat.member_list), ":until": until,
                ":last": [m.userid for m in chat.member_list if until and m.join_time == until],
                ":v": version, ":hist": _moved_past(seen, version), ":t": read_at,
                ":active": "active", ":created": chat.create_time or read_at},
        condition=condition,
    )
    _record_read_members(corp_id, chat, read_at=read_at)


def _record_read_members(corp_id: str, chat: GroupChat, *, read_at: int) -> None:
    """Member items as the read found them, writing only those that differ; a member whose item a
    later event moved is left alone. Written in transactions of up to READ_WRITES_PER_REQUEST
    members (a burst's read finds tens of members whose events are still queued): one request,
    not one per member."""
    prefix = keys.group_member_prefix(chat.chat_id)
    raw = {i["SK"][len(prefix):]: i for i in _member_items(corp_id, chat.chat_id)}
    # An item without its identity (left by a join's stand-in before it was conditioned on the
    # item being there) is written anew from this read: joined if listed, else left.
    bare = {member_id for member_id, i in raw.items() if "member_id" not in i or "group_id" not in i}
    if bare:
        logger.warning("group %s/%s: member items without identity rewritten by the read: %s", corp_id,
                       chat.chat_id, sorted(bare))
    stored = {member_id: MemberItem.model_validate(i) for member_id, i in raw.items() if member_id not in bare}
    present = set()
    writes: list[dict[str, Any]] = []
    for m in chat.member_list:
        present.add(m.userid)
        fields = {"member_type": m.type, "join_time": m.join_time or None, "join_scene": m.join_scene,
                  "state": m.state or None, "invitor": (m.invitor or {}).get("userid")}
        known = stored.get(m.userid)
        # A member item stored before the member index (no GSI1 entry) is written too: the daily
        # group sync indexes what was stored before.
        unindexed = m.userid in raw and schema.GSI1_PK not in raw[m.userid]
        if known is None or known.status != "joined" or unindexed \
                or any(getattr(known, k) != v for k, v in fields.items()):
            # At the member's join time (WeCom's clock, as events' CreateTime): the read says "joined
            # since then", so the join's own event still writes its time and scene over it, while an
            # older event (or this read, against a later leave) is kept out.
            writes.append(_member_write(corp_id, chat.chat_id, m.userid, at=m.join_time or read_at,
                                        status="joined", fields=fields))
    gone = [m.member_id for m in stored.values() if m.status == "joined"] + sorted(bare)
    for member_id in (m for m in gone if m not in present):
        writes.append(_member_write(corp_id, chat.chat_id, member_id, at=read_at, status="left"))
    for start in range(0, len(writes), READ_WRITES_PER_REQUEST):
        _write_all_but_stale(writes[start:start + READ_WRITES_PER_REQUEST])


READ_WRITES_PER_REQUEST = 100  # DynamoDB's items per transaction


def _member_write(corp_id: str, group_id: str, member_id: str, *, at: int, status: str,
                  fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return get_table().op_update(keys.group_member(corp_id, group_id, member_id),
                                 **_member_update(corp_id, group_id, member_id, at=at, status=status, fields=fields))


def _write_all_but_stale(ops: list[dict[str, Any]]) -> None:
    """Apply conditional updates of distinct items together; one whose condition fails (a newer
    event moved that member) is left out and the others are written again."""
    while ops:
        try:
            get_table().transact(ops)
            return
        except ConditionFailed as exc:
            failed = {i for i, r in enumerate(exc.reasons) if r == "ConditionalCheckFailed"}
            if not failed:
                raise
            ops = [op for i, op in enumerate(ops) if i not in failed]


def _member_update(corp_id: str, group_id: str, member_id: str, *, at: int, status: str,
                   fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The conditional update of a member item: only if no newer event (by time) moved it."""
    names = {"#type": "type", "#status": "status", "#at": "last_event_at"}
    values: dict[str, Any] = {":type": "group_member", ":g": group_id, ":m": member_id, ":status": status, ":at": at}
    sets = ["#type = :type", "group_id = :g", "member_id = :m", "#status = :status", "#at = :at"]
    removes = []
    if status == "joined":  # in the member's groups (GSI1) while joined: attributes of this same write
        values.update(_member_index(corp_id, group_id, member_id))
        sets += [f"{schema.GSI1_PK} = :ipk", f"{schema.GSI1_SK} = :isk"]
    else:
        removes += [schema.GSI1_PK, schema.GSI1_SK]
    for i, (name, value) in enumerate(sorted((fields or {}).items())):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
    return {"expression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            "names": names, "values": values, "condition": "attribute_not_exists(#at) OR #at <= :at"}


def _member_index(corp_id: str, group_id: str, member_id: str) -> dict[str, str]:
    """A joined member's entry in its groups (keys.member_groups_partition). Every member is indexed,
    staff too: a callback does not say a member's type (only a read of groupchat/get does), and an
    id is one person's, so a customer's partition holds only that customer's groups."""
    return {":ipk": keys.member_groups_partition(corp_id, member_id), ":isk": group_id}


def member_groups(corp_id: str, member_id: str, *, limit: int) -> list[MemberItem]:
    """The member items of the groups `member_id` is joined in (GSI1, one query), by group id."""
    items, _ = get_table().query(keys.member_groups_partition(corp_id, member_id), index=schema.GSI1, limit=limit)
    return [MemberItem.model_validate(i) for i in items]


def _update_member(corp_id: str, group_id: str, member_id: str, *, at: int, status: str,
                   fields: dict[str, Any] | None = None) -> None:
    try:
        get_table().update(keys.group_member(corp_id, group_id, member_id),
                           **_member_update(corp_id, group_id, member_id, at=at, status=status, fields=fields))
    except ConditionFailed:
        pass  # a newer event already moved this member


MEMBERS_IN_COMMIT = 50  # an event's member items go into its commit (a transaction holds 100 items)


def members_changed(corp_id: str, group_id: str, member_ids: list[str], *, status: str, at: int,
                    scene: int | None) -> list[StoreOp]:
    """An add/del_member event's member items, as ops of its commit (each dropped if a newer event
    moved that member). They keep what a read of groupchat/get added (state, invitor). A change of
    more members than a commit holds writes them now instead: idempotent conditional updates (the
    same event writes the same values)."""
    fields: dict[str, Any] = {"scene": scene}
    if status == "joined":
        fields["joined_at"] = at
    member_ids = list(dict.fromkeys(member_ids))
    if len(member_ids) > MEMBERS_IN_COMMIT:
        for member_id in member_ids:
            _update_member(corp_id, group_id, member_id, at=at, status=status, fields=fields)
        return []
    return [_member_op(keys.group_member(corp_id, group_id, m), at=at, status=status, fields=fields,
                       update=_member_update(corp_id, group_id, m, at=at, status=status, fields=fields))
            for m in member_ids]


def _member_op(key: dict[str, str], *, at: int, status: str, fields: dict[str, Any],
               update: dict[str, Any]) -> StoreOp:
    """A join older than the member item's last write (a read of groupchat/get made for this very
    event's gap, or a later event) still leaves its time and scene where none is known. That
    stand-in only completes an item that is there: an update creates what it does not find, and
    this one sets no identity (group_id, member_id): on an item gone by the time it applies (the
    commit's next attempt, after the first failed on the item) it would leave a bare item. Then
    the join is written whole instead: nothing newer is left to protect."""
    main = StoreOp(get_table().op_update(key, **update), stale_ok=True)
    if status != "joined":
        return main
    stand_in = StoreOp(get_table().op_update(key, expression="SET joined_at = if_not_exists(joined_at, :at), "
                                                              "scene = if_not_exists(scene, :scene)",
                                             values={":at": at, ":scene": fields.get("scene")},
                                             condition="attribute_exists(member_id)"),
                       stale_ok=True, if_stale=main)
    return StoreOp(main.op, stale_ok=True, if_stale=stand_in)


def get_members(corp_id: str, group_id: str, member_ids: list[str]) -> list[MemberItem]:
    items = get_table().batch_get([keys.group_member(corp_id, group_id, m) for m in member_ids])
    return [MemberItem.model_validate(i) for i in items]


def _member_items(corp_id: str, group_id: str) -> list[dict[str, Any]]:
    return get_table().query_all(keys.corp_partition(corp_id), sk_prefix=keys.group_member_prefix(group_id))


def members(corp_id: str, group_id: str) -> list[MemberItem]:
    return [MemberItem.model_validate(i) for i in _member_items(corp_id, group_id)]


FILTERED_READS = 10


def search_groups(corp_id: str, *, owner: str | None = None, code: str | None = None, status: str | None = None,
                  min_members: int | None = None, max_members: int | None = None, name: str | None = None,
                  limit: int, cursor: str | None) -> tuple[list[GroupItem], str | None]:
    """Groups by id, filtered (after DynamoDB reads: a filtered page reads on until it is full or
    `FILTERED_READS` reads were made; follow `next_cursor` until null)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    filters = []
    for attr, op, value in (("owner", "=", owner), ("status", "=", status), ("member_count", ">=", min_members),
                            ("member_count", "<=", max_members)):
        if value is not None:
            names[f"#{attr}"] = attr
            values[f":v{len(values)}"] = value
            filters.append(f"#{attr} {op} :v{len(values) - 1}")
    for attr, value in (("codes", code), ("name", name)):
        if value:
            names[f"#{attr}"] = attr
            values[f":v{len(values)}"] = value
            filters.append(f"contains(#{attr}, :v{len(values) - 1})")
    items, next_cursor = get_table().query_filled(
        keys.groups_partition(corp_id), index=schema.GSI2, limit=limit, cursor=cursor,
        max_reads=FILTERED_READS if filters else 1, filter_expression=" AND ".join(filters) or None,
        names=names or None, values=values or None)
    return [_group(i) for i in items], next_cursor
