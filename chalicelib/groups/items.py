"""Customer groups (WeCom customer group chats) and their members."""

from __future__ import annotations

from typing import Any, Literal

from chalicelib.store import ConditionFailed, get_table, keys
from chalicelib.store.events import StoreOp

GroupStatus = Literal["active", "dismissed"]


def group_changed(corp_id: str, group_id: str, *, at: int, status: GroupStatus | None = None,
                  fields: dict[str, Any] | None = None, created: bool = False) -> StoreOp:
    names = {"#type": "type", "#at": "last_event_at"}
    values: dict[str, Any] = {":type": "group", ":g": group_id, ":at": at}
    sets = ["#type = :type", "group_id = :g", "#at = :at"]
    if status:
        names["#status"] = "status"
        values[":status"] = status
        sets.append("#status = :status")
    if created:
        sets.append("created_at = if_not_exists(created_at, :at)")
    for i, (name, value) in enumerate(sorted((fields or {}).items())):
        names[f"#f{i}"] = name
        values[f":f{i}"] = value
        sets.append(f"#f{i} = :f{i}")
    return StoreOp(
        get_table().op_update(
            keys.group(corp_id, group_id),
            expression="SET " + ", ".join(sets),
            names=names,
            values=values,
            condition="attribute_not_exists(#at) OR #at <= :at",
        ),
        stale_ok=True,
    )


def put_members(corp_id: str, group_id: str, member_ids: list[str], *, status: str, at: int,
                scene: int | None) -> None:
    """Member items are plain idempotent puts (the same event writes the same values), so they
    are batch-written before the event's commit instead of inside its transaction."""
    table = get_table()
    for member_id in member_ids:
        try:
            table.put(
                {
                    **keys.group_member(corp_id, group_id, member_id),
                    "type": "group_member",
                    "group_id": group_id,
                    "member_id": member_id,
                    "status": status,
                    "scene": scene,
                    "last_event_at": at,
                },
                condition="attribute_not_exists(last_event_at) OR last_event_at <= :at",
                values={":at": at},
            )
        except ConditionFailed:
            continue  # a newer event already moved this member


def get_group(corp_id: str, group_id: str) -> dict[str, Any] | None:
    return get_table().get(keys.group(corp_id, group_id))


def members(corp_id: str, group_id: str) -> list[dict[str, Any]]:
    return get_table().query_all(keys.corp_partition(corp_id), sk_prefix=keys.group_member_prefix(group_id))
