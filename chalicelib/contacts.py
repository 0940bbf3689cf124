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
from chalicelib.store.contacts import ACTIVE, ENDED, NO_CHANNEL, CustomerProfile, RelationItem, TimelineEntry

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


def profile_of(contact: Any, *, first_seen_at: int | None = None) -> CustomerProfile:
    """A customer's profile from WeCom's external_contact (externalcontact/get, batch/get_by_user)."""
    return CustomerProfile(customer_id=contact.external_userid, name=contact.name or None,
                           avatar=getattr(contact, "avatar", None), customer_type=getattr(contact, "type", None),
                           gender=getattr(contact, "gender", None), unionid=getattr(contact, "unionid", None),
                           first_seen_at=first_seen_at)


def _profile(ctx: Any) -> CustomerProfile | None:
    """Who the customer is (name, avatar...) when the welcome already read it from WeCom for
    {customer_name}. Not looked up otherwise: a WeCom call per add on this path would wait out
    WeCom's outages in every batch; the daily sync fills the other profiles in."""
    contact = ctx.wecom_reads.get("external_contact")
    return profile_of(contact) if contact is not None else None


HANDOVER_WINDOW = 3600  # seconds between a handover's end (A) and its add (B) for B to inherit A's channel


def _handed_over_from(ctx: Any) -> RelationItem | None:
    """The relation a stateless add takes over: the customer's relation with another staff member
    that ended as 'transferred' shortly before (WeCom sends the handover's add without State)."""
    ev = ctx.event
    ended = [r for r in store.relations_of_customer(ctx.corp_id, ev.external_user_id)
             if r.staff_id != ev.user_id and r.status == "transferred" and r.state
             and abs(ev.create_time - (r.ended_at or r.last_event_at)) <= HANDOVER_WINDOW]
    return max(ended, key=lambda r: r.ended_at or r.last_event_at, default=None)


def _added(ctx: Any, *, status: str, kind: str, counter: str) -> list[Any]:
    ev = ctx.event
    if ev.state:
        return _added_through_a_code(ctx, status=status, kind=kind, counter=counter)
    # Without State: a walk-in or a handover's add. Read the relation: a re-add of an ended one
    # starts it again (its add time, none of its old tags: no channel code marks any here).
    old = store.get_relation(ctx.corp_id, ev.external_user_id, ev.user_id)
    restart = old is not None and old.status in ENDED and old.last_event_at < ev.create_time
    handover = _handed_over_from(ctx) if old is None or old.status in ENDED else None
    state = handover.state if handover else ""
    drop = sorted(old.tags) if restart and old is not None else []
    rel = RelationItem(customer_id=ev.external_user_id, staff_id=ev.user_id, status=status,
                       state=state or None, added_at=ev.create_time, last_event_at=ev.create_time)
    return [
        store.customer_seen(ctx.corp_id, ev.external_user_id, at=ev.create_time, profile=_profile(ctx)),
        store.relation_added(ctx.corp_id, rel, restart=restart, drop_tags=drop,
                             set_tags=handover.tags if handover else None),
        _timeline(ctx, kind, state=state, handed_over_from=handover.staff_id if handover else None),
        *_counts(ctx, ev.user_id, state, **{counter: 1}),
    ]


def _added_through_a_code(ctx: Any, *, status: str, kind: str, counter: str) -> list[Any]:
    """An add with a channel code's State: never a handover (WeCom sends those without State), so
    the relation is not read (one request less per add, the common case); whether it restarts an
    ended relation is left to the store's conditions, with the code's tags as its tags then."""
    from chalicelib import channel_codes

    ev = ctx.event
    code = channel_codes.lookup(ctx.corp_id, ev.state)
    rel = RelationItem(customer_id=ev.external_user_id, staff_id=ev.user_id, status=status,
                       state=ev.state, added_at=ev.create_time, last_event_at=ev.create_time)
    return [
        store.customer_seen(ctx.corp_id, ev.external_user_id, at=ev.create_time, profile=_profile(ctx)),
        store.relation_added(ctx.corp_id, rel, restart_tags=sorted(code.tag_ids) if code else []),
        _timeline(ctx, kind, state=ev.state),
        *_counts(ctx, ev.user_id, ev.state, **{counter: 1}),
    ]


@ROUTER.register(EVENT, "add_external_contact")
def on_add(ctx: Any) -> list[Any]:
    return _added(ctx, status="active", kind="added", counter="adds")


@ROUTER.register(EVENT, "add_half_external_contact")
def on_half_add(ctx: Any) -> list[Any]:
    """The customer added a skip-verify staff member who has not accepted yet: a pending relation."""
    return _added(ctx, status="pending", kind="half_added", counter="half_adds")


def _ended(ctx: Any, *, status: str, kind: str, **details: Any) -> list[store.StoreOp]:
    """An end counts (lost / removed / transferred) only if it ends a relation that was active or
    pending, or one never recorded (a customer from before the product: churn still counts). A
    second end of an already ended relation is recorded (status, timeline) but counts nothing."""
    ev = ctx.event
    rel = store.get_relation(ctx.corp_id, ev.external_user_id, ev.user_id)
    counts = rel is None or rel.status in ACTIVE
    return [
        store.relation_ended(ctx.corp_id, ev.external_user_id, ev.user_id, status=status,  # type: ignore[arg-type]
                             at=ev.create_time, counted_from=rel if counts else False),
        _timeline(ctx, kind, **details),
        *(_counts(ctx, ev.user_id, (rel.state if rel else None) or "", **{status: 1}) if counts else []),
        *(_hand_over(ctx, rel) if status == "transferred" and rel is not None and rel.state else []),
    ]


def _hand_over(ctx: Any, old: RelationItem) -> list[Any]:
    """The handover's add reached us first (without State: the new relation has no channel): give
    it the handed-over relation's channel and tags, and move its add to that channel's counts."""
    ev = ctx.event
    taken = [r for r in store.relations_of_customer(ctx.corp_id, ev.external_user_id)
             if r.staff_id != ev.user_id and r.status in ACTIVE and not r.state and r.added_at
             and r.last_event_at == r.added_at and abs(ev.create_time - r.added_at) <= HANDOVER_WINDOW]
    if not taken:
        return []
    new = max(taken, key=lambda r: r.added_at or 0)
    day = ctx.day_of(new.added_at or 0)
    counter = "adds" if new.status == "active" else "half_adds"
    return [
        store.relation_attributed(ctx.corp_id, new, state=old.state or "", tags=old.tags),
        store.count(day, "channel", NO_CHANNEL, **{counter: -1}),
        store.count(day, "channel", old.state or "", **{counter: 1}),
        store.count(day, "channel_staff", f"{old.state}|{new.staff_id}", **{counter: 1}),
    ]


@ROUTER.register(EVENT, "del_follow_user")
def on_lost(ctx: Any) -> list[store.StoreOp]:
    """The customer removed the staff member: churn."""
    return _ended(ctx, status="lost", kind="lost")


@ROUTER.register(EVENT, "del_external_contact")
def on_removed(ctx: Any) -> list[store.StoreOp]:
    """The staff member removed the customer; DELETE_BY_TRANSFER is a handover, not churn."""
    ev = ctx.event
    transfer = (ev.source or "") == "DELETE_BY_TRANSFER"
    status = "transferred" if transfer else "removed"
    return _ended(ctx, status=status, kind=status, source=ev.source)


@ROUTER.register(EVENT, "edit_external_contact")
def on_edit(ctx: Any) -> list[store.StoreOp]:
    return [_timeline(ctx, "edited")]


@ROUTER.register(EVENT, "transfer_fail")
def on_transfer_fail(ctx: Any) -> list[store.StoreOp]:
    return [_timeline(ctx, "transfer_failed", reason=ctx.event.fail_reason)]
