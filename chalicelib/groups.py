"""Customer groups, from change_external_chat events: which groups exist, who joined and left.

WeCom's group events can arrive out of order or be lost, so every write is guarded by the
event's CreateTime (older events never overwrite newer state); a later sync re-pulls
groupchat/get for the authoritative member list (group codes build on this).
"""

from __future__ import annotations

from typing import Any

from chalicelib.router import ROUTER
from chalicelib.store import contacts as counters
from chalicelib.store import groups as store

EVENT = "change_external_chat"


def _count(ctx: Any, **increments: int) -> list[Any]:
    return [
        counters.count(ctx.day, "corp", "all", **increments),
        counters.count(ctx.day, "group", ctx.event.chat_id, **increments),
    ]


@ROUTER.register(EVENT, "create")
def on_create(ctx: Any) -> list[Any]:
    ev = ctx.event
    return [store.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="active",
                                created=True),
            *_count(ctx, groups_created=1)]


@ROUTER.register(EVENT, "dismiss")
def on_dismiss(ctx: Any) -> list[Any]:
    ev = ctx.event
    return [store.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="dismissed"),
            *_count(ctx, groups_dismissed=1)]


@ROUTER.register(EVENT, "update")
def on_update(ctx: Any) -> list[Any]:
    ev = ctx.event
    detail = ev.update_detail
    members = list(ev.mem_change_list or [])
    fields: dict[str, Any] = {"member_version": ev.cur_mem_ver} if ev.cur_mem_ver else {}
    ops: list[Any] = []
    if detail == "add_member":
        store.put_members(ctx.corp_id, ev.chat_id, members, status="joined", at=ev.create_time,
                          scene=ev.join_scene)
        ops += _count(ctx, members_joined=ev.mem_change_cnt or len(members))
    elif detail == "del_member":
        store.put_members(ctx.corp_id, ev.chat_id, members, status="left", at=ev.create_time,
                          scene=ev.quit_scene)
        ops += _count(ctx, members_left=ev.mem_change_cnt or len(members))
    else:
        fields["last_change"] = detail or "unknown"
    ops.append(store.group_changed(ctx.corp_id, ev.chat_id, at=ev.create_time, status="active",
                                   fields=fields))
    return ops
