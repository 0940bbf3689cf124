"""Customer groups, from change_external_chat events: which groups exist, who joined and left.

WeCom's group events can arrive out of order or be lost, so every write is guarded by the
event's CreateTime (older events never overwrite newer state); a later sync re-pulls
groupchat/get for the authoritative member list (group codes build on this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.groups import items as group_items
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import counters

if TYPE_CHECKING:
    from chalicelib.wecom.events import ExternalChatCreate, ExternalChatDismiss, ExternalChatUpdate


EVENT = "change_external_chat"


def _count(ctx: EventContext, **increments: int) -> list[Any]:
    return [
        counters.count(ctx.day, "corp", "all", **increments),
        counters.count(ctx.day, "group", ctx.event.chat_id, **increments),
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


@ROUTER.register(EVENT, "update")
def on_update(ctx: EventContext[ExternalChatUpdate]) -> list[Any]:
    ev = ctx.event
    detail = ev.update_detail
    members = list(ev.mem_change_list or [])
    fields: dict[str, Any] = {"member_version": ev.cur_mem_ver} if ev.cur_mem_ver else {}
    ops: list[Any] = []
    if detail == "add_member":
        group_items.put_members(ctx.corp_id, ev.chat_id, members, status="joined", at=ev.create_time,
                          scene=ev.join_scene)
        ops += _count(ctx, members_joined=ev.mem_change_cnt or len(members))
    elif detail == "del_member":
        group_items.put_members(ctx.corp_id, ev.chat_id, members, status="left", at=ev.create_time,
                          scene=ev.quit_scene)
        ops += _count(ctx, members_left=ev.mem_change_cnt or len(members))
    else:
        fields["last_change"] = detail or "unknown"
    ops.append(group_items.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="active",
                                   fields=fields))
    return ops
