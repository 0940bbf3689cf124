"""The corp's tag library (tag groups and tags), mirrored from WeCom."""

from __future__ import annotations

from typing import Any

from chalicelib.platform.model import Model
from chalicelib.store import get_table, keys


class TagItem(Model):
    tag_id: str
    name: str
    group_id: str
    group_name: str
    order: int = 0
    created_at: int | None = None


def replace_library(corp_id: str, tags: list[TagItem]) -> tuple[int, int]:
    """Make the stored library equal to `tags` (WeCom's answer to get_corp_tag_list).
    Returns (written, deleted). Idempotent: running it twice changes nothing more."""
    table = get_table()
    existing = {i["tag_id"]: i for i in table.query_all(keys.corp_partition(corp_id), sk_prefix=keys.tag_prefix())}
    wanted = {t.tag_id: t for t in tags}
    written = 0
    for tag in tags:
        old = existing.get(tag.tag_id)
        new = {**keys.tag(corp_id, tag.tag_id), "type": "tag", **tag.model_dump()}
        if old is None or any(old.get(k) != v for k, v in new.items()):
            table.put(new)
            written += 1
    gone = [tid for tid in existing if tid not in wanted]
    for tag_id in gone:
        table.delete(keys.tag(corp_id, tag_id))
    return written, len(gone)


def put_tag(corp_id: str, tag: TagItem) -> None:
    get_table().put({**keys.tag(corp_id, tag.tag_id), "type": "tag", **tag.model_dump()})


def delete_tags(corp_id: str, tag_ids: list[str]) -> None:
    table = get_table()
    for tag_id in tag_ids:
        table.delete(keys.tag(corp_id, tag_id))


def list_tags(corp_id: str) -> list[TagItem]:
    items = get_table().query_all(keys.corp_partition(corp_id), sk_prefix=keys.tag_prefix())
    return [TagItem.model_validate(i) for i in items]


def get_tags(corp_id: str, tag_ids: list[str]) -> dict[str, TagItem]:
    if not tag_ids:
        return {}
    found = get_table().batch_get([keys.tag(corp_id, t) for t in set(tag_ids)])
    return {i["tag_id"]: TagItem.model_validate(i) for i in found}


def relation_tags_changed(corp_id: str, customer_id: str, staff_id: str, *, add: list[str],
                          remove: list[str], only_if_effective: bool = False) -> Any:
    """Update op: the relation's tag set after a mark_tag (WeCom fires no callback for it).
    `only_if_effective`: only on a relation we know whose tags are still without every tag added
    and with every tag removed, so that exactly one writer records a change (ConditionFailed else)."""
    from chalicelib.store.events import StoreOp

    expression, values, conditions = [], {}, []
    if add:
        expression.append("ADD tags :add")
        values[":add"] = set(add)
    if remove:
        expression.append("DELETE tags :rm")
        values[":rm"] = set(remove)
    if only_if_effective:
        conditions.append("attribute_exists(last_event_at)")
        for i, tag_id in enumerate(add):
            values[f":a{i}"] = tag_id
            conditions.append(f"NOT contains(tags, :a{i})")
        for i, tag_id in enumerate(remove):
            values[f":r{i}"] = tag_id
            conditions.append(f"contains(tags, :r{i})")
    return StoreOp(get_table().op_update(keys.relation(corp_id, customer_id, staff_id),
                                         expression=" ".join(expression), values=values,
                                         condition=" AND ".join(conditions) or None))


def apply_relation_tags(corp_id: str, customer_id: str, staff_id: str, *, add: list[str],
                        remove: list[str]) -> None:
    # A new relation's tags may land a moment before the add event's own commit creates the
    # rest of the item; readers skip a relation item without a status (store.contacts).
    op = relation_tags_changed(corp_id, customer_id, staff_id, add=add, remove=remove)
    get_table().transact([op.op])


def relation_tags_set(corp_id: str, customer_id: str, staff_id: str, tag_ids: list[str]) -> Any:
    """Update op: replace a relation's tags with what WeCom holds now (idempotent: read at processing
    time), only on a relation we know: never a partial item holding nothing but tags (stale_ok)."""
    from chalicelib.store.events import StoreOp

    key = keys.relation(corp_id, customer_id, staff_id)
    if tag_ids:
        op = get_table().op_update(key, expression="SET tags = :t", values={":t": set(tag_ids)},
                                   condition="attribute_exists(last_event_at)")
    else:
        op = get_table().op_update(key, expression="REMOVE tags", condition="attribute_exists(last_event_at)")
    return StoreOp(op, stale_ok=True)
