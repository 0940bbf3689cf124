"""Customer groups, from change_external_chat events: which groups exist, who joined and left.

WeCom's group events can arrive out of order or be lost, so every write is guarded by the
event's CreateTime (older events never overwrite newer state), and member counts by WeCom's
member versions (`LastMemVer` -> `CurMemVer`): an event applies its change only from the version it
starts at; a gap means a lost or reordered callback and re-reads groupchat/get (items.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.groups import items as group_items
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import counters, keys

if TYPE_CHECKING:
    from chalicelib.wecom.events import ExternalChatCreate, ExternalChatDismiss, ExternalChatUpdate


EVENT = "change_external_chat"


JOIN_SCENE_SCAN = 3  # the callback's JoinScene: 3 scanned a group QR code, 0 invited (directly or by link)
QUIT_SCENE_REMOVED = 1


def _count(ctx: EventContext, codes: list[str] | tuple[str, ...] = (), **increments: int) -> list[Any]:
    """Daily counters for the corp, the group and each group code that lists the group (stats)."""
    return [
        counters.count(ctx.day, "corp", "all", **increments),
        counters.count(ctx.day, "group", ctx.event.chat_id, **increments),
        *(counters.count(ctx.day, "group_code", code, **increments) for code in codes),
    ]


@ROUTER.register(EVENT, "create")
def on_create(ctx: EventContext[ExternalChatCreate]) -> list[Any]:
    ev = ctx.event
    return [group_items.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="active",
                                created=True),
            *_count(ctx, groups_created=1)]


@ROUTER.register(EVENT, "dismiss")
def on_dismiss(ctx: EventContext[ExternalChatDismiss]) -> list[Any]:
    ev = ctx.event
    return [group_items.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="dismissed"),
            *_count(ctx, groups_dismissed=1)]


def group_read(corp_id: str, ev: ExternalChatUpdate) -> list[dict[str, str]]:
    """The group item an update's steps read (ctx.group): read with the event's record."""
    return [keys.group(corp_id, ev.chat_id)] if ev.update_detail in ("add_member", "del_member") else []


@ROUTER.register(EVENT, "update", reads=group_read)
def on_update(ctx: EventContext[ExternalChatUpdate]) -> list[Any]:
    ev = ctx.event
    detail = ev.update_detail
    members = list(ev.mem_change_list or [])
    fields: dict[str, Any] = {}
    ops: list[Any] = []
    count = None
    changed = ev.mem_change_cnt or len(members)
    membership = detail in ("add_member", "del_member")
    seen = _group_for_count(ctx) if membership else None
    if membership:
        ctx.writes(keys.group(ctx.corp_id, ev.chat_id))
        count = _count_change(ctx, seen, changed if detail == "add_member" else -changed)
    if detail == "add_member":
        ops += group_items.members_changed(ctx.corp_id, ev.chat_id, members, status="joined", at=ev.create_time,
                                           scene=ev.join_scene)
        scan = ev.join_scene == JOIN_SCENE_SCAN
        ops += _count(ctx, seen.codes if scan and seen else (), members_joined=changed,
                      **{"joins_scan" if scan else "joins_invite": changed})
    elif detail == "del_member":
        ops += group_items.members_changed(ctx.corp_id, ev.chat_id, members, status="left", at=ev.create_time,
                                           scene=ev.quit_scene)
        ops += _count(ctx, members_left=changed,
                      **({"members_removed": changed} if ev.quit_scene == QUIT_SCENE_REMOVED else {}))
    else:
        fields["last_change"] = detail or "unknown"
    group_op = group_items.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="active",
                                         fields=fields, count=count, seen=seen)
    return ops + ([group_op] if group_op else [])


def _count_change(ctx: EventContext[ExternalChatUpdate], seen: group_items.GroupItem | None,
                  delta: int) -> group_items.CountChange | None:
    """Move the exact member count by `delta` if the stored version is where this event starts;
    otherwise the event is already included (its versions are behind the stored one, or a stored
    read of groupchat/get came after it) or there is a gap, which a read of groupchat/get repairs
    now."""
    from chalicelib.groups import service

    ev = ctx.event
    if not (ev.last_mem_ver and ev.cur_mem_ver):
        return None  # an event without versions cannot be placed: the daily sync corrects the count
    if seen is not None and seen.member_count is not None:
        if seen.member_version == ev.last_mem_ver:
            return group_items.CountChange(seen, ev.last_mem_ver, ev.cur_mem_ver, delta)
        if _in_read(ev, seen, delta) or _counted(ev, seen):
            return None  # already counted: a read after this change, or a later event's read
        if delta > 0 and _read_after_join(ctx):
            return None  # a read already saw these members joined at or after this event
    from chalicelib.corps import registry as corps

    service.refresh_members(ctx.corp_id, ev.chat_id, client=corps.wecom_client(ctx.corp_id))
    return None


def _group_for_count(ctx: EventContext[ExternalChatUpdate]) -> group_items.GroupItem | None:
    """The group as this event's count needs it: the copy read with the event when that copy is
    already past the event (being past a change never reverts), else as it stands now (another
    event of the batch may have moved it since)."""
    ev = ctx.event
    held = group_items.group_of(ctx.held(keys.group(ctx.corp_id, ev.chat_id)))
    delta = 1 if ev.update_detail == "add_member" else -1
    if held is not None and held.member_count is not None and (_in_read(ev, held, delta) or _counted(ev, held)):
        return held
    return ctx.group


def _in_read(ev: ExternalChatUpdate, seen: group_items.GroupItem, delta: int) -> bool:
    return group_items.in_read(seen, at=ev.create_time, joined=list(ev.mem_change_list or []) if delta > 0 else None)


def _counted(ev: ExternalChatUpdate, seen: group_items.GroupItem) -> bool:
    return ev.cur_mem_ver == seen.member_version or ev.last_mem_ver in seen.member_history


def _read_after_join(ctx: EventContext[ExternalChatUpdate]) -> bool:
    """Whether the last read of groupchat/get came after this add_member event: it listed each
    joined member with a join time (WeCom's clock, as the event's CreateTime) at or after it."""
    ev = ctx.event
    if not ev.mem_change_list:
        return False
    found = group_items.get_members(ctx.corp_id, ev.chat_id, list(ev.mem_change_list))
    return len(found) == len(set(ev.mem_change_list)) and all(
        m.status == "joined" and m.join_time is not None and m.join_time >= ev.create_time for m in found)
