"""Group codes from change_external_chat: a join that pushes a listed group to the threshold
rotates the code's join way (service.after_join; exactly once: items.claim_rotation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.groups.steps import group_read
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import keys

if TYPE_CHECKING:
    from chalicelib.wecom.events import ExternalChatUpdate


# Urgent: runs for a whole batch before the other steps of any message, so a crossing in the
# tenth message of a batch does not wait for nine transactions (p99 < 1 s after the callback).
@ROUTER.register("change_external_chat", "update", urgent=True, reads=group_read)
def rotate_on_join(ctx: EventContext[ExternalChatUpdate]) -> list[Any]:
    ev = ctx.event
    if ev.update_detail != "add_member":
        return []  # a member leaving opens a seat: the minute tick lists the group again
    from chalicelib.group_codes import service

    ops: list[Any] = []
    codes = service.codes_of_chat(ctx.corp_id, ev.chat_id)
    if not codes and ev.join_scene == service.JOIN_SCENE_SCAN:  # a room WeCom auto-created for a code?
        adopted = service.adopt_room(ctx.corp_id, ev.chat_id, members=list(ev.mem_change_list or []),
                                     seen=ctx.group, now=ctx.now)
        if adopted is None:
            return []
        ctx.forget(keys.group(ctx.corp_id, ev.chat_id))  # the room's read was stored: groups' step re-reads
        codes = [adopted]
    behind = ctx.now - ctx.received_at_ms / 1000 > service.BEHIND_SECONDS  # the queue has a backlog
    for code_id in codes:
        handled = service.after_join(ctx.corp_id, code_id, ev.chat_id, members=list(ev.mem_change_list or []),
                                     scene=ev.join_scene, versions=(ev.last_mem_ver, ev.cur_mem_ver),
                                     group=ctx.group, day=ctx.day, now=ctx.now, at=ev.create_time,
                                     behind=behind)
        ops += handled.ops
        if handled.read_stored:  # groups' step counts the event from the stored read: re-read
            ctx.forget(keys.group(ctx.corp_id, ev.chat_id))
    return ops
