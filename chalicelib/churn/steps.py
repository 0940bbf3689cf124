"""Churn from change_external_contact: a relation the customer ended (del_follow_user: lost) or the
staff member ended (del_external_contact, not DELETE_BY_TRANSFER: removed) is recorded with what the
relation was (channel code, tags, date added, whether a welcome went out), in the event's commit. With
churn alerts on, a customer deleting a member also queues an alert in that commit: exactly once per
churn, whatever the replays. In per-event mode the alert is sent right after the commit (`alert_now`);
digests, and alerts WeCom refused, go out with the minute tick (service.flush).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.churn import items as churn_items
from chalicelib.churn.items import ChurnItem
from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER
from chalicelib.store import keys

if TYPE_CHECKING:
    from chalicelib.wecom.events import DelExternalContact, DelFollowUser

logger = logging.getLogger(__name__)

EVENT = "change_external_contact"


def _settings_key(corp_id: str, event: Any) -> list[dict[str, str]]:
    return [keys.churn_alert_settings(corp_id)]


def _settings(ctx: EventContext) -> churn_items.AlertSettings:
    return churn_items.settings_of(ctx.item(keys.churn_alert_settings(ctx.corp_id)))


def _churn(ctx: EventContext, kind: str) -> ChurnItem | None:
    """The churn as the relation stood before this end; None when the relation had ended already."""
    from chalicelib.customers import items as customer_items

    ev = ctx.event
    found = customer_items.items_of_customer(ctx.corp_id, ev.external_user_id)
    rel = next((i for i in found if i.get("type") == "relation" and i.get("staff_id") == ev.user_id), None)
    if rel is not None and rel.get("status") in customer_items.ENDED:
        return None
    customer = next((i for i in found if i.get("type") == "customer"), {})
    welcomed = any(i.get("type") == "timeline" and i.get("kind") == "welcome_sent" and i.get("staff_id") == ev.user_id
                   for i in found)
    rel = rel or {}
    return ChurnItem(customer_id=ev.external_user_id, staff_id=ev.user_id, kind=kind, at=ev.create_time,  # type: ignore[arg-type]
                     customer_name=customer.get("name") or None, channel=rel.get("state") or None,
                     tags=sorted(rel.get("tags") or []), added_at=rel.get("added_at"), welcome_sent=welcomed)


def _recorded(ctx: EventContext, kind: str) -> list[Any]:
    churn = _churn(ctx, kind)
    if churn is None:
        return []
    alert = kind == "lost" and _settings(ctx).enabled
    if alert:
        churn.alert = "pending"
    return [churn_items.churn_recorded(ctx.corp_id, churn), *([churn_items.alert_queued(ctx.corp_id, churn)]
                                                              if alert else [])]


@ROUTER.register(EVENT, "del_follow_user", reads=_settings_key)
def customer_left(ctx: EventContext[DelFollowUser]) -> list[Any]:
    return _recorded(ctx, "lost")


@ROUTER.register(EVENT, "del_external_contact", reads=_settings_key)
def staff_removed(ctx: EventContext[DelExternalContact]) -> list[Any]:
    if (ctx.event.source or "") == "DELETE_BY_TRANSFER":
        return []  # a handover, not churn
    return _recorded(ctx, "removed")


def _alert_now_needed(ctx: EventContext) -> bool:
    s = _settings(ctx)
    return s.enabled and s.mode == "event"


@ROUTER.register(EVENT, "del_follow_user", after_commit=True, needed=_alert_now_needed, reads=_settings_key)
def alert_now(ctx: EventContext[DelFollowUser]) -> list[Any]:
    """Per-event alerts go out as soon as the churn is committed. Never fails the event: what is not
    sent now is sent (or retried, or recorded as refused) by the minute tick."""
    from chalicelib.churn import service

    try:
        service.flush(ctx.corp_id, now=ctx.now)
    except Exception:  # noqa: BLE001 - the alert stays pending for the tick
        logger.exception("churn alert for %s not sent now; the tick retries", ctx.identity)
    return []
