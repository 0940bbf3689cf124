"""Group codes (群活码): one WeCom join way each, keyed by an id of ours; the `state` they carry is
claimed in the item every channel code and group code shares per state (keys.state_claim).

Two writers touch a code: operators (a whole-item put, conditional on `version` and `rotation`)
and rotations (an update of the listed groups, conditional on `rotation`: the one writer that
moves `rotation` from n to n+1 is the one that calls WeCom for that change).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.groups import items as group_items
from chalicelib.platform.errors import StateTaken
from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema
from chalicelib.wecom import models as wm

CodeStatus = Literal["active", "low_capacity", "exhausted", "deleted"]
MAX_ALERTS = 20


class PoolWindow(Model):
    """On these weekdays (1 = Monday) between start and end (HH:MM, corp time) list `pool`."""

    weekdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    start: str = "00:00"
    end: str = "24:00"
    pool: list[str]


class AutoCreate(Model):
    room_base_name: str
    room_base_id: int | None = None


class GroupWelcome(Model):
    """A group welcome template (doc 92366): text and at most one attachment."""

    text: wm.Text | None = None
    image: wm.Image | None = None
    link: wm.Link | None = None
    miniprogram: wm.MiniProgram | None = None
    file: wm.Media | None = None
    video: wm.Media | None = None


class Alert(Model):
    at: int
    kind: Literal["low_capacity", "exhausted"]
    open_seats: int
    notified: list[str] = Field(default_factory=list, description="staff members sent an app message")


class GroupCodeItem(Model):
    code_id: str
    name: str
    state: str
    owner: str | None = None
    pool: list[str]
    windows: list[PoolWindow] = Field(default_factory=list)
    auto_create: AutoCreate | None = None
    threshold: int
    low_seats: int | None = None
    welcome: GroupWelcome | None = None
    welcome_template_id: str | None = None
    config_id: str
    qr_code: str | None = None
    rooms: list[str] = Field(default_factory=list, description="rooms WeCom's auto_create_room opened for this "
                                                               "code: pooled after the active pool")
    listed: list[str] = Field(description="the groups WeCom's join way lists right now")
    full: list[str] = Field(default_factory=list, description="groups that reached the threshold")
    status: CodeStatus = "active"
    alerts: list[Alert] = Field(default_factory=list)
    rotation: int = 0  # bumped by every change of `listed`: the conditional write that decides
    synced_rotation: int = 0  # the rotation WeCom's join way has (pushed after the claim)
    pushed_at: int = 0
    created_at: int
    updated_at: int
    version: int = 1  # bumped by operator edits

    def all_chats(self) -> list[str]:
        return list(dict.fromkeys([*self.pool, *(c for w in self.windows for c in w.pool), *self.rooms]))


class EditConflict(Exception):
    pass


def _item(corp_id: str, code: GroupCodeItem) -> dict[str, Any]:
    item = {**keys.group_code(corp_id, code.code_id), "type": "group_code", **code.model_dump(mode="json")}
    if code.status != "deleted":
        item[schema.GSI2_PK] = keys.active_group_codes_partition(corp_id)
        item[schema.GSI2_SK] = code.code_id
    return item


def claim_state(corp_id: str, state: str, code_id: str) -> None:
    try:
        get_table().put({**keys.state_claim(corp_id, state), "type": "group_code_state", "state": state,
                         "code_id": code_id}, condition="attribute_not_exists(PK)")
    except ConditionFailed as exc:
        raise StateTaken(state) from exc


def release_state(corp_id: str, state: str, code_id: str) -> None:
    get_table().delete(keys.state_claim(corp_id, state), condition="code_id = :c", values={":c": code_id})


def save_new(corp_id: str, code: GroupCodeItem) -> None:
    get_table().put(_item(corp_id, code), condition="attribute_not_exists(PK)")
    link_chats(corp_id, code.code_id, code.all_chats())


def save(corp_id: str, code: GroupCodeItem, *, expected: GroupCodeItem) -> None:
    """An operator's edit: fails (EditConflict) if another edit or a rotation came first."""
    try:
        get_table().put(_item(corp_id, code), condition="version = :v AND rotation = :r",
                        values={":v": expected.version, ":r": expected.rotation})
    except ConditionFailed as exc:
        raise EditConflict(code.code_id) from exc
    link_chats(corp_id, code.code_id, [c for c in code.all_chats() if c not in expected.all_chats()])
    gone = [c for c in expected.all_chats() if c not in code.all_chats()]
    for chat_id in gone:
        get_table().delete(keys.group_code_chat(corp_id, chat_id, code.code_id))
        group_items.set_code(corp_id, chat_id, code.code_id, held=False)


def link_chats(corp_id: str, code_id: str, chat_ids: list[str]) -> None:
    """The chat -> code links this capability looks codes up by, mirrored in each group's `codes`
    (what the groups API filters on and the groups step counts joins by)."""
    get_table().batch_put([{**keys.group_code_chat(corp_id, c, code_id), "type": "group_code_chat",
                            "chat_id": c, "code_id": code_id} for c in chat_ids])
    for chat_id in chat_ids:
        group_items.set_code(corp_id, chat_id, code_id, held=True)


def claim_rotation(corp_id: str, code: GroupCodeItem, changes: dict[str, Any], *, now: int) -> GroupCodeItem:
    """Move `rotation` from the value `code` was read with to the next, with `changes`; raises
    ConditionFailed when another writer moved it first (then that writer owns the change)."""
    fields = {**changes, "rotation": code.rotation + 1, "updated_at": now, "pushed_at": now}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values: dict[str, Any] = {f":f{i}": v for i, v in enumerate(_plain(fields).values())}
    values[":r"] = code.rotation
    values[":deleted"] = "deleted"
    names["#status"] = "status"
    expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    get_table().update(keys.group_code(corp_id, code.code_id), expression=expression, names=names,
                       values=values, condition="rotation = :r AND #status <> :deleted")
    return code.model_copy(update=fields)


def add_room(corp_id: str, code_id: str, chat_id: str) -> bool:
    """Take a room WeCom auto-created for the code into its rooms (and its links); False when the
    code already has it or is deleted. Bumps `version`: an operator's edit read before retries."""
    try:
        get_table().update(keys.group_code(corp_id, code_id),
                           expression="SET rooms = list_append(if_not_exists(rooms, :none), :room), "
                                      "version = version + :one",
                           names={"#status": "status", "#type": "type"},
                           values={":none": [], ":room": [chat_id], ":c": chat_id, ":one": 1, ":deleted": "deleted",
                                   ":code": "group_code"},
                           condition="#type = :code AND #status <> :deleted AND NOT contains(rooms, :c)")
    except ConditionFailed:
        return False
    link_chats(corp_id, code_id, [chat_id])
    return True


def code_of_state(corp_id: str, state: str) -> str | None:
    """The group code that claimed `state` (None: no code, or a channel code's)."""
    item = get_table().get(keys.state_claim(corp_id, state))
    return item["code_id"] if item and item.get("type") == "group_code_state" else None


def mark_synced(corp_id: str, code_id: str, rotation: int, *, now: int) -> bool:
    """Record that WeCom's join way has `rotation`'s list, just pushed. False when a newer rotation
    was claimed meanwhile: its push may have landed before this one (WeCom keeps the last full
    overwrite), so the caller pushes the newest list again."""
    try:
        get_table().update(keys.group_code(corp_id, code_id), expression="SET synced_rotation = :r, pushed_at = :t",
                           condition="rotation = :r", values={":r": rotation, ":t": now})
    except ConditionFailed:
        return False
    return True


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in fields.items():
        if isinstance(v, list):
            out[k] = [x.model_dump(mode="json") if isinstance(x, Model) else x for x in v]
        else:
            out[k] = v
    return out


def get(corp_id: str, code_id: str, *, consistent: bool = False) -> GroupCodeItem | None:
    item = get_table().get(keys.group_code(corp_id, code_id), consistent=consistent)
    if not item or item.get("type") != "group_code":
        return None
    return GroupCodeItem.model_validate(item)


def list_codes(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[GroupCodeItem], str | None]:
    items, next_cursor = get_table().query(keys.active_group_codes_partition(corp_id), index=schema.GSI2,
                                           limit=limit, cursor=cursor)
    return [GroupCodeItem.model_validate(i) for i in items], next_cursor


def active_codes(corp_id: str) -> list[GroupCodeItem]:
    return [GroupCodeItem.model_validate(i)
            for i in get_table().query_all(keys.active_group_codes_partition(corp_id), index=schema.GSI2)]


def codes_of_chat(corp_id: str, chat_id: str) -> list[str]:
    items = get_table().query_all(keys.corp_partition(corp_id), sk_prefix=keys.group_code_chat_prefix(chat_id))
    return [i["code_id"] for i in items]
