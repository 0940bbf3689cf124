"""Configuration from the environment, read once, typed.

Every name the deployment reads is a constant here and documented in README's configuration table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.platform import caches

TABLE_NAME = "SCRM_TABLE_NAME"
EVENTS_QUEUE = "SCRM_EVENTS_QUEUE"
SENDS_QUEUE = "SCRM_SENDS_QUEUE"
SYNC_QUEUE = "SCRM_SYNC_QUEUE"
AWS_ENDPOINT = "AWS_ENDPOINT_URL"
ADMIN_KEY = "SCRM_ADMIN_KEY"
ADMIN_KEY_PARAMETER = "SCRM_ADMIN_KEY_PARAMETER"
KMS_KEY_ID = "SCRM_KMS_KEY_ID"
WECOM_API_BASE = "WECOM_API_BASE"
PUBLIC_BASE_URL = "SCRM_PUBLIC_BASE_URL"
DEFAULT_TIME_ZONE = "SCRM_DEFAULT_TIME_ZONE"
DEDUPE_TTL_DAYS = "SCRM_DEDUPE_TTL_DAYS"

WECOM_PRODUCTION_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin"


@dataclass(frozen=True)
class Settings:
    table_name: str
    events_queue: str
    sends_queue: str
    sync_queue: str
    # Queue URLs, when the deployment knows them (CloudFormation's Ref): spares a cold start's
    # GetQueueUrl round trip. Unset, chalicelib.platform.queues asks SQS once per instance.
    events_queue_url: str | None
    sends_queue_url: str | None
    sync_queue_url: str | None
    aws_endpoint_url: str | None
    admin_key: str | None
    admin_key_parameter: str | None
    kms_key_id: str
    wecom_api_base: str
    public_base_url: str
    default_time_zone: str
    dedupe_ttl_days: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            table_name=e.get(TABLE_NAME, "scrm"),
            events_queue=e.get(EVENTS_QUEUE, "scrm-events"),
            sends_queue=e.get(SENDS_QUEUE, "scrm-sends"),
            sync_queue=e.get(SYNC_QUEUE, "scrm-sync"),
            events_queue_url=e.get(EVENTS_QUEUE + "_URL") or None,
            sends_queue_url=e.get(SENDS_QUEUE + "_URL") or None,
            sync_queue_url=e.get(SYNC_QUEUE + "_URL") or None,
            aws_endpoint_url=e.get(AWS_ENDPOINT) or None,
            admin_key=e.get(ADMIN_KEY) or None,
            admin_key_parameter=e.get(ADMIN_KEY_PARAMETER) or None,
            kms_key_id=e.get(KMS_KEY_ID, "alias/scrm-secrets"),
            wecom_api_base=(e.get(WECOM_API_BASE) or WECOM_PRODUCTION_API_BASE).rstrip("/"),
            public_base_url=(e.get(PUBLIC_BASE_URL) or "http://127.0.0.1:8000").rstrip("/"),
            default_time_zone=e.get(DEFAULT_TIME_ZONE, "Asia/Shanghai"),
            dedupe_ttl_days=int(e.get(DEDUPE_TTL_DAYS, "7")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


caches.register("settings", get_settings.cache_clear)  # tests change the environment
