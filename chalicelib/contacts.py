"""Customers and their relations with staff members, from change_external_contact events.

A customer who adds two staff members is one customer with two relations. Relations keep their
history: lost (the customer removed the staff member), removed (the staff member removed the
customer) and transferred (a handover moved the customer) are told apart and counted apart.
Counters are daily, in the corp's time zone, per corp / channel / staff member, and are only ever
changed inside the event's exactly-once commit.
"""

from __future__ import annotations

from typing import Any

from chalicelib.router import ROUTER
from chalicelib.store import contacts as store
from chalicelib.store.contacts import NO_CHANNEL, CustomerProfile, RelationItem, TimelineEntry

EVENT = "change_external_contact"


def _counts(ctx: Any, staff_id: str, channel: str, **increments: int) -> list[Any]:
    counts = [
        store.count(ctx.day, "corp", "all", **increments),
        store.count(ctx.day, "channel", channel or NO_CHANNEL, **increments),
        store.count(ctx.day, "staff", staff_id, **increments),
    ]
    if channel:  # per channel code and staff member: what daily caps are checked against
        counts.append(store.count(ctx.day, "channel_staff", f"{channel}|{staff_id}", **increments))
    return counts


def _timeline(ctx: Any, kind: str, **details: Any) -> store.StoreOp:
    ev = ctx.event
    return store.timeline(
        ctx.corp_id,
        TimelineEntry(customer_id=ev.external_user_id, at=ev.create_time, kind=kind,
                      staff_id=ev.user_id, details={k: v for k, v in details.items() if v}),
        ctx.identity,
    )


def _profile(ctx: Any) -> CustomerProfile | None:
    """Who the customer is (name, avatar...) when the welcome already read it from WeCom for
    {customer_name}. Not looked up otherwise: a WeCom call per add on this path would wait out
    WeCom's outages in every batch; the daily sync fills the other profiles in."""
    contact = ctx.wecom_reads.get("external_contact")
    if contact is None:
        return None
    return CustomerProfile(customer_id=contact.external_userid, name=contact.name or None, avatar=contact.avatar,
                           customer_type=contact.type, gender=contact.gender, unionid=contact.unionid)


def _added(ctx: Any, *, status: str, kind: str, counter: str) -> list[Any]:
    ev = ctx.event
    state = ev.state or ""
    rel = RelationItem(customer_id=ev.external_user_id, staff_id=ev.user_id, status=status,
                       state=state or None, added_at=ev.create_time, last_event_at=ev.create_time)
    return [
        store.customer_seen(ctx.corp_id, ev.external_user_id, at=ev.create_time, profile=_profile(ctx)),
        store.relation_added(ctx.corp_id, rel),
        _timeline(ctx, kind, state=state),
        *_counts(ctx, ev.user_id, state, **{counter: 1}),
    ]


@ROUTER.register(EVENT, "add_external_contact")
def on_add(ctx: Any) -> list[Any]:
    return _added(ctx, status="active", kind="added", counter="adds")


@ROUTER.register(EVENT, "add_half_external_contact")
def on_half_add(ctx: Any) -> list[Any]:
    """The customer added a skip-verify staff member who has not accepted yet: a pending relation."""
    return _added(ctx, status="pending", kind="half_added", counter="half_adds")


def _channel_of(ctx: Any) -> str:
    rel = store.get_relation(ctx.corp_id, ctx.event.external_user_id, ctx.event.user_id)
    return (rel.state if rel else None) or ""


@ROUTER.register(EVENT, "del_follow_user")
def on_lost(ctx: Any) -> list[store.StoreOp]:
    """The customer removed the staff member: churn."""
    ev = ctx.event
    return [
        store.relation_ended(ctx.corp_id, ev.external_user_id, ev.user_id, status="lost",
                             at=ev.create_time),
        _timeline(ctx, "lost"),
        *_counts(ctx, ev.user_id, _channel_of(ctx), lost=1),
    ]


@ROUTER.register(EVENT, "del_external_contact")
def on_removed(ctx: Any) -> list[store.StoreOp]:
    """The staff member removed the customer; DELETE_BY_TRANSFER is a handover, not churn."""
    ev = ctx.event
    transfer = (ev.source or "") == "DELETE_BY_TRANSFER"
    status = "transferred" if transfer else "removed"
    return [
        store.relation_ended(ctx.corp_id, ev.external_user_id, ev.user_id, status=status,
                             at=ev.create_time),
        _timeline(ctx, status, source=ev.source),
        *_counts(ctx, ev.user_id, _channel_of(ctx), **{status: 1}),
    ]


@ROUTER.register(EVENT, "edit_external_contact")
def on_edit(ctx: Any) -> list[store.StoreOp]:
    return [_timeline(ctx, "edited")]


@ROUTER.register(EVENT, "transfer_fail")
def on_transfer_fail(ctx: Any) -> list[store.StoreOp]:
    return [_timeline(ctx, "transfer_failed", reason=ctx.event.fail_reason)]
