"""Channel codes (WeCom contact ways), keyed by their `state`: the callback of a new contact
carries only the state, so the code is one GetItem away from it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.platform.content import MessageContent
from chalicelib.platform.errors import StateTaken
from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema

ChannelStatus = Literal["active", "deleted"]


class ScheduleRule(Model):
    """Route to `staff_ids` on these weekdays (1 = Monday) between start and end (HH:MM, corp time)."""

    staff_ids: list[str] = Field(min_length=1, max_length=100)
    weekdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7)
    start: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")


class ChannelCodeItem(Model):
    state: str
    name: str
    store: str | None = None
    channel: str | None = None
    staff_ids: list[str]
    backup_staff_ids: list[str] = Field(default_factory=list)
    schedule: list[ScheduleRule] = Field(default_factory=list)
    daily_cap: int | None = None
    skip_verify: bool = True
    tag_ids: list[str] = Field(default_factory=list)
    welcome: MessageContent | None = None
    valid_from: int | None = None
    valid_until: int | None = None
    config_id: str
    qr_code: str | None = None
    routed_staff_ids: list[str] = Field(description="who WeCom routes the code to right now")
    status: ChannelStatus = "active"
    created_at: int
    updated_at: int
    version: int = 1

    @property
    def needs_routing_tick(self) -> bool:
        return bool(self.schedule or self.daily_cap or self.valid_from or self.valid_until)


class VersionConflict(Exception):
    pass


def _item(code: ChannelCodeItem, corp_id: str) -> dict[str, Any]:
    item = {**keys.channel_code(corp_id, code.state), "type": "channel_code", **code.model_dump(mode="json")}
    if code.needs_routing_tick and code.status == "active":
        item[schema.GSI2_PK] = keys.routed_codes_partition(corp_id)
        item[schema.GSI2_SK] = code.state
    return item


def reserve_state(corp_id: str, state: str) -> None:
    """Claim a state before WeCom is called, so two codes can never share one (StateTaken)."""
    try:
        get_table().put({**keys.channel_code(corp_id, state), "type": "channel_code_reservation",
                         "state": state}, condition="attribute_not_exists(PK)")
    except ConditionFailed as exc:
        raise StateTaken(state) from exc


def release_state(corp_id: str, state: str) -> None:
    get_table().delete(keys.channel_code(corp_id, state), condition="#t = :r",
                       names={"#t": "type"}, values={":r": "channel_code_reservation"})


def save_new(corp_id: str, code: ChannelCodeItem) -> None:
    get_table().put(_item(code, corp_id), condition="#t = :r", names={"#t": "type"},
                    values={":r": "channel_code_reservation"})


def save(corp_id: str, code: ChannelCodeItem, *, expected_version: int) -> None:
    """Optimistic write: fails with VersionConflict if someone changed the code meanwhile."""
    try:
        get_table().put(_item(code, corp_id), condition="version = :v", values={":v": expected_version})
    except ConditionFailed as exc:
        raise VersionConflict(code.state) from exc


def get(corp_id: str, state: str, *, consistent: bool = False) -> ChannelCodeItem | None:
    item = get_table().get(keys.channel_code(corp_id, state), consistent=consistent)
    if not item or item.get("type") != "channel_code":
        return None
    return ChannelCodeItem.model_validate(item)


def list_codes(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[ChannelCodeItem], str | None]:
    items, next_cursor = get_table().query(
        keys.corp_partition(corp_id), sk_prefix=keys.channel_code_prefix(), limit=limit, cursor=cursor,
        filter_expression="#t = :t AND #s = :active", names={"#t": "type", "#s": "status"},
        values={":t": "channel_code", ":active": "active"},
    )
    return [ChannelCodeItem.model_validate(i) for i in items], next_cursor


def routed_codes(corp_id: str) -> list[ChannelCodeItem]:
    items = get_table().query_all(keys.routed_codes_partition(corp_id), index=schema.GSI2)
    return [ChannelCodeItem.model_validate(i) for i in items]
