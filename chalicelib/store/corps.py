"""Corps and API keys."""

from __future__ import annotations

import re
from typing import Any, Literal

from chalicelib.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema


class CorpItem(Model):
    corp_id: str
    name: str
    time_zone: str
    app_kind: Literal["self_built"] = "self_built"  # third-party apps (suite) come later
    agent_id: str | None = None
    sealed_secrets: dict[str, str]
    created_at: int


class ApiKeyItem(Model):
    key_hash: str
    corp_id: str
    label: str
    created_at: int


class StaffDirectory(Model):
    staff_ids: list[str]
    read_at: int


class CorpExists(Exception):
    pass


def create_corp(corp: CorpItem, api_key: ApiKeyItem) -> None:
    """Register a corp and its first API key atomically; an existing corp is refused."""
    table = get_table()
    corp_item = {
        **keys.corp(corp.corp_id),
        schema.GSI2_PK: keys.corp_list_entry(),
        schema.GSI2_SK: corp.corp_id,
        "type": "corp",
        **corp.model_dump(),
    }
    key_item = {**keys.api_key(api_key.key_hash), "type": "api_key", **api_key.model_dump()}
    try:
        table.transact(
            [
                table.op_put(corp_item, condition="attribute_not_exists(PK)"),
                table.op_put(key_item, condition="attribute_not_exists(PK)"),
            ]
        )
    except ConditionFailed as exc:
        raise CorpExists(corp.corp_id) from exc


CORP_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def get_corp(corp_id: str) -> CorpItem | None:
    if not CORP_ID_PATTERN.fullmatch(corp_id):  # no such corp can exist (and no oversized key reaches DynamoDB)
        return None
    item = get_table().get(keys.corp(corp_id))
    return CorpItem.model_validate(item) if item else None


def list_corps(*, limit: int, cursor: str | None) -> tuple[list[CorpItem], str | None]:
    items, next_cursor = get_table().query(
        keys.corp_list_entry(), index=schema.GSI2, limit=limit, cursor=cursor
    )
    return [CorpItem.model_validate(i) for i in items], next_cursor


def put_api_key(api_key: ApiKeyItem) -> None:
    get_table().put({**keys.api_key(api_key.key_hash), "type": "api_key", **api_key.model_dump()})


def get_api_key(key_hash: str) -> ApiKeyItem | None:
    item: dict[str, Any] | None = get_table().get(keys.api_key(key_hash))
    return ApiKeyItem.model_validate(item) if item else None


def save_staff_directory(corp_id: str, directory: StaffDirectory) -> None:
    get_table().put({**keys.staff_directory(corp_id), "type": "staff_directory", **directory.model_dump()})


def get_staff_directory(corp_id: str) -> StaffDirectory | None:
    item = get_table().get(keys.staff_directory(corp_id))
    return StaffDirectory.model_validate(item) if item else None


def set_default_welcome(corp_id: str, content: dict[str, Any] | None) -> None:
    """The corp's welcome for contacts that came through no channel code (None removes it)."""
    key = keys.default_welcome(corp_id)
    if content is None:
        get_table().delete(key)
    else:
        get_table().put({**key, "type": "default_welcome", "content": content})


def get_default_welcome(corp_id: str) -> dict[str, Any] | None:
    item = get_table().get(keys.default_welcome(corp_id))
    return item["content"] if item else None
