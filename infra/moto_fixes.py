"""Local-only corrections to moto, applied by the local stack and the benches (never deployed).

moto is our AWS on a developer's machine. Where it behaves in a way AWS does not, and that
distorts what the local stack shows, it is corrected here, in one place.

- TransactWriteItems: moto 5 deep-copies every table a transaction touches (to roll back on a
  failed condition), once per item: O(table size) per commit, so the local consumer slows down as
  the table grows (0.3-0.5 s per commit after a few hundred adds), and a rollback also undoes
  other requests' writes made meanwhile. AWS has neither. The fix keeps moto's own logic but
  snapshots only the items the transaction touches and restores those on failure.

- Concurrency: moto's server handles requests on threads, but its DynamoDB does not apply a
  conditional write (or a transaction and its rollback) atomically against other threads; AWS
  does. With several consumers at once (as Lambda runs them) two deliveries of one event could
  both pass a condition. DynamoDB writes are therefore served one at a time (reads and other
  services, e.g. SQS long polls, stay concurrent).

`SCRM_STOCK_MOTO=1` leaves moto as it is.
"""

from __future__ import annotations

import os
from typing import Any


def cheap_moto_transactions() -> None:
    import copy

    import moto.dynamodb.models as ddb_models

    backend_cls = ddb_models.DynamoDBBackend
    if getattr(backend_cls.transact_write_items, "_scrm_fixed", False):
        return

    class _NoTableCopy:
        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(x: Any, memo: Any = None) -> Any:
            return x if isinstance(x, ddb_models.Table) else copy.deepcopy(x, memo)

    original = backend_cls.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        snapshots = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            try:
                table = self.get_table(op["TableName"])
                key = op.get("Key") or {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a}
                current = self.get_item(op["TableName"], key)
                snapshots.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
            except Exception:  # moto raises the proper error itself below
                continue
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attrs in reversed(snapshots):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, copy.deepcopy(attrs))
            raise

    transact_write_items._scrm_fixed = True  # type: ignore[attr-defined]
    ddb_models.copy = _NoTableCopy()  # the module's `copy`: whole tables are no longer copied
    backend_cls.transact_write_items = transact_write_items


_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def serialized_dynamodb() -> None:
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication.__call__, "_scrm_fixed", False):
        return
    original = DomainDispatcherApplication.__call__
    lock = threading.Lock()

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not (target.startswith("DynamoDB") and target.rsplit(".", 1)[-1] in _WRITES):
            return original(self, environ, start_response)
        with lock:  # the whole response is produced under the lock
            return list(original(self, environ, start_response))

    __call__._scrm_fixed = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.__call__ = __call__  # type: ignore[method-assign]


def apply() -> None:
    """Apply the fixes (idempotent) unless SCRM_STOCK_MOTO=1."""
    if os.environ.get("SCRM_STOCK_MOTO") != "1":
        cheap_moto_transactions()
        serialized_dynamodb()
