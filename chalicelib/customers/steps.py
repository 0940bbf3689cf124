"""Customers and their relations with staff members, from change_external_contact events.

A customer who adds two staff members is one customer with two relations. Relations keep their
history: lost (the customer removed the staff member), removed (the staff member removed the
customer) and transferred (a handover moved the customer) are told apart and counted apart.
Counters are daily, in the corp's time zone, per corp / channel / staff member, and are only ever
changed inside the event's exactly-once commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.customers import items as customer_items
from chalicelib.customers.items import ACTIVE, ENDED, NO_CHANNEL, CustomerProfile, RelationItem, TimelineEntry
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import counters

if TYPE_CHECKING:
    from chalicelib.wecom.events import (
        AddExternalContact,
        AddHalfExternalContact,
        DelExternalContact,
        DelFollowUser,
        EditExternalContact,
        TransferFail,
    )


EVENT = "change_external_contact"


def _counts(ctx: EventContext, staff_id: str, channel: str, **increments: int) -> list[Any]:
    counts = [
        counters.count(ctx.day, "corp", "all", **increments),
        counters.count(ctx.day, "channel", channel or NO_CHANNEL, **increments),
        counters.count(ctx.day, "staff", staff_id, **increments),
    ]
    if channel:  # per channel code and staff member: what daily caps are checked against
        counts.append(counters.count(ctx.day, "channel_staff", f"{channel}|{staff_id}", **increments))
    return counts


def _timeline(ctx: EventContext, kind: str, **details: Any) -> customer_items.StoreOp:
    ev = ctx.event
    return customer_items.timeline(
        ctx.corp_id,
        TimelineEntry(customer_id=ev.external_user_id, at=ev.create_time, kind=kind,
                      staff_id=ev.user_id, details={k: v for k, v in details.items() if v}),
        ctx.identity,
    )


def profile_of(contact: Any, *, first_seen_at: int | None = None) -> CustomerProfile:
    """A customer's profile from WeCom's external_contact (externalcontact/get, batch/get_by_user)."""
    return CustomerProfile(customer_id=contact.external_userid, name=contact.name or None,
                           avatar=getattr(contact, "avatar", None), customer_type=getattr(contact, "type", None),
                           gender=getattr(contact, "gender", None), unionid=getattr(contact, "unionid", None),
                           first_seen_at=first_seen_at)


def _profile(ctx: EventContext) -> CustomerProfile | None:
    """Who the customer is (name, avatar...) when the welcome already read it from WeCom for
    {customer_name}. Not looked up otherwise: a WeCom call per add on this path would wait out
    WeCom's outages in every batch; the daily sync fills the other profiles in."""
    return profile_of(ctx.external_contact) if ctx.external_contact is not None else None


HANDOVER_WINDOW = 3600  # seconds between a handover's end (A) and its add (B) for B to inherit A's channel


def _handed_over_from(ctx: EventContext) -> RelationItem | None:
    """The relation a stateless add takes over: the customer's relation with another staff member
    that ended as 'transferred' shortly before (WeCom sends the handover's add without State)."""
    ev = ctx.event
    ended = [r for r in customer_items.relations_of_customer(ctx.corp_id, ev.external_user_id)
             if r.staff_id != ev.user_id and r.status == "transferred" and r.state
             and abs(ev.create_time - (r.ended_at or r.last_event_at)) <= HANDOVER_WINDOW]
    return max(ended, key=lambda r: r.ended_at or r.last_event_at, default=None)


def _added(ctx: EventContext, *, status: str, kind: str, counter: str) -> list[Any]:
    ev = ctx.event
    if ev.state:
        return _added_through_a_code(ctx, status=status, kind=kind, counter=counter)
    # Without State: a walk-in or a handover's add. Read the relation: a re-add of an ended one
    # starts it again (its add time, none of its old tags: no channel code marks any here).
    old = customer_items.get_relation(ctx.corp_id, ev.external_user_id, ev.user_id)
    restart = old is not None and old.status in ENDED and old.last_event_at < ev.create_time
    handover = _handed_over_from(ctx) if old is None or old.status in ENDED else None
    state = handover.state if handover else ""
    drop = sorted(old.tags) if restart and old is not None else []
    rel = RelationItem(customer_id=ev.external_user_id, staff_id=ev.user_id, status=status,
                       state=state or None, added_at=ev.create_time, last_event_at=ev.create_time)
    return [
        customer_items.customer_seen(ctx.corp_id, ev.external_user_id, at=ev.create_time, profile=_profile(ctx)),
        customer_items.relation_added(ctx.corp_id, rel, restart=restart, drop_tags=drop,
                             set_tags=handover.tags if handover else None),
        _timeline(ctx, kind, state=state, handed_over_from=handover.staff_id if handover else None),
        *_counts(ctx, ev.user_id, state, **{counter: 1}),
    ]


def _added_through_a_code(ctx: EventContext, *, status: str, kind: str, counter: str) -> list[Any]:
    """An add with a channel code's State: never a handover (WeCom sends those without State), so
    the relation is not read (one request less per add, the common case); whether it restarts an
    ended relation is left to the store's conditions, with the code's tags as its tags then."""

    ev = ctx.event
    code = ctx.channel_code
    rel = RelationItem(customer_id=ev.external_user_id, staff_id=ev.user_id, status=status,
                       state=ev.state, added_at=ev.create_time, last_event_at=ev.create_time)
    return [
        customer_items.customer_seen(ctx.corp_id, ev.external_user_id, at=ev.create_time, profile=_profile(ctx)),
        customer_items.relation_added(ctx.corp_id, rel, restart_tags=sorted(code.tag_ids) if code else []),
        _timeline(ctx, kind, state=ev.state),
        *_counts(ctx, ev.user_id, ev.state, **{counter: 1}),
    ]


@ROUTER.register(EVENT, "add_external_contact")
def on_add(ctx: EventContext[AddExternalContact]) -> list[Any]:
    return _added(ctx, status="active", kind="added", counter="adds")


@ROUTER.register(EVENT, "add_half_external_contact")
def on_half_add(ctx: EventContext[AddHalfExternalContact]) -> list[Any]:
    """The customer added a skip-verify staff member who has not accepted yet: a pending relation."""
    return _added(ctx, status="pending", kind="half_added", counter="half_adds")


def _ended(ctx: EventContext, *, status: str, kind: str, **details: Any) -> list[customer_items.StoreOp]:
    """An end counts (lost / removed / transferred) only if it ends a relation that was active or
    pending, or one never recorded (a customer from before the product: churn still counts). A
    second end of an already ended relation is recorded (status, timeline) but counts nothing."""
    ev = ctx.event
    rel = customer_items.get_relation(ctx.corp_id, ev.external_user_id, ev.user_id)
    counts = rel is None or rel.status in ACTIVE
    return [
        customer_items.relation_ended(ctx.corp_id, ev.external_user_id, ev.user_id, status=status,  # type: ignore[arg-type]
                             at=ev.create_time, counted_from=rel if counts else False),
        _timeline(ctx, kind, **details),
        *(_counts(ctx, ev.user_id, (rel.state if rel else None) or "", **{status: 1}) if counts else []),
        *(_hand_over(ctx, rel) if status == "transferred" and rel is not None and rel.state else []),
    ]


def _hand_over(ctx: EventContext, old: RelationItem) -> list[Any]:
    """The handover's add reached us first (without State: the new relation has no channel): give
    it the handed-over relation's channel and tags, and move its add to that channel's counts."""
    ev = ctx.event
    taken = [r for r in customer_items.relations_of_customer(ctx.corp_id, ev.external_user_id)
             if r.staff_id != ev.user_id and r.status in ACTIVE and not r.state and r.added_at
             and r.last_event_at == r.added_at and abs(ev.create_time - r.added_at) <= HANDOVER_WINDOW]
    if not taken:
        return []
    new = max(taken, key=lambda r: r.added_at or 0)
    day = ctx.day_of(new.added_at or 0)
    counter = "adds" if new.status == "active" else "half_adds"
    return [
        customer_items.relation_attributed(ctx.corp_id, new, state=old.state or "", tags=old.tags),
        counters.count(day, "channel", NO_CHANNEL, **{counter: -1}),
        counters.count(day, "channel", old.state or "", **{counter: 1}),
        counters.count(day, "channel_staff", f"{old.state}|{new.staff_id}", **{counter: 1}),
    ]


@ROUTER.register(EVENT, "del_follow_user")
def on_lost(ctx: EventContext[DelFollowUser]) -> list[customer_items.StoreOp]:
    """The customer removed the staff member: churn."""
    return _ended(ctx, status="lost", kind="lost")


@ROUTER.register(EVENT, "del_external_contact")
def on_removed(ctx: EventContext[DelExternalContact]) -> list[customer_items.StoreOp]:
    """The staff member removed the customer; DELETE_BY_TRANSFER is a handover, not churn."""
    ev = ctx.event
    transfer = (ev.source or "") == "DELETE_BY_TRANSFER"
    status = "transferred" if transfer else "removed"
    return _ended(ctx, status=status, kind=status, source=ev.source)


@ROUTER.register(EVENT, "edit_external_contact")
def on_edit(ctx: EventContext[EditExternalContact]) -> list[customer_items.StoreOp]:
    return [_timeline(ctx, "edited")]


@ROUTER.register(EVENT, "transfer_fail")
def on_transfer_fail(ctx: EventContext[TransferFail]) -> list[customer_items.StoreOp]:
    return [_timeline(ctx, "transfer_failed", reason=ctx.event.fail_reason)]
