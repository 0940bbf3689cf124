"""A handover's customers settled by WeCom's transfer callbacks, in the event's exactly-once commit:
del_external_contact Source=DELETE_BY_TRANSFER (on the member handed over) -> done; transfer_fail (on
the takeover) -> refused (customer_refused) or takeover_full (customer_limit_exceed). The customers
capability records the same events on the relations (and gives the takeover's relation the channel and
tags of a handed-over relation that came through a channel code); these steps follow the handover, and
give the takeover's relation the tags of a handed-over relation without a channel code (`tags_kept`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.handovers import items
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import keys

if TYPE_CHECKING:
    from chalicelib.wecom.events import AddExternalContact, DelExternalContact, TransferFail

EVENT = "change_external_contact"
FAIL_REASONS = {"customer_refused": "refused", "customer_limit_exceed": "takeover_full"}


def _pointer(corp_id: str, event: Any) -> list[dict[str, str]]:
    return [keys.handover_pointer(corp_id, event.external_user_id, event.user_id)]


def _handover_of(ctx: EventContext) -> str | None:
    return items.pointer_of(ctx.item(_pointer(ctx.corp_id, ctx.event)[0]))


@ROUTER.register(EVENT, "del_external_contact", reads=_pointer)
def transferred(ctx: EventContext[DelExternalContact]) -> list[Any]:
    ev = ctx.event
    handover_id = _handover_of(ctx) if (ev.source or "") == "DELETE_BY_TRANSFER" else None
    if handover_id is None:
        return []
    return [items.settled_by_callback(ctx.corp_id, handover_id, ev.external_user_id, status="done",
                                      at=ev.create_time)]


@ROUTER.register(EVENT, "transfer_fail", reads=_pointer)
def transfer_failed(ctx: EventContext[TransferFail]) -> list[Any]:
    ev = ctx.event
    handover_id = _handover_of(ctx)
    if handover_id is None:
        return []
    reason = ev.fail_reason or ""
    return [items.settled_by_callback(ctx.corp_id, handover_id, ev.external_user_id,
                                      status=FAIL_REASONS.get(reason, "failed"), at=ev.create_time,  # type: ignore[arg-type]
                                      reason=reason or None)]


def _tags_to_keep(ctx: EventContext) -> tuple[str, list[str]] | None:
    """(from staff, tags) when this add is a handover's and the relation handed over had tags but no
    channel code (the customers capability carries those with a channel code over itself)."""
    from chalicelib.customers import items as customer_items

    ev = ctx.event
    if getattr(ev, "state", None):
        return None
    pointer = ctx.item(_pointer(ctx.corp_id, ev)[0])
    if not pointer or not pointer.get("from_staff_id"):
        return None
    old = customer_items.get_relation(ctx.corp_id, ev.external_user_id, pointer["from_staff_id"])
    if old is None or old.state or not old.tags:
        return None
    return pointer["from_staff_id"], sorted(old.tags)


# No `reads`: an add through a channel code (the common case) is never a handover's and reads nothing
# more; only an add without State reads the pointer (its own GetItem).
@ROUTER.register(EVENT, "add_external_contact", after_commit=True, needed=lambda ctx: _tags_to_keep(ctx) is not None)
def tags_kept(ctx: EventContext[AddExternalContact]) -> list[Any]:
    """After the add's commit (the relation exists): the handed-over relation's tags added to it."""
    from chalicelib.store import get_table
    from chalicelib.store.events import StoreOp

    kept = _tags_to_keep(ctx)
    if kept is None:
        return []
    ev = ctx.event
    return [StoreOp(get_table().op_update(
        keys.relation(ctx.corp_id, ev.external_user_id, ev.user_id), expression="ADD tags :tags",
        values={":tags": set(kept[1])}, condition="attribute_exists(last_event_at)"), stale_ok=True)]
