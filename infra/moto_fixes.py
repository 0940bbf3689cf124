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

- KMS keys forget their material on restart: moto makes every key's id and material up anew,
  so data sealed under a key (corp secrets) never opens again after `make run` restarts, whereas
  an AWS key outlives any process. A key created with the tags `LOCAL_KEY_ID_TAG` and
  `LOCAL_KEY_MATERIAL_TAG` (base64 of 32 bytes) takes that id and material instead (the tags are
  not kept), so infra/local_stack.py can bring its secrets key back with the data it sealed.

- SQS receives cost O(queue length) per message received: moto's ReceiveMessage checks each
  message's retention through `get_queue_attributes`, which builds the queue's whole attribute
  dict (counting every message, visible, in flight and delayed) three times over, so a burst's
  backlog of 500 callbacks made moto spend ~40 % of its CPU counting (py-spy on the welcome burst).
  AWS keeps these counts for free. The fix reads the retention period directly, builds the
  attribute dict once per GetQueueAttributes, and reads moto's clock once per pass over the
  messages (not twice per message); what they answer is unchanged.

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


LOCAL_KEY_ID_TAG = "scrm-local:key-id"
LOCAL_KEY_MATERIAL_TAG = "scrm-local:key-material"


def kms_keys_with_given_material() -> None:
    import base64

    from moto.kms.models import KmsBackend

    if getattr(KmsBackend.create_key, "_scrm_fixed", False):
        return
    original = KmsBackend.create_key

    def create_key(self: Any, policy: Any, key_usage: Any, key_spec: Any, description: Any,
                   tags: list[dict[str, str]] | None, *args: Any, **kwargs: Any) -> Any:
        given = {t["TagKey"]: t.get("TagValue", "") for t in tags or []}
        ours = (LOCAL_KEY_ID_TAG, LOCAL_KEY_MATERIAL_TAG)
        if not all(name in given for name in ours):
            return original(self, policy, key_usage, key_spec, description, tags, *args, **kwargs)
        material = base64.b64decode(given[LOCAL_KEY_MATERIAL_TAG])
        if len(material) != 32:
            raise ValueError("local key material must be 32 bytes")
        rest = [t for t in tags or [] if t["TagKey"] not in ours]
        key = original(self, policy, key_usage, key_spec, description, rest, *args, **kwargs)
        if key.id != given[LOCAL_KEY_ID_TAG]:
            del self.keys[key.id]
            if rest:
                self.tagger.delete_all_tags_for_resource(key.id)
            key.arn = key.arn.replace(key.id, given[LOCAL_KEY_ID_TAG])
            key.id = given[LOCAL_KEY_ID_TAG]
            self.keys[key.id] = key
            if rest:
                self.tagger.tag_resource(key.id, rest)
        key.key_material = material
        return key

    create_key._scrm_fixed = True  # type: ignore[attr-defined]
    KmsBackend.create_key = create_key  # type: ignore[method-assign]


def cheap_sqs_attributes() -> None:
    from moto.sqs import models as sqs_models
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_scrm_cheap_attributes", False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > sqs_models.unix_time()  # (moto's clock, as before)

    original = SQSBackend.get_queue_attributes

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        if not attribute_names or "All" in attribute_names:
            return original(self, queue_name, attribute_names)  # (its own checks and "All": built once)
        queue = self.get_queue(queue_name)
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        if any(name not in valid for name in attribute_names):
            return original(self, queue_name, attribute_names)  # its InvalidAttributeName
        attributes = queue.attributes  # once: each access counts every message again
        return {name: attributes[name] for name in attribute_names if attributes.get(name) is not None}

    def visible_now(queue: Any) -> list[Any]:
        now = sqs_models.unix_time_millis()  # once: Message.visible / .delayed read it per message
        return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]

    def count(test: Any) -> property:
        def counted(queue: Any) -> int:
            now = sqs_models.unix_time_millis()
            return sum(1 for m in queue._messages if test(m, now))
        return property(counted)

    Queue = sqs_models.Queue
    Queue.messages = property(visible_now)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_delayed = count(lambda m, now: now < m.delayed_until)  # type: ignore
    Queue.approximate_number_of_messages_not_visible = count(lambda m, now: not now > m.visible_at)  # type: ignore
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]
    SQSBackend._scrm_cheap_attributes = True  # type: ignore[attr-defined]


def apply() -> None:
    """Apply the fixes (idempotent) unless SCRM_STOCK_MOTO=1."""
    if os.environ.get("SCRM_STOCK_MOTO") != "1":
        cheap_moto_transactions()
        serialized_dynamodb()
        kms_keys_with_given_material()
        cheap_sqs_attributes()
