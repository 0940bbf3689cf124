"""DynamoDB: the only package that knows keys, expressions and botocore's error codes.

Submodules are imported where used (no eager boto3 import here).
"""

from __future__ import annotations

from functools import lru_cache

from chalicelib.platform import caches
from chalicelib.store.table import ConditionFailed, InvalidCursor, RequestRejected, StoreError, Table

__all__ = ["ConditionFailed", "InvalidCursor", "RequestRejected", "StoreError", "Table", "get_table"]


@lru_cache(maxsize=1)
def get_table() -> Table:
    from chalicelib.platform import aws
    from chalicelib.platform.settings import get_settings

    return Table(aws.client("dynamodb"), get_settings().table_name)


caches.register("store:table", get_table.cache_clear)
