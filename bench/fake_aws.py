"""An in-process fake of the DynamoDB and SQS calls chalicelib makes, fast enough for 1M items,
that counts what AWS would bill.

    python -m bench.fake_aws [--items 5000]   # per-request time: moto through botocore vs this fake

    fake = FakeAWS()
    aws.use_clients(fake.client)   # chalicelib.platform.aws: dynamodb and sqs answered here
    ...
    fake.meter.wcu, fake.meter.rcu, fake.meter.sqs_requests, fake.meter.requests

Why not moto: moto through botocore serialises every request to HTTP and JSON and back (~1-3 ms
per call), and moto's Query sorts the whole partition on every call and its TransactWriteItems
deep-copies the whole table, so a 1M-recipient run would take hours. Here the items are kept in
DynamoDB's wire shape (``{"S": ...}``) in dicts, every partition of the table and of each GSI in a
``SortedList``, and the expressions are moto's own: ConditionExpression and FilterExpression
through ``moto.dynamodb.comparisons.get_filter_expression``, UpdateExpression through moto's
parser, validator and executor (on a moto ``Item`` built only for the item being updated), so the
semantics are moto's, which the store tests check against both (tests/functional/test_store_edges.py
runs on both). KeyConditionExpression is the subset chalicelib.store.table writes: ``#pk = :pk``
with an optional ``begins_with(#sk, :v)``, ``#sk BETWEEN :a AND :b`` or comparison on the sort key.

Like DynamoDB (and unlike moto): a Query stopped by ``Limit`` returns a LastEvaluatedKey even on
the last item, and a page ends at 1 MB read.

Billing (on-demand, counted in ``Meter``):
- writes: 1 WRU per 1 KB of item, rounded up; an update the larger of the item before and after;
  a delete the item deleted; a failed condition the item as found (at least 1); x2 inside a
  transaction; plus, per GSI whose projected item changes, a write of that item (a put, a delete,
  or both when the index key moved);
- reads: 0.5 RRU per 4 KB eventually consistent, 1 strongly; a Query rounds the items it *read*
  (before the filter) up once per request, BatchGetItem and GetItem per item;
- SQS: one request per API call (a batch of 10 is one request), the way SQS bills.
Not modelled: throttling, TTL expiry, streams, item collections' 10 GB, Scan.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from sortedcontainers import SortedList

from bench import fake_expressions as fx

KB = 1024
MAX_ITEM_BYTES = 400 * KB
MAX_PK_BYTES = 2048
MAX_SK_BYTES = 1024
MAX_PAGE_BYTES = 1024 * KB


# -- errors, shaped like botocore's ------------------------------------------------------------------
def _error_class(name: str) -> type[ClientError]:
    return type(name, (ClientError,), {})


class _Exceptions:
    ClientError = ClientError
    ConditionalCheckFailedException = _error_class("ConditionalCheckFailedException")
    TransactionCanceledException = _error_class("TransactionCanceledException")
    ResourceInUseException = _error_class("ResourceInUseException")
    ResourceNotFoundException = _error_class("ResourceNotFoundException")
    QueueDoesNotExist = _error_class("QueueDoesNotExist")
    ReceiptHandleIsInvalid = _error_class("ReceiptHandleIsInvalid")


def _raise(cls: type[ClientError], op: str, message: str, **extra: Any) -> None:
    code = "ValidationException" if cls is ClientError else cls.__name__
    raise cls({"Error": {"Code": code, "Message": message}, **extra}, op)


def _invalid(op: str, message: str) -> None:
    _raise(ClientError, op, message)


# -- sizes -----------------------------------------------------------------------------------------
def value_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (the documented approximation for numbers)."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in v.items())
    if kind == "SS":
        return sum(len(e.encode()) for e in v)
    if kind == "NS":
        return sum(value_size({"N": e}) for e in v)
    if kind == "BS":
        return sum(len(e) for e in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(attrs: dict[str, Any] | None) -> int:
    if not attrs:
        return 0
    return sum(len(k.encode()) + value_size(v) for k, v in attrs.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass
class Meter:
    """What the calls made so far would be billed (on-demand)."""

    wcu: float = 0.0  # write request units
    rcu: float = 0.0  # read request units
    sqs_requests: int = 0
    requests: Counter = field(default_factory=Counter)  # "dynamodb.UpdateItem" -> calls
    wcu_by: Counter = field(default_factory=Counter)  # "UpdateItem CAP" -> write units (op, sort key's first word)

    def bill_write(self, op: str, units: float, *, sk: str = "") -> None:
        self.wcu += units
        self.wcu_by[f"{op} {sk.split('#', 1)[0]}".strip()] += units

    def reset(self) -> None:
        self.wcu, self.rcu, self.sqs_requests = 0.0, 0.0, 0
        self.requests.clear()
        self.wcu_by.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"wcu": self.wcu, "rcu": self.rcu, "sqs_requests": self.sqs_requests,
                "requests": dict(self.requests)}


# -- DynamoDB ------------------------------------------------------------------------------------------
@dataclass
class _Index:
    name: str | None  # None: the table itself
    pk: str
    sk: str
    partitions: dict[str, SortedList] = field(default_factory=dict)

    def entry(self, attrs: dict[str, Any], table_pk: str, table_sk: str) -> tuple[str, tuple] | None:
        """(partition, sort entry) of an item in this index, None when it is not projected."""
        p, s = attrs.get(self.pk), attrs.get(self.sk)
        if p is None or s is None or "S" not in p or "S" not in s:
            return None
        if self.name is None:
            return p["S"], (s["S"],)
        return p["S"], (s["S"], attrs[table_pk]["S"], attrs[table_sk]["S"])

    def add(self, entry: tuple[str, tuple]) -> None:
        part = self.partitions.get(entry[0])
        if part is None:
            part = self.partitions[entry[0]] = SortedList()
        part.add(entry[1])

    def remove(self, entry: tuple[str, tuple]) -> None:
        part = self.partitions[entry[0]]
        part.remove(entry[1])
        if not part:
            del self.partitions[entry[0]]


class _Table:
    def __init__(self, definition: dict[str, Any]):
        self.name = definition["TableName"]
        keys = {k["KeyType"]: k["AttributeName"] for k in definition["KeySchema"]}
        self.pk, self.sk = keys["HASH"], keys["RANGE"]
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.base = _Index(None, self.pk, self.sk)
        self.gsis: dict[str, _Index] = {}
        for gsi in definition.get("GlobalSecondaryIndexes", []):
            if gsi["Projection"]["ProjectionType"] != "ALL":
                raise NotImplementedError("only ALL projections")
            gkeys = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
            self.gsis[gsi["IndexName"]] = _Index(gsi["IndexName"], gkeys["HASH"], gkeys["RANGE"])
        self.definition = definition
        self._moto_table: Any = None

    def key_of(self, op: str, key: dict[str, Any]) -> tuple[str, str]:
        if set(key) != {self.pk, self.sk}:
            _invalid(op, "The provided key element does not match the schema")
        p, s = key[self.pk], key[self.sk]
        if "S" not in p or "S" not in s:
            _invalid(op, "One or more parameter values were invalid: key type mismatch")
        if not p["S"] or not s["S"]:
            _invalid(op, "One or more parameter values are not valid. The AttributeValue for a key "
                         "attribute cannot contain an empty string value.")
        if len(p["S"].encode()) > MAX_PK_BYTES or len(s["S"].encode()) > MAX_SK_BYTES:
            _invalid(op, "One or more parameter values were invalid: Size of hashkey has exceeded the "
                         "maximum size limit of 2048 bytes (range key 1024)")
        return p["S"], s["S"]

    def check_item(self, op: str, attrs: dict[str, Any]) -> None:
        for index in self.gsis.values():  # an index key must be a non-empty string when present
            for attr in (index.pk, index.sk):
                v = attrs.get(attr)
                if v is not None and (list(v) != ["S"] or not v["S"]):
                    _invalid(op, f"One or more parameter values were invalid: Type mismatch for Index Key {attr}")
        if item_size(attrs) > MAX_ITEM_BYTES:
            _invalid(op, "Item size has exceeded the maximum allowed size")

    def store(self, key: tuple[str, str], new: dict[str, Any] | None, *, bill: bool = True) -> float:
        """Replace the item at `key` (None: delete); returns the GSI write units."""
        old = self.items.get(key)
        units = 0.0
        sizes: list[int] = []  # [old, new], computed once when a GSI needs them

        def size(i: int) -> int:
            if not sizes:
                sizes.extend((item_size(old), item_size(new)))
            return sizes[i]

        for index in (self.base, *self.gsis.values()):
            before = index.entry(old, self.pk, self.sk) if old else None
            after = index.entry(new, self.pk, self.sk) if new else None
            if before != after:
                if before:
                    index.remove(before)
                if after:
                    index.add(after)
            if index.name is None or not bill:
                continue
            if before and after and before == after:
                if old != new:
                    units += write_units(max(size(0), size(1)))
            else:
                units += (write_units(size(0)) if before else 0) + (write_units(size(1)) if after else 0)
        if new is None:
            self.items.pop(key, None)
        else:
            self.items[key] = new
        return units

    def moto_table(self) -> Any:
        """A moto Table with our schema (no items): what moto's update validator reads."""
        if self._moto_table is None:
            from moto.dynamodb.models.table import Table

            d = self.definition
            self._moto_table = Table(
                self.name, account_id="123456789012", region="us-east-1", schema=d["KeySchema"],
                attr=d["AttributeDefinitions"], global_indexes=d.get("GlobalSecondaryIndexes"),
                billing_mode=d.get("BillingMode"))
        return self._moto_table


def _moto_item(attrs: dict[str, Any] | None, pk: str, sk: str) -> Any:
    """A moto Item over a copy of `attrs` (None stays None: moto's conditions accept it)."""
    if attrs is None:
        return None
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    item = Item.__new__(Item)
    item.hash_key, item.range_key = DynamoType(attrs[pk]), DynamoType(attrs[sk])
    item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    for k, v in attrs.items():
        dict.__setitem__(item.attrs, k, DynamoType(v))
    return item


def _plain_attrs(item: Any) -> dict[str, Any]:
    return item.to_json()["Attributes"]


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """Comparable: numbers as Decimal, sets as sets (moto and the fast path format them apart)."""
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    return {k: de.deserialize(v) for k, v in attrs.items()}


_KEY_CONDITION = re.compile(
    r"^\s*(?P<pk>[#\w]+)\s*=\s*(?P<pkv>:\w+)\s*"
    r"(?:AND\s+(?:begins_with\s*\(\s*(?P<bw>[#\w]+)\s*,\s*(?P<bwv>:\w+)\s*\)"
    r"|(?P<bt>[#\w]+)\s+BETWEEN\s+(?P<lo>:\w+)\s+AND\s+(?P<hi>:\w+)"
    r"|(?P<cmp>[#\w]+)\s*(?P<op><=|>=|<|>|=)\s*(?P<cv>:\w+)))?\s*$", re.IGNORECASE)


class FakeDynamoDB:
    exceptions = _Exceptions

    def __init__(self, meter: Meter, lock: threading.RLock, *, check: bool = False):
        self.meter = meter
        self.check = check  # evaluate every expression with moto too and require the same answer
        self.tables: dict[str, _Table] = {}
        self._lock = lock

    # -- helpers
    def _table(self, op: str, name: str) -> _Table:
        table = self.tables.get(name)
        if table is None:
            _raise(_Exceptions.ResourceNotFoundException, op, f"Requested resource not found: {name}")
        return table

    def _condition(self, op: str, expr: str | None, names: dict | None, values: dict | None, attrs: dict | None,
                   table: _Table) -> bool:
        if not expr:
            return True
        names, values = names or {}, values or {}
        try:
            fast = fx.condition(expr)(attrs, names, values)
        except fx.Unsupported:
            fast = None
        except fx.Invalid as exc:
            _invalid(op, str(exc))
        if fast is None or self.check:
            slow = self._moto_condition(op, expr, names, values, table)(attrs)
            if fast is not None and fast != slow:
                raise AssertionError(f"fake and moto disagree on {expr!r} {names} {values} for {attrs}: {fast}")
            return slow
        return fast

    def _compiled_filter(self, op: str, expr: str, names: dict, values: dict, table: _Table) -> Callable:
        """fn(attrs) -> bool for a FilterExpression (fast path; moto's in check mode, compared)."""
        try:
            fast = fx.condition(expr)
        except fx.Unsupported:
            fast = None
        slow = self._moto_condition(op, expr, names, values, table) if fast is None or self.check else None

        def test(attrs: dict) -> bool:
            if fast is None:
                return slow(attrs)
            try:
                answer = fast(attrs, names, values)
            except fx.Invalid as exc:
                _invalid(op, str(exc))
            if slow is not None and slow(attrs) != answer:
                raise AssertionError(f"fake and moto disagree on filter {expr!r} for {attrs}")
            return answer
        return test

    @staticmethod
    def _moto_condition(op: str, expr: str, names: dict, values: dict, table: _Table
                        ) -> Callable[[dict | None], bool]:
        from moto.dynamodb.comparisons import get_filter_expression
        from moto.dynamodb.exceptions import DynamodbException

        try:
            parsed = get_filter_expression(expr, names, values)
        except DynamodbException as exc:
            _invalid(op, str(exc.message))

        def test(attrs: dict | None) -> bool:
            return bool(parsed.expr(_moto_item(attrs, table.pk, table.sk)))
        return test

    def _failed(self, op: str, attrs: dict | None, return_old: str | None) -> None:
        self.meter.bill_write(op, write_units(item_size(attrs)))
        extra = {"Item": dict(attrs)} if attrs and return_old == "ALL_OLD" else {}
        _raise(_Exceptions.ConditionalCheckFailedException, op, "The conditional request failed", **extra)

    def _updated(self, op: str, table: _Table, key: tuple[str, str], old: dict | None, expression: str,
                 names: dict | None, values: dict | None) -> dict[str, Any]:
        names, values = names or {}, values or {}
        base = old or {table.pk: {"S": key[0]}, table.sk: {"S": key[1]}}
        try:
            fast = fx.apply_update(expression, base, names, values, (table.pk, table.sk))
        except fx.Unsupported:
            fast = None
        except fx.Invalid as exc:
            if not self.check:
                _invalid(op, str(exc))
            self._moto_update(op, table, base, expression, names, values)  # must refuse it too
            raise AssertionError(f"moto accepts what the fake refuses: {expression!r}: {exc}") from exc
        if fast is None or self.check:
            slow = self._moto_update(op, table, base, expression, names, values)
            if fast is not None and _plain(fast) != _plain(slow):
                raise AssertionError(f"fake and moto disagree on {expression!r}: {fast} != {slow}")
            return slow
        return fast

    @staticmethod
    def _moto_update(op: str, table: _Table, base: dict, expression: str, names: dict, values: dict) -> dict:
        from moto.dynamodb.exceptions import DynamodbException
        from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
        from moto.dynamodb.parsing.expressions import UpdateExpressionParser
        from moto.dynamodb.parsing.validators import UpdateExpressionValidator

        item = _moto_item(base, table.pk, table.sk)
        try:
            ast = UpdateExpressionParser.make(expression)
            validated = UpdateExpressionValidator(ast, expression_attribute_names=names,
                                                  expression_attribute_values=values, item=item,
                                                  table=table.moto_table()).validate()
            validated.normalize()
            UpdateExpressionExecutor(validated, item, names).execute()
        except DynamodbException as exc:
            _invalid(op, str(exc.message))
        return _plain_attrs(item)

    def _write(self, op: str, table: _Table, key: tuple[str, str], new: dict | None, *, factor: int = 1) -> None:
        old = table.items.get(key)
        if new is not None:
            table.check_item(op, new)
        gsi_units = table.store(key, new)
        self.meter.bill_write(op, factor * (write_units(max(item_size(old), item_size(new))) + gsi_units),
                              sk=key[1])

    # -- single items
    def get_item(self, *, TableName: str, Key: dict, ConsistentRead: bool = False, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.GetItem"] += 1
            table = self._table("GetItem", TableName)
            attrs = table.items.get(table.key_of("GetItem", Key))
            self.meter.rcu += _read_units(item_size(attrs), ConsistentRead)
            return {"Item": dict(attrs)} if attrs else {}

    def put_item(self, *, TableName: str, Item: dict, ConditionExpression: str | None = None,
                 ExpressionAttributeNames: dict | None = None, ExpressionAttributeValues: dict | None = None,
                 ReturnValuesOnConditionCheckFailure: str | None = None, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.PutItem"] += 1
            table = self._table("PutItem", TableName)
            key = table.key_of("PutItem", {table.pk: Item.get(table.pk, {}), table.sk: Item.get(table.sk, {})})
            old = table.items.get(key)
            if not self._condition("PutItem", ConditionExpression, ExpressionAttributeNames,
                                   ExpressionAttributeValues, old, table):
                self._failed("PutItem", old, ReturnValuesOnConditionCheckFailure)
            self._write("PutItem", table, key, dict(Item))
            return {}

    def update_item(self, *, TableName: str, Key: dict, UpdateExpression: str,
                    ConditionExpression: str | None = None, ExpressionAttributeNames: dict | None = None,
                    ExpressionAttributeValues: dict | None = None, ReturnValues: str = "NONE",
                    ReturnValuesOnConditionCheckFailure: str | None = None, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.UpdateItem"] += 1
            table = self._table("UpdateItem", TableName)
            key = table.key_of("UpdateItem", Key)
            old = table.items.get(key)
            if not self._condition("UpdateItem", ConditionExpression, ExpressionAttributeNames,
                                   ExpressionAttributeValues, old, table):
                self._failed("UpdateItem", old, ReturnValuesOnConditionCheckFailure)
            new = self._updated("UpdateItem", table, key, old, UpdateExpression, ExpressionAttributeNames,
                                ExpressionAttributeValues)
            self._write("UpdateItem", table, key, new)
            if ReturnValues == "ALL_NEW":
                return {"Attributes": dict(new)}
            if ReturnValues == "ALL_OLD":
                return {"Attributes": dict(old)} if old else {}
            if ReturnValues != "NONE":
                raise NotImplementedError(f"ReturnValues={ReturnValues}")
            return {}

    def delete_item(self, *, TableName: str, Key: dict, ConditionExpression: str | None = None,
                    ExpressionAttributeNames: dict | None = None, ExpressionAttributeValues: dict | None = None,
                    ReturnValuesOnConditionCheckFailure: str | None = None, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.DeleteItem"] += 1
            table = self._table("DeleteItem", TableName)
            key = table.key_of("DeleteItem", Key)
            old = table.items.get(key)
            if not self._condition("DeleteItem", ConditionExpression, ExpressionAttributeNames,
                                   ExpressionAttributeValues, old, table):
                self._failed("DeleteItem", old, ReturnValuesOnConditionCheckFailure)
            self._write("DeleteItem", table, key, None)
            return {}

    # -- many items
    def query(self, *, TableName: str, KeyConditionExpression: str, ExpressionAttributeNames: dict | None = None,
              ExpressionAttributeValues: dict | None = None, IndexName: str | None = None,
              ScanIndexForward: bool = True, Limit: int | None = None, ExclusiveStartKey: dict | None = None,
              FilterExpression: str | None = None, ConsistentRead: bool = False, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.Query"] += 1
            table = self._table("Query", TableName)
            if IndexName is not None and IndexName not in table.gsis:
                _invalid("Query", f"The table does not have the specified index: {IndexName}")
            if IndexName is not None and ConsistentRead:
                _invalid("Query", "Consistent reads are not supported on global secondary indexes")
            index = table.gsis[IndexName] if IndexName else table.base
            names, values = ExpressionAttributeNames or {}, ExpressionAttributeValues or {}
            partition, lo, hi, prefix, inclusive = self._key_range(index, KeyConditionExpression, names, values)
            if ExclusiveStartKey is not None:
                start = index.entry(ExclusiveStartKey, table.pk, table.sk)
                if start is None or start[0] != partition or set(ExclusiveStartKey) - {
                        index.pk, index.sk, table.pk, table.sk}:
                    _invalid("Query", "The provided starting key is invalid")
            entries = index.partitions.get(partition)
            out: list[dict] = []
            read_bytes = 0
            evaluated = 0
            last_key = None
            if entries:
                if ExclusiveStartKey is not None:  # resume strictly after it, in the reading direction
                    if ScanIndexForward and (lo is None or start[1] >= lo):
                        lo, inclusive = start[1], (False, inclusive[1])
                    elif not ScanIndexForward and (hi is None or start[1] <= hi):
                        hi, inclusive = start[1], (inclusive[0], False)
                it = entries.irange(lo, hi, inclusive=inclusive, reverse=not ScanIndexForward)
                condition = self._compiled_filter("Query", FilterExpression, names, values, table) \
                    if FilterExpression else None
                for entry in it:
                    if prefix is not None and not entry[0].startswith(prefix):
                        if ScanIndexForward:
                            break
                        continue
                    attrs = table.items[(partition, entry[0])] if index.name is None else table.items[entry[1:]]
                    evaluated += 1
                    read_bytes += item_size(attrs)
                    if condition is None or condition(attrs):
                        out.append(dict(attrs))
                    if (Limit and evaluated >= Limit) or read_bytes >= MAX_PAGE_BYTES:
                        last_key = {a: attrs[a] for a in dict.fromkeys((index.pk, index.sk, table.pk, table.sk))}
                        break
            self.meter.rcu += _read_units(read_bytes, ConsistentRead)
            resp: dict[str, Any] = {"Items": out, "Count": len(out), "ScannedCount": evaluated}
            if last_key:
                resp["LastEvaluatedKey"] = last_key
            return resp

    @staticmethod
    def _key_range(index: _Index, expr: str, names: dict, values: dict) -> tuple:
        m = _KEY_CONDITION.match(expr)
        if not m:
            raise NotImplementedError(f"KeyConditionExpression not supported by the fake: {expr!r}")

        def name(ref: str) -> str:
            return names.get(ref, ref) if ref.startswith("#") else ref

        def value(ref: str) -> str:
            v = values.get(ref)
            if v is None or "S" not in v:
                _invalid("Query", f"missing or non-string key value {ref}")
            return v["S"]

        if name(m["pk"]) != index.pk:
            _invalid("Query", "Query condition missed key schema element")
        partition = value(m["pkv"])
        sk_attr = m["bw"] or m["bt"] or m["cmp"]
        if sk_attr and name(sk_attr) != index.sk:
            _invalid("Query", "Query key condition not supported")
        # Index entries are tuples: (sk,) on the table, (sk, pk, sk) on a GSI; bounds compare on the
        # first element, with () below and (x + max char,) above every entry starting with x.
        top = "\U0010ffff"
        if m["bw"]:
            p = value(m["bwv"])
            return partition, (p,), (p + top,), p, (True, False)
        if m["bt"]:
            lo, hi = value(m["lo"]), value(m["hi"])
            if lo > hi:
                _invalid("Query", "Invalid KeyConditionExpression: the BETWEEN bounds are in the wrong order")
            return partition, (lo,), (hi, top), None, (True, True)
        if m["cmp"]:
            v, op = value(m["cv"]), m["op"]
            return partition, *{
                "=": ((v,), (v, top), None, (True, True)),
                "<": (None, (v,), None, (True, False)),
                "<=": (None, (v, top), None, (True, True)),
                ">": ((v, top), None, None, (False, True)),
                ">=": ((v,), None, None, (True, True)),
            }[op]
        return partition, None, None, None, (True, True)

    def batch_get_item(self, *, RequestItems: dict, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.BatchGetItem"] += 1
            if sum(len(r["Keys"]) for r in RequestItems.values()) > 100:
                _invalid("BatchGetItem", "Too many items requested for the BatchGetItem call")
            responses: dict[str, list] = {}
            for name, request in RequestItems.items():
                table = self._table("BatchGetItem", name)
                found = responses.setdefault(name, [])
                seen = set()
                for key in request["Keys"]:
                    k = table.key_of("BatchGetItem", key)
                    if k in seen:
                        _invalid("BatchGetItem", "Provided list of item keys contains duplicates")
                    seen.add(k)
                    attrs = table.items.get(k)
                    self.meter.rcu += _read_units(item_size(attrs), request.get("ConsistentRead", False))
                    if attrs:
                        found.append(dict(attrs))
            return {"Responses": responses, "UnprocessedKeys": {}}

    def batch_write_item(self, *, RequestItems: dict, **_: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.BatchWriteItem"] += 1
            if sum(len(r) for r in RequestItems.values()) > 25:
                _invalid("BatchWriteItem", "Too many items requested for the BatchWriteItem call")
            writes = []
            for name, requests in RequestItems.items():
                table = self._table("BatchWriteItem", name)
                seen = set()
                for request in requests:
                    if "PutRequest" in request:
                        attrs = request["PutRequest"]["Item"]
                        key = table.key_of("BatchWriteItem", {table.pk: attrs.get(table.pk, {}),
                                                              table.sk: attrs.get(table.sk, {})})
                        table.check_item("BatchWriteItem", attrs)
                        new = dict(attrs)
                    else:
                        key, new = table.key_of("BatchWriteItem", request["DeleteRequest"]["Key"]), None
                    if key in seen:
                        _invalid("BatchWriteItem", "Provided list of item keys contains duplicates")
                    seen.add(key)
                    writes.append((table, key, new))
            for table, key, new in writes:
                self._write("BatchWriteItem", table, key, new)
            return {"UnprocessedItems": {}}

    def transact_write_items(self, *, TransactItems: list[dict], **_: Any) -> dict:
        op = "TransactWriteItems"
        with self._lock:
            self.meter.requests["dynamodb.TransactWriteItems"] += 1
            if len(TransactItems) > 100:
                _invalid(op, "Member must have length less than or equal to 100")
            planned, reasons, seen = [], [], set()
            for entry in TransactItems:
                if len(entry) != 1:
                    _invalid(op, "TransactItems can only contain one of Check, Put, Update or Delete")
                (kind, spec), = entry.items()
                table = self._table(op, spec["TableName"])
                if kind == "Put":
                    raw = spec["Item"]
                    key = table.key_of(op, {table.pk: raw.get(table.pk, {}), table.sk: raw.get(table.sk, {})})
                else:
                    key = table.key_of(op, spec["Key"])
                if (table.name, key) in seen:
                    _invalid(op, "Transaction request cannot include multiple operations on one item")
                seen.add((table.name, key))
                old = table.items.get(key)
                names, values = spec.get("ExpressionAttributeNames"), spec.get("ExpressionAttributeValues")
                if not self._condition(op, spec.get("ConditionExpression"), names, values, old, table):
                    reason = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
                    if old and spec.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                        reason["Item"] = dict(old)
                    reasons.append(reason)
                    continue
                reasons.append({"Code": "None"})
                if kind == "Put":
                    planned.append((table, key, dict(spec["Item"])))
                elif kind == "Update":
                    planned.append((table, key, self._updated(op, table, key, old, spec["UpdateExpression"],
                                                              names, values)))
                elif kind == "Delete":
                    planned.append((table, key, None))
                elif kind == "ConditionCheck":
                    planned.append((table, key, old))  # a check: billed, nothing written
                else:
                    _invalid(op, f"unknown transaction operation {kind}")
            for table, _key, new in planned:
                if new is not None:
                    table.check_item(op, new)
            if any(r["Code"] != "None" for r in reasons):
                for entry in TransactItems:
                    (kind, spec), = entry.items()
                    table = self.tables[spec["TableName"]]
                    raw = spec.get("Key") or {table.pk: spec["Item"][table.pk], table.sk: spec["Item"][table.sk]}
                    self.meter.bill_write(op, 2 * write_units(item_size(table.items.get(table.key_of(op, raw)))))
                codes = ", ".join(r["Code"] for r in reasons)
                _raise(_Exceptions.TransactionCanceledException, op,
                       f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                       CancellationReasons=reasons)
            for table, key, new in planned:
                if table.items.get(key) is new:  # ConditionCheck
                    self.meter.bill_write(op, 2 * write_units(item_size(new)), sk=key[1])
                else:
                    self._write(op, table, key, new, factor=2)
            return {}

    # -- the table itself
    def create_table(self, **definition: Any) -> dict:
        with self._lock:
            self.meter.requests["dynamodb.CreateTable"] += 1
            name = definition["TableName"]
            if name in self.tables:
                _raise(_Exceptions.ResourceInUseException, "CreateTable", f"Table already exists: {name}")
            self.tables[name] = _Table(definition)
            return {"TableDescription": {"TableName": name, "TableStatus": "ACTIVE"}}

    def update_time_to_live(self, *, TableName: str, TimeToLiveSpecification: dict, **_: Any) -> dict:
        self._table("UpdateTimeToLive", TableName)
        return {"TimeToLiveSpecification": TimeToLiveSpecification}

    def put_raw(self, table_name: str, attrs: dict[str, Any]) -> None:
        """Seed an item without a request (bench set-up: not billed, not counted)."""
        with self._lock:
            table = self.tables[table_name]
            table.store((attrs[table.pk]["S"], attrs[table.sk]["S"]), dict(attrs), bill=False)


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / (4 * KB))) if size else 1
    return units if consistent else units / 2


# -- SQS -----------------------------------------------------------------------------------------------
@dataclass
class _Message:
    id: str
    body: str
    attributes: dict[str, Any]
    sent_at: float
    visible_at: float
    receives: int = 0
    receipt: str | None = None


@dataclass
class _Queue:
    name: str
    url: str
    attributes: dict[str, str]
    messages: dict[str, _Message] = field(default_factory=dict)  # insertion order: FIFO-ish like moto


class FakeSQS:
    exceptions = _Exceptions

    def __init__(self, meter: Meter, lock: threading.RLock, clock: Callable[[], float]):
        self.meter = meter
        self.queues: dict[str, _Queue] = {}  # by URL
        self._lock = lock
        self.clock = clock

    def _count(self, op: str) -> None:
        self.meter.requests[f"sqs.{op}"] += 1
        self.meter.sqs_requests += 1

    def _queue(self, op: str, url: str) -> _Queue:
        queue = self.queues.get(url)
        if queue is None:
            _raise(_Exceptions.QueueDoesNotExist, op, "The specified queue does not exist.")
        return queue

    def create_queue(self, *, QueueName: str, Attributes: dict | None = None, **_: Any) -> dict:
        with self._lock:
            self._count("CreateQueue")
            url = f"https://sqs.us-east-1.amazonaws.com/123456789012/{QueueName}"
            if url not in self.queues:
                self.queues[url] = _Queue(QueueName, url, {"VisibilityTimeout": "30", **(Attributes or {})})
            return {"QueueUrl": url}

    def get_queue_url(self, *, QueueName: str, **_: Any) -> dict:
        with self._lock:
            self._count("GetQueueUrl")
            for queue in self.queues.values():
                if queue.name == QueueName:
                    return {"QueueUrl": queue.url}
            _raise(_Exceptions.QueueDoesNotExist, "GetQueueUrl", "The specified queue does not exist.")
            return {}  # unreachable

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str] | None = None, **_: Any) -> dict:
        with self._lock:
            self._count("GetQueueAttributes")
            queue = self._queue("GetQueueAttributes", QueueUrl)
            now = self.clock()
            visible = sum(1 for m in queue.messages.values() if m.visible_at <= now)
            delayed = sum(1 for m in queue.messages.values() if m.visible_at > now and m.receives == 0)
            attrs = {**queue.attributes, "QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{queue.name}",
                     "ApproximateNumberOfMessages": str(visible),
                     "ApproximateNumberOfMessagesNotVisible": str(len(queue.messages) - visible - delayed),
                     "ApproximateNumberOfMessagesDelayed": str(delayed)}
            wanted = AttributeNames or ["All"]
            return {"Attributes": attrs if "All" in wanted else {k: v for k, v in attrs.items() if k in wanted}}

    def _enqueue(self, queue: _Queue, body: str, delay: int, attributes: dict | None) -> str:
        now = self.clock()
        message = _Message(str(uuid.uuid4()), body, attributes or {}, now, now + delay)
        queue.messages[message.id] = message
        return message.id

    def send_message(self, *, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0,
                     MessageAttributes: dict | None = None, **_: Any) -> dict:
        with self._lock:
            self._count("SendMessage")
            queue = self._queue("SendMessage", QueueUrl)
            return {"MessageId": self._enqueue(queue, MessageBody, DelaySeconds, MessageAttributes)}

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict], **_: Any) -> dict:
        with self._lock:
            self._count("SendMessageBatch")
            queue = self._queue("SendMessageBatch", QueueUrl)
            if not 1 <= len(Entries) <= 10:
                _raise(ClientError, "SendMessageBatch", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
            if sum(len(e["MessageBody"].encode()) for e in Entries) > 256 * KB:
                _raise(ClientError, "SendMessageBatch", "AWS.SimpleQueueService.BatchRequestTooLong")
            ok = [{"Id": e["Id"], "MessageId": self._enqueue(queue, e["MessageBody"], e.get("DelaySeconds", 0),
                                                             e.get("MessageAttributes"))} for e in Entries]
            return {"Successful": ok, "Failed": []}

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int = 1, VisibilityTimeout: int | None = None,
                        MessageAttributeNames: list[str] | None = None, **_: Any) -> dict:
        import json

        with self._lock:
            self._count("ReceiveMessage")
            queue = self._queue("ReceiveMessage", QueueUrl)
            now = self.clock()
            timeout = int(queue.attributes.get("VisibilityTimeout", 30)) if VisibilityTimeout is None \
                else VisibilityTimeout
            redrive = json.loads(queue.attributes["RedrivePolicy"]) if "RedrivePolicy" in queue.attributes else None
            out = []
            for message in list(queue.messages.values()):
                if len(out) >= MaxNumberOfMessages:
                    break
                if message.visible_at > now:
                    continue
                if redrive and message.receives >= int(redrive["maxReceiveCount"]):
                    del queue.messages[message.id]  # to its DLQ, as SQS moves it on this receive
                    dlq_name = redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
                    dlq = next(q for q in self.queues.values() if q.name == dlq_name)
                    message.receives, message.visible_at = 0, now
                    dlq.messages[message.id] = message
                    continue
                message.receives += 1
                message.visible_at = now + timeout
                message.receipt = f"{message.id}#{message.receives}#{uuid.uuid4().hex[:8]}"
                m: dict[str, Any] = {"MessageId": message.id, "ReceiptHandle": message.receipt,
                                     "Body": message.body, "MD5OfBody": "",
                                     "Attributes": {"ApproximateReceiveCount": str(message.receives),
                                                    "SentTimestamp": str(int(message.sent_at * 1000))}}
                if MessageAttributeNames and message.attributes:
                    m["MessageAttributes"] = message.attributes
                out.append(m)
            return {"Messages": out} if out else {}

    def _delete(self, queue: _Queue, receipt: str) -> bool:
        message_id = receipt.split("#", 1)[0]
        message = queue.messages.get(message_id)
        if message is None:
            return True  # already deleted: SQS accepts it
        if message.receipt != receipt:
            return False
        del queue.messages[message_id]
        return True

    def delete_message(self, *, QueueUrl: str, ReceiptHandle: str, **_: Any) -> dict:
        with self._lock:
            self._count("DeleteMessage")
            if not self._delete(self._queue("DeleteMessage", QueueUrl), ReceiptHandle):
                _raise(_Exceptions.ReceiptHandleIsInvalid, "DeleteMessage", "The receipt handle is not valid")
            return {}

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict], **_: Any) -> dict:
        with self._lock:
            self._count("DeleteMessageBatch")
            queue = self._queue("DeleteMessageBatch", QueueUrl)
            ok, failed = [], []
            for e in Entries:
                (ok if self._delete(queue, e["ReceiptHandle"]) else failed).append({"Id": e["Id"]})
            return {"Successful": ok, "Failed": [{**f, "Code": "ReceiptHandleIsInvalid", "SenderFault": True}
                                                 for f in failed]}

    def purge_queue(self, *, QueueUrl: str, **_: Any) -> dict:
        with self._lock:
            self._count("PurgeQueue")
            self._queue("PurgeQueue", QueueUrl).messages.clear()
            return {}


# -- the two together ------------------------------------------------------------------------------------
class FakeAWS:
    """DynamoDB and SQS answered in-process; other services (KMS, SSM) are left to the caller's
    fallback (moto's mock_aws in tests, the real clients otherwise)."""

    def __init__(self, clock: Callable[[], float] = time.time, *, check: bool = False):
        self.meter = Meter()
        lock = threading.RLock()
        self.dynamodb = FakeDynamoDB(self.meter, lock, check=check)
        self.sqs = FakeSQS(self.meter, lock, clock)

    def client(self, service: str) -> Any | None:
        """The factory for chalicelib.platform.aws.use_clients: None leaves the service to boto3."""
        return {"dynamodb": self.dynamodb, "sqs": self.sqs}.get(service)


# -- why: moto through botocore vs this fake, per request ---------------------------------------------------
def compare(items: int) -> dict[str, dict[str, float]]:
    """Time `items` cap-claim UpdateItems, then a paged Query (100 per page) over them, through
    chalicelib.store on moto's mock_aws (botocore serialising, moto's backend) and on this fake."""
    import os

    from moto import mock_aws

    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
                       "SCRM_TABLE_NAME": "t", "SCRM_EVENTS_QUEUE": "e", "SCRM_SENDS_QUEUE": "s",
                       "SCRM_SYNC_QUEUE": "y", "SCRM_ADMIN_KEY": "k"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from chalicelib.platform import aws, caches
    from chalicelib.store import get_table, schema

    out = {}
    for label in ("moto", "fake"):
        with mock_aws():
            if label == "fake":
                aws.use_clients(FakeAWS().client)
            caches.clear_all()
            schema.create_table(aws.client("dynamodb"), "t")
            table = get_table()
            start = time.perf_counter()
            for i in range(items):
                table.update({"PK": "CORP#c", "SK": f"CAP#2024-01-01#wm{i:030d}"}, expression="SET #b = :v ADD n :one",
                             names={"#b": "b_x"}, values={":v": "0#alice", ":one": 1, ":cap": 1},
                             condition="attribute_not_exists(#b) AND (attribute_not_exists(n) OR n < :cap)")
            claim = (time.perf_counter() - start) / items
            start, pages, cursor = time.perf_counter(), 0, None
            while True:
                _, cursor = table.query("CORP#c", sk_prefix="CAP#", limit=100, cursor=cursor)
                pages += 1
                if not cursor:
                    break
            out[label] = {"update_item_ms": round(claim * 1000, 3),
                          "query_page_ms": round((time.perf_counter() - start) / pages * 1000, 2)}
            aws.use_clients(None)
    return out


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="moto through botocore vs bench/fake_aws.py, per request")
    parser.add_argument("--items", type=int, default=5000)
    print(json.dumps(compare(parser.parse_args().items), indent=2))


# -- AWS's round trips, for benches that measure latency -----------------------------------------------
class WithLatency:
    """A FakeAWS client that answers after `seconds` (sleeping off the fake's lock and the GIL, as a
    network round trip), so a latency bench on the fake sees AWS's request times rather than ~0 or
    a starved moto server's. ReceiveMessage long-polls as SQS does: an empty queue is asked again
    until a message arrives or `WaitTimeSeconds` pass (without it, pollers would spin)."""

    POLL_SECONDS = 0.02

    def __init__(self, inner: Any, seconds: float):
        self._inner, self._seconds = inner, seconds

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_") or name == "exceptions":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            time.sleep(self._seconds)
            if name != "receive_message":
                return attr(*args, **kwargs)
            until = time.monotonic() + float(kwargs.pop("WaitTimeSeconds", 0) or 0)
            while True:
                out = attr(*args, **kwargs)
                if out.get("Messages") or time.monotonic() >= until:
                    return out
                time.sleep(self.POLL_SECONDS)

        return call


def with_latency(fake: FakeAWS, *, dynamodb_seconds: float, sqs_seconds: float) -> Callable[[str], Any]:
    """The factory for chalicelib.platform.aws.use_clients: `fake`'s clients with round trips."""
    clients = {"dynamodb": WithLatency(fake.dynamodb, dynamodb_seconds), "sqs": WithLatency(fake.sqs, sqs_seconds)}
    return clients.get
