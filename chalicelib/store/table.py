"""A thin typed layer over the DynamoDB client: plain Python values in and out.

botocore's error codes never leave the store package: a failed condition becomes
`ConditionFailed`, a request DynamoDB refuses as invalid (a key or item over its size limits)
`RequestRejected`, anything else propagates as it is (a real outage must fail loudly).
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from chalicelib.store import schema

F = TypeVar("F", bound=Callable[..., Any])


class StoreError(Exception):
    """Base of the store's own errors."""


class ConditionFailed(StoreError):
    """A conditional write found the item not as expected (already claimed, stale, absent).

    `reasons` lists, for a transaction, which operations failed ("ConditionalCheckFailed") and
    `old_item` holds the item as found when DynamoDB returned it.
    """

    def __init__(self, reasons: list[str] | None = None, old_item: dict | None = None):
        super().__init__(reasons or "condition failed")
        self.reasons = reasons or []
        self.old_item = old_item


class InvalidCursor(StoreError):
    """A pagination cursor that this query did not produce."""


class RequestRejected(StoreError):
    """DynamoDB refused the request itself (ValidationException: a key over 2048/1024 bytes, an
    item over 400 KB): the same request can never succeed, so retrying it is pointless."""


def _rejected_as_invalid(fn: F) -> F:
    """Turn DynamoDB's ValidationException into `RequestRejected` (botocore's codes stay here)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = getattr(exc, "response", None) or {}
            if error.get("Error", {}).get("Code") != "ValidationException":
                raise
            raise RequestRejected(f"DynamoDB refused the request: {error['Error'].get('Message', '')}") from exc

    return call  # type: ignore[return-value]


_serializer = None
_deserializer = None


def _ser():
    global _serializer, _deserializer
    if _serializer is None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        _serializer, _deserializer = TypeSerializer(), TypeDeserializer()
    return _serializer, _deserializer


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def _dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _dynamo_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_dynamo_value(v) for v in value]
    return value


def to_attrs(item: dict[str, Any]) -> dict[str, Any]:
    ser, _ = _ser()
    return {k: ser.serialize(_dynamo_value(v)) for k, v in item.items() if v is not None}


def from_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    _, de = _ser()
    return {k: _plain(de.deserialize(v)) for k, v in attrs.items()}


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(from_attrs(last_key), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, partition: str, key_attrs: tuple[str, ...],
                  sk_attr: str, sk_prefix: str | None = None) -> dict | None:
    """Decode a cursor, refusing one this listing cannot have produced: another partition (a
    cursor must never let a caller page into another corp's items), other key attributes, or a
    sort key outside the listed range."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if (not isinstance(key, dict) or key.get(key_attrs[0]) != partition or set(key) != set(key_attrs)
            or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in key.values())
            or (sk_prefix is not None and not key[sk_attr].startswith(sk_prefix))):
        raise InvalidCursor("cursor does not belong to this listing")
    return to_attrs(key)


def _key_attrs(index: str | None) -> tuple[str, ...]:
    """The key attributes DynamoDB returns as LastEvaluatedKey: the index's and the table's."""
    pk_attr, sk_attr = _INDEX_KEYS[index]
    return tuple(dict.fromkeys((pk_attr, sk_attr, schema.PK, schema.SK)))


_INDEX_KEYS = {
    None: (schema.PK, schema.SK),
    schema.GSI1: (schema.GSI1_PK, schema.GSI1_SK),
    schema.GSI2: (schema.GSI2_PK, schema.GSI2_SK),
}


class Table:
    def __init__(self, client: Any, name: str):
        self.client = client
        self.name = name

    # -- single items -------------------------------------------------------------------------
    @_rejected_as_invalid
    def get(self, key: dict[str, str], *, consistent: bool = False) -> dict[str, Any] | None:
        resp = self.client.get_item(TableName=self.name, Key=to_attrs(key), ConsistentRead=consistent)
        item = resp.get("Item")
        return from_attrs(item) if item else None

    @_rejected_as_invalid
    def put(
        self,
        item: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        kwargs = self._conditional(condition, names, values)
        try:
            self.client.put_item(TableName=self.name, Item=to_attrs(item), **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise ConditionFailed(old_item=_old_item(exc)) from exc

    @_rejected_as_invalid
    def update(
        self,
        key: dict[str, str],
        *,
        expression: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        condition: str | None = None,
        return_new: bool = False,
        old_on_failure: bool = False,
    ) -> dict[str, Any] | None:
        """`old_on_failure`: a failed condition's ConditionFailed carries the item as found (`old_item`)."""
        kwargs = self._conditional(condition, names, values)
        if return_new:
            kwargs["ReturnValues"] = "ALL_NEW"
        if old_on_failure:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            resp = self.client.update_item(
                TableName=self.name, Key=to_attrs(key), UpdateExpression=expression, **kwargs
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise ConditionFailed(old_item=_old_item(exc)) from exc
        attrs = resp.get("Attributes")
        return from_attrs(attrs) if attrs else None

    @_rejected_as_invalid
    def delete(self, key: dict[str, str], *, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
        kwargs = self._conditional(condition, names, values)
        try:
            self.client.delete_item(TableName=self.name, Key=to_attrs(key), **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise ConditionFailed() from exc

    # -- many items -----------------------------------------------------------------------------
    @_rejected_as_invalid
    def query(
        self,
        partition: str,
        *,
        sk_prefix: str | None = None,
        sk_between: tuple[str, str] | None = None,
        index: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        consistent: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        pk_attr, sk_attr = _INDEX_KEYS[index]
        all_names = {"#pk": pk_attr, **(names or {})}
        all_values: dict[str, Any] = {":pk": partition, **(values or {})}
        condition = "#pk = :pk"
        if sk_prefix is not None:
            all_names["#sk"] = sk_attr
            all_values[":skp"] = sk_prefix
            condition += " AND begins_with(#sk, :skp)"
        elif sk_between is not None:
            all_names["#sk"] = sk_attr
            all_values[":sk_lo"], all_values[":sk_hi"] = sk_between
            condition += " AND #sk BETWEEN :sk_lo AND :sk_hi"
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": all_names,
            "ExpressionAttributeValues": to_attrs(all_values),
            "ScanIndexForward": not newest_first,
        }
        if consistent:  # the table's own items only (a GSI cannot be read consistently)
            kwargs["ConsistentRead"] = True
        if index:
            kwargs["IndexName"] = index
        # Unfiltered pages read one item more than they return: DynamoDB sets LastEvaluatedKey
        # whenever Limit is reached, so a last page that is exactly full would otherwise carry a
        # cursor to an empty page.
        peek = bool(limit) and not filter_expression
        if limit:
            kwargs["Limit"] = limit + 1 if peek else limit
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        key_attrs = _key_attrs(index)
        start = decode_cursor(cursor, partition=partition, key_attrs=key_attrs, sk_attr=sk_attr,
                              sk_prefix=sk_prefix)
        if start:
            kwargs["ExclusiveStartKey"] = start
        try:
            resp = self.client.query(**kwargs)
        except self.client.exceptions.ClientError as exc:
            # A tampered cursor (right partition, impossible sort key) is the caller's error.
            if start and exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidCursor("cursor is not valid") from exc
            raise
        raw, last_key = resp.get("Items", []), resp.get("LastEvaluatedKey")
        if peek and len(raw) > limit:  # more exist: this page ends at its last returned item
            raw = raw[:limit]
            last_key = {k: raw[-1][k] for k in key_attrs}
        return [from_attrs(i) for i in raw], encode_cursor(last_key)

    def query_filled(self, partition: str, *, limit: int, cursor: str | None, max_reads: int,
                     **kwargs: Any) -> tuple[list[dict[str, Any]], str | None]:
        """`query` for a filtered page: DynamoDB filters after reading `Limit` items, so one read
        can return few or none. Read again (each read evaluating `limit` items) until the page
        holds `limit` items, the range ends or `max_reads` requests were made: a value rarer than
        one in `max_reads` x `limit` comes back short. Items past `limit` are dropped and the
        cursor set at the last one kept, so nothing is skipped."""
        items: list[dict[str, Any]] = []
        for _ in range(max_reads):
            page, cursor = self.query(partition, limit=limit, cursor=cursor, **kwargs)
            if len(items) + len(page) > limit:  # the page ends inside this read: at its last item
                items.extend(page[:limit - len(items)])
                return items, self.cursor_at(items[-1], index=kwargs.get("index"))
            items.extend(page)
            if len(items) == limit or cursor is None:
                break
        return items, cursor

    @staticmethod
    def cursor_at(item: dict[str, Any], *, index: str | None) -> str | None:
        """The cursor that resumes a listing of `index` right after `item`."""
        return encode_cursor(to_attrs({k: item[k] for k in _key_attrs(index)}))

    def query_all(self, partition: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page, cursor = self.query(partition, cursor=cursor, **kwargs)
            items.extend(page)
            if not cursor:
                return items

    @_rejected_as_invalid
    def batch_get(self, keys: list[dict[str, str]], *, consistent: bool = False) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pending = [to_attrs(k) for k in keys]
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request = {self.name: {"Keys": chunk, **({"ConsistentRead": True} if consistent else {})}}
            while request:
                resp = self.client.batch_get_item(RequestItems=request)
                found.extend(from_attrs(i) for i in resp.get("Responses", {}).get(self.name, []))
                request = resp.get("UnprocessedKeys") or None
        return found

    @_rejected_as_invalid
    def batch_put(self, items: list[dict[str, Any]]) -> None:
        """Unconditional puts, 25 per request, retrying what DynamoDB leaves unprocessed."""
        import time

        pending = [{"PutRequest": {"Item": to_attrs(i)}} for i in items]
        attempt = 0
        while pending:
            chunk, pending = pending[:25], pending[25:]
            resp = self.client.batch_write_item(RequestItems={self.name: chunk})
            left = resp.get("UnprocessedItems", {}).get(self.name, [])
            if left:
                attempt += 1
                time.sleep(min(1.0, 0.05 * 2**attempt))
                pending = left + pending

    # -- transactions ---------------------------------------------------------------------------
    def op_put(self, item: dict[str, Any], *, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> dict:
        return {"Put": {"TableName": self.name, "Item": to_attrs(item),
                        **self._conditional(condition, names, values)}}

    def op_update(self, key: dict[str, str], *, expression: str, names: dict[str, str] | None = None,
                  values: dict[str, Any] | None = None, condition: str | None = None) -> dict:
        return {"Update": {"TableName": self.name, "Key": to_attrs(key), "UpdateExpression": expression,
                           **self._conditional(condition, names, values)}}

    def op_check(self, key: dict[str, str], *, condition: str, names: dict[str, str] | None = None,
                 values: dict[str, Any] | None = None) -> dict:
        return {"ConditionCheck": {"TableName": self.name, "Key": to_attrs(key),
                                   **self._conditional(condition, names, values)}}

    @_rejected_as_invalid
    def transact(self, operations: list[dict], *, conflict_retries: int = 4) -> None:
        """All or nothing; a failed condition raises ConditionFailed with per-operation reasons.

        A transaction that only collided with another one on a shared item (every event of a corp
        adds to the same daily counter) is retried with jittered backoff: botocore does not retry
        TransactionCanceledException, and failing would send a good message toward the DLQ."""
        import random
        import time

        for attempt in range(conflict_retries + 1):
            try:
                self.client.transact_write_items(TransactItems=operations)
                return
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    raise ConditionFailed(reasons) from exc
                if "ValidationError" in reasons:  # an item over 400 KB, for one
                    raise RequestRejected(f"DynamoDB refused the transaction: {reasons}") from exc
                transient = reasons and all(r in ("None", "TransactionConflict") for r in reasons)
                if not transient or attempt == conflict_retries:
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))

    @staticmethod
    def _conditional(condition: str | None, names: dict[str, str] | None,
                     values: dict[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = to_attrs(values)
        return kwargs


def _old_item(exc: Exception) -> dict | None:
    item = getattr(exc, "response", {}).get("Item")
    return from_attrs(item) if item else None
