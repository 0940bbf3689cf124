"""Customers (客户) as operators look them up: filtered lists and one customer's whole story."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from chalicelib.customers.items import CustomerProfile, RelationItem, TimelineEntry
from chalicelib.platform.errors import NotFound
from chalicelib.platform.model import Model


class CustomerQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    tag: str | None = Field(None, description="tag id the relation carries")
    staff_id: str | None = None
    channel: str | None = Field(None, description="channel code state; `-`: contacts that came through none")
    status: Literal["active", "pending", "lost", "removed", "transferred"] | None = None
    added_from: int | None = Field(None, ge=0, description="epoch seconds, inclusive")
    added_to: int | None = Field(None, ge=0, description="epoch seconds, inclusive")


class CustomerDetail(Model):
    customer_id: str
    profile: CustomerProfile | None
    relations: list[RelationItem]
    tags: list[str] = Field(description="union of the tags on all relations")
    timeline: list[TimelineEntry]


class CustomerNotFound(NotFound):
    what = "customer"


def search(corp_id: str, q: CustomerQuery) -> tuple[list[RelationItem], str | None]:
    from chalicelib.customers import items as customer_items

    return customer_items.search_relations(corp_id, staff_id=q.staff_id, tag=q.tag, channel=q.channel, status=q.status,
                                  added_from=q.added_from, added_to=q.added_to, limit=q.limit, cursor=q.cursor)


def require_known(corp_id: str, customer_id: str) -> None:
    """CustomerNotFound unless we know the customer: it has a relation with some staff member,
    current or ended (every customer we record has one; its profile may come later)."""
    from chalicelib.customers import items as customer_items

    if not customer_items.relations_of_customer(corp_id, customer_id):
        raise CustomerNotFound(customer_id)


def detail(corp_id: str, customer_id: str) -> CustomerDetail:
    from chalicelib.customers import items as customer_items

    items = customer_items.items_of_customer(corp_id, customer_id)
    if not items:
        raise CustomerNotFound(customer_id)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for item in items:  # an item with only tags so far has no type yet: it is a relation
        by_type.setdefault(item.get("type", "relation"), []).append(item)
    profile = by_type.get("customer")
    relations = [RelationItem.model_validate(i) for i in by_type.get("relation", []) if "status" in i]
    timeline = [TimelineEntry.model_validate(i) for i in by_type.get("timeline", [])]
    return CustomerDetail(
        customer_id=customer_id,
        profile=CustomerProfile.model_validate(profile[0]) if profile else None,
        relations=relations,
        tags=sorted({t for r in relations for t in r.tags}),
        timeline=sorted(timeline, key=lambda e: e.at),
    )
