"""A bench deployment in the driver's own process, as bench/broadcast.py and bench/full_sync.py set
it up: its environment (fake credentials, so nothing reaches AWS; the resource names of
samples.DEPLOYMENT_ENV), then its AWS resources and one corp, made with chalicelib's own functions.

Imports nothing but the standard library (and bench/samples.py) at module level: a driver installs
bench/aws_requests.py's hooks before any botocore client exists.
"""

from __future__ import annotations

import os
import time

from bench.samples import DEPLOYMENT_ENV

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    **DEPLOYMENT_ENV,
}
# The bench corp's secrets (the sandbox's corp is registered with the same).
TOKEN = "benchtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRET = "bench-contact-secret"


def use_env() -> None:
    """The bench deployment's environment in this process (AWS_ENDPOINT_URL is the driver's)."""
    os.environ.update(ENV)
    os.environ.pop("AWS_PROFILE", None)


def create(corp_id: str) -> None:
    """Runtime caches dropped; the table, the queues and the secrets key created as infra/ defines
    them; `corp_id` registered as POST /api/v1/corps does (sealed secrets + corps.items.create_corp)."""
    from chalicelib.api.core import hash_api_key, new_api_key
    from chalicelib.corps import items as corp_items
    from chalicelib.platform import aws, caches, queues, settings
    from chalicelib.platform import sealing as secrets
    from chalicelib.store import schema

    caches.clear_all()
    s = settings.get_settings()
    schema.create_table(aws.client("dynamodb"), s.table_name)
    queues.create_queues(aws.client("sqs"), s)
    secrets.ensure_local_key(aws.client("kms"), s.kms_key_id)
    now = int(time.time())
    sealed = secrets.seal(secrets.CorpSecrets(callback_token=TOKEN, encoding_aes_key=AES_KEY, contact_secret=SECRET),
                          corp_id=corp_id)
    corp_items.create_corp(
        corp_items.CorpItem(corp_id=corp_id, name="Bench Brand", time_zone="Asia/Shanghai",
                            sealed_secrets=sealed, created_at=now),
        corp_items.ApiKeyItem(key_hash=hash_api_key(new_api_key()), corp_id=corp_id, label="bench", created_at=now),
    )
