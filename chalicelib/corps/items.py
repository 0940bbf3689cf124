"""Corps and API keys."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys, schema


class CorpItem(Model):
    corp_id: str
    name: str
    time_zone: str
    app_kind: Literal["self_built"] = "self_built"  # third-party apps (suite) come later
    agent_id: str | None = None
    sealed_secrets: dict[str, str]
    created_at: int
    updated_at: int | None = None


class ApiKeyItem(Model):
    key_hash: str
    corp_id: str
    label: str
    created_at: int
    # Keys issued before keys had ids have neither (they cannot be listed or revoked by id).
    key_id: str | None = None
    last4: str | None = Field(None, description="the key's last 4 characters, to tell keys apart")


class StaffDirectory(Model):
    staff_ids: list[str]
    read_at: int
    names: dict[str, str] = Field(default_factory=dict, description="staff id -> name, as WeCom's user/get "
                                                                    "gave it; \"\" when WeCom refused it")


class CorpExists(Exception):
    pass


class CorpChanged(Exception):
    """The corp's secrets changed between reading and writing them (another update won)."""


class ApiKeyNotFound(Exception):
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
    try:
        table.transact([table.op_put(corp_item, condition="attribute_not_exists(PK)"),
                        *_api_key_ops(table, api_key)])
    except ConditionFailed as exc:
        raise CorpExists(corp.corp_id) from exc


def update_corp(corp_id: str, *, name: str | None = None, time_zone: str | None = None,
                sealed_secrets: dict[str, str] | None = None, expected_nonce: str | None = None,
                updated_at: int) -> CorpItem | None:
    """Change a registered corp's settings and/or its sealed secrets; None if there is no such corp.

    New sealed secrets are written only if the stored ones are still those they were made from
    (`expected_nonce`, unique per seal): two concurrent updates of different secrets must not
    silently undo each other. A lost race raises CorpChanged."""
    if not CORP_ID_PATTERN.fullmatch(corp_id):
        return None
    sets = {"updated_at": updated_at, "name": name, "time_zone": time_zone, "sealed_secrets": sealed_secrets}
    sets = {k: v for k, v in sets.items() if v is not None}
    names = {f"#{k}": k for k in sets}
    values: dict[str, Any] = {f":{k}": v for k, v in sets.items()}
    condition = "attribute_exists(PK)"
    if sealed_secrets is not None and expected_nonce is not None:
        condition += " AND #sealed_secrets.#nonce = :expected_nonce"
        names.update({"#sealed_secrets": "sealed_secrets", "#nonce": "nonce"})
        values[":expected_nonce"] = expected_nonce
    try:
        item = get_table().update(
            keys.corp(corp_id), expression="SET " + ", ".join(f"#{k} = :{k}" for k in sets),
            names=names, values=values, condition=condition, return_new=True)
    except ConditionFailed as exc:
        if get_corp(corp_id) is None:
            return None
        raise CorpChanged(corp_id) from exc
    return CorpItem.model_validate(item)


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


def _api_key_ops(table: Any, api_key: ApiKeyItem) -> list[dict]:
    """The key itself (looked up by hash on every call) and, when it has an id, the corp's
    reference to it (listed and revoked by id): written and deleted together."""
    ops = [table.op_put({**keys.api_key(api_key.key_hash), "type": "api_key", **api_key.model_dump()},
                        condition="attribute_not_exists(PK)")]
    if api_key.key_id is not None:
        ops.append(table.op_put({**keys.corp_api_key(api_key.corp_id, api_key.key_id), "type": "api_key_ref",
                                 **api_key.model_dump()}, condition="attribute_not_exists(PK)"))
    return ops


def put_api_key(api_key: ApiKeyItem) -> None:
    table = get_table()
    table.transact(_api_key_ops(table, api_key))


def get_api_key(key_hash: str) -> ApiKeyItem | None:
    # Consistent: a key revoked a moment ago must not be accepted by any instance.
    item: dict[str, Any] | None = get_table().get(keys.api_key(key_hash), consistent=True)
    return ApiKeyItem.model_validate(item) if item else None


def list_api_keys(corp_id: str, *, limit: int, cursor: str | None) -> tuple[list[ApiKeyItem], str | None]:
    """A corp's keys in the order they were issued (key ids sort by time)."""
    items, next_cursor = get_table().query(keys.corp_partition(corp_id), sk_prefix=keys.corp_api_key_prefix(),
                                           limit=limit, cursor=cursor)
    return [ApiKeyItem.model_validate(i) for i in items], next_cursor


def get_corp_api_key(corp_id: str, key_id: str) -> ApiKeyItem | None:
    item = get_table().get(keys.corp_api_key(corp_id, key_id), consistent=True)
    return ApiKeyItem.model_validate(item) if item else None


def delete_api_key(api_key: ApiKeyItem) -> None:
    """Revoke a key: it and the corp's reference go together. Raises ApiKeyNotFound if another
    request revoked it first."""
    if api_key.key_id is None:
        raise ApiKeyNotFound("this key has no id")
    table = get_table()
    try:
        table.transact([
            {"Delete": {"TableName": table.name, "Key": _attrs(keys.corp_api_key(api_key.corp_id, api_key.key_id)),
                        "ConditionExpression": "attribute_exists(PK)"}},
            {"Delete": {"TableName": table.name, "Key": _attrs(keys.api_key(api_key.key_hash))}},
        ])
    except ConditionFailed as exc:
        raise ApiKeyNotFound(api_key.key_id) from exc


def _attrs(key: dict[str, str]) -> dict[str, Any]:
    from chalicelib.store.table import to_attrs

    return to_attrs(key)


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
