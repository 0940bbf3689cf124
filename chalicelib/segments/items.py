"""Saved segments: one item per segment under the corp's partition (`SEGMENT#<id>`)."""

from __future__ import annotations

from typing import Any

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys


class SegmentItem(Model):
    segment_id: str
    name: str
    filter: dict[str, Any]  # SegmentFilter as JSON (by alias): validated again when read by the service
    created_at: int
    updated_at: int
    version: int = 1


class VersionConflict(Exception):
    """The segment changed (or was deleted) between our read and our write."""


def _item(corp_id: str, seg: SegmentItem) -> dict[str, Any]:
    return {**keys.segment(corp_id, seg.segment_id), "type": "segment", **seg.model_dump(mode="json")}


def put_new(corp_id: str, seg: SegmentItem) -> None:
    get_table().put(_item(corp_id, seg), condition="attribute_not_exists(PK)")


def save(corp_id: str, seg: SegmentItem, *, expected_version: int) -> None:
    try:
        get_table().put(_item(corp_id, seg), condition="version = :v", values={":v": expected_version})
    except ConditionFailed as exc:
        raise VersionConflict(f"segment {seg.segment_id} was changed meanwhile; read it again") from exc


def get(corp_id: str, segment_id: str) -> SegmentItem | None:
    item = get_table().get(keys.segment(corp_id, segment_id))
    return SegmentItem.model_validate(item) if item and item.get("type") == "segment" else None


def delete(corp_id: str, segment_id: str) -> bool:
    try:
        get_table().delete(keys.segment(corp_id, segment_id), condition="attribute_exists(PK)")
    except ConditionFailed:
        return False
    return True


def list_segments(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[SegmentItem], str | None]:
    items, next_cursor = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.segment_prefix(),
                                           limit=limit, cursor=cursor)
    return [SegmentItem.model_validate(i) for i in items], next_cursor
