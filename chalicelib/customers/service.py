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


class TagRef(Model):
    tag_id: str
    name: str | None = Field(description="null for a tag no longer in the library")


class CustomerRow(RelationItem):
    """A relation as operators read it: with the customer's and the staff member's names and the tags' names."""

    customer_name: str | None = Field(None, description="from the customer's stored profile; null if not known yet")
    staff_name: str | None = Field(None, description="from the staff directory (GET /staff); null if not known")
    tag_details: list[TagRef] = Field(default_factory=list, description="`tags` with their names")


class CustomerDetail(Model):
    customer_id: str
    profile: CustomerProfile | None
    relations: list[CustomerRow]
    tags: list[str] = Field(description="union of the tags on all relations")
    tag_details: list[TagRef] = Field(default_factory=list, description="`tags` with their names")
    timeline: list[TimelineEntry]


class CustomerNotFound(NotFound):
    what = "customer"


def search(corp_id: str, q: CustomerQuery) -> tuple[list[CustomerRow], str | None]:
    from chalicelib.customers import items as customer_items

    relations, cursor = customer_items.search_relations(
        corp_id, staff_id=q.staff_id, tag=q.tag, channel=q.channel, status=q.status, added_from=q.added_from,
        added_to=q.added_to, limit=q.limit, cursor=q.cursor)
    profiles = customer_items.profiles(corp_id, [r.customer_id for r in relations]) if relations else {}
    return _named(corp_id, relations, {c: p.name for c, p in profiles.items()}), cursor


def _tag_refs(tag_ids: list[str], names: dict[str, str]) -> list[TagRef]:
    return [TagRef(tag_id=t, name=names.get(t)) for t in tag_ids]


def _named(corp_id: str, relations: list[RelationItem], customer_names: dict[str, str | None]) -> list[CustomerRow]:
    """Names beside ids, read in bulk: the staff directory once, tag names from the cached library."""
    if not relations:
        return []
    from chalicelib.corps import staff
    from chalicelib.tags import service as tags

    staff_names = staff.names(corp_id)
    tag_names = tags.tag_names(corp_id, {t for r in relations for t in r.tags})
    return [CustomerRow(**r.model_dump(), customer_name=customer_names.get(r.customer_id),
                        staff_name=staff_names.get(r.staff_id), tag_details=_tag_refs(r.tags, tag_names))
            for r in relations]


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
    stored = CustomerProfile.model_validate(profile[0]) if profile else None
    rows = _named(corp_id, relations, {customer_id: stored.name if stored else None})
    tags = sorted({t for r in relations for t in r.tags})
    return CustomerDetail(
        customer_id=customer_id,
        profile=stored,
        relations=rows,
        tags=tags,
        tag_details=_tag_refs(tags, {ref.tag_id: ref.name for r in rows for ref in r.tag_details if ref.name}),
        timeline=sorted(timeline, key=lambda e: e.at),
    )
