"""Tag steps of callback events: the library re-read on change_external_tag, a channel code's
tags marked on a new relation, a staff member's tag edits in the WeCom client mirrored."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.customers import items as customer_items
from chalicelib.customers.items import TimelineEntry
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import counters
from chalicelib.tags import items as tag_items
from chalicelib.tags import service

if TYPE_CHECKING:
    from chalicelib.wecom.events import AddExternalContact, EditExternalContact, ExternalTagEvent


logger = logging.getLogger(__name__)


@ROUTER.register("change_external_tag")
def on_tag_library_changed(ctx: EventContext[ExternalTagEvent]) -> list[Any]:
    """The events carry only ids (and a deleted group takes its tags without per-tag events):
    re-read the whole library. Idempotent, so a retried event is harmless."""
    service.sync_library(ctx.corp_id)
    return []


@ROUTER.register("change_external_contact", "add_external_contact")
def apply_channel_tags(ctx: EventContext[AddExternalContact]) -> list[Any]:
    """Mark the channel code's tags on the new relation. Not on add_half_external_contact: the
    relation is not accepted yet and WeCom would answer 84061; its add_external_contact follows."""
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import MarkTagRequest

    ev = ctx.event
    code = ctx.channel_code
    if code is None or not code.tag_ids:
        return []
    # A tag deleted since the code was made would fail the whole mark (40068): mark the rest.
    known = service.library_ids(ctx.corp_id)
    tag_ids = [t for t in code.tag_ids if t in known]
    if not tag_ids:
        return []
    try:
        corps.wecom_client(ctx.corp_id).mark_tag(MarkTagRequest(
            userid=ev.user_id, external_userid=ev.external_user_id, add_tag=tag_ids))
    except errors.NoRelation:
        logger.info("relation %s/%s gone before tagging", ev.user_id, ev.external_user_id)
        return []
    except errors.InvalidArgument as exc:  # retrying cannot help: log, count nothing, go on
        logger.error("channel code %s: WeCom refused its tags %s: %r", code.state, tag_ids, exc)
        return []
    # Adding to a set is idempotent: written directly, not in the event's transaction (whose add
    # step writes the relation item, which one transaction may touch only once). Its timeline entry
    # goes through the commit: exactly once.
    tag_items.apply_relation_tags(ctx.corp_id, ev.external_user_id, ev.user_id, add=tag_ids, remove=[])
    # On every dimension the stats read (as contacts and welcome count), or totals depend on `by`.
    return [_tags_changed(ctx, service.tag_change(sorted(tag_ids), [], source="channel_code", state=code.state)),
            counters.count(ctx.day, "corp", "all", tags_marked=1),
            counters.count(ctx.day, "channel", code.state, tags_marked=1),
            counters.count(ctx.day, "staff", ev.user_id, tags_marked=1)]


@ROUTER.register("change_external_contact", "edit_external_contact")
def sync_relation_tags(ctx: EventContext[EditExternalContact]) -> list[Any]:
    """A staff member edited the customer in the WeCom client (tags, remark): the event says only
    who, so read the relation's corp tags from WeCom now. Reading the current state makes an old
    or repeated event harmless."""
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors

    ev = ctx.event
    try:
        resp = corps.wecom_client(ctx.corp_id).get_external_contact(ev.external_user_id)
    except errors.NotFound:
        return []
    follow = next((f for f in resp.follow_user if f.userid == ev.user_id), None)
    if follow is None:
        return []
    corp_tags = sorted(t.tag_id for t in follow.tags if t.tag_id and t.type == 1)
    rel = customer_items.get_relation(ctx.corp_id, ev.external_user_id, ev.user_id)
    if rel is None:
        return []  # the relation arrives with its add event or the next full sync
    added, removed = sorted(set(corp_tags) - set(rel.tags)), sorted(set(rel.tags) - set(corp_tags))
    if not added and not removed:
        return []  # an old or repeated event: the mirror already holds what WeCom holds
    return [tag_items.relation_tags_set(ctx.corp_id, ev.external_user_id, ev.user_id, corp_tags),
            _tags_changed(ctx, service.tag_change(added, removed, source="staff"))]


def _tags_changed(ctx: EventContext, details: dict[str, Any]) -> Any:
    """The relation's `tags_changed` timeline entry, written by the event's commit (exactly once)."""
    ev = ctx.event
    return customer_items.timeline(ctx.corp_id, TimelineEntry(
        customer_id=ev.external_user_id, at=ev.create_time, kind="tags_changed", staff_id=ev.user_id,
        details=details), ctx.identity)
