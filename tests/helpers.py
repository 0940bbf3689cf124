"""Small builders shared by tests: a registered corp, encrypted WeCom callbacks, SQS events, the local
stack."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CORP_ID = "wwtestcorp0000001"
TOKEN = "testtoken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRET = "contact-secret-for-tests"
ADMIN = {"Authorization": "Bearer admin-test-key", "Content-Type": "application/json"}

# The corp the sandbox of tests/conftest.py's `sb` fixture holds (the WeCom client's tests), and the
# moment its frozen `clock` starts at.
SANDBOX_CORP = "wwclient00000001"
SANDBOX_SECRET = "client-secret"
T0 = 1_700_000_000


def corp_body(corp_id: str = CORP_ID, **overrides: Any) -> dict[str, Any]:
    body = {"corp_id": corp_id, "name": "Test Brand", "callback_token": TOKEN,
            "encoding_aes_key": AES_KEY, "contact_secret": SECRET}
    body.update(overrides)
    return body


def crypto_for(corp_id: str = CORP_ID):
    from chalicelib.wecom.crypto import CallbackCrypto

    return CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=corp_id)


def contact_xml(change_type: str = "add_external_contact", *, corp_id: str = CORP_ID,
                staff: str = "zhangsan", customer: str = "wmCustomer0001", state: str = "store-001",
                create_time: int | None = None, extra: str = "") -> bytes:
    ct = int(time.time()) if create_time is None else create_time
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{ct}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change_type}]]></ChangeType>"
        f"<UserID><![CDATA[{staff}]]></UserID><ExternalUserID><![CDATA[{customer}]]></ExternalUserID>"
        f"<State><![CDATA[{state}]]></State><WelcomeCode><![CDATA[WELCOME-{uuid.uuid4().hex[:8]}]]></WelcomeCode>"
        f"{extra}</xml>"
    ).encode()


def encrypted(xml: bytes, corp_id: str = CORP_ID, *, timestamp: int | None = None) -> tuple[str, bytes]:
    """(query string, body) exactly as WeCom posts them."""
    from urllib.parse import urlencode

    ts = str(int(time.time()) if timestamp is None else timestamp)
    params, body = crypto_for(corp_id).encrypt_callback(xml, timestamp=ts, nonce=uuid.uuid4().hex[:10])
    return urlencode(params), body


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event with a distinct messageId per record (chalice's generator reuses one)."""
    return {"Records": [
        {"messageId": f"m-{i}-{uuid.uuid4().hex[:6]}", "receiptHandle": f"rh-{i}", "body": b,
         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:scrm-test-events",
         "awsRegion": "us-east-1"} for i, b in enumerate(bodies)]}


def drain_queue(queue_name: str) -> list[str]:
    """Receive and delete everything waiting on a queue (moto), returning the bodies."""
    from chalicelib.platform import aws, queues

    sqs = aws.client("sqs")
    url = queues.queue_url(queue_name)
    bodies = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def register(client, corp_id: str = CORP_ID) -> dict[str, Any]:
    resp = client.http.post("/api/v1/corps", headers=ADMIN, body=json.dumps(corp_body(corp_id)))
    assert resp.status_code == 201, resp.body
    return json.loads(resp.body)


def one_table_copy_per_transaction(monkeypatch) -> None:
    """moto deep-copies the whole table once per operation of a TransactWriteItems (its rollback copy),
    so a commit of 8 ops on a table of thousands of items costs seconds. Copy it once per transaction:
    the copies are identical (nothing changes the table in between), only made 8 times fewer."""
    import copy as real_copy

    from moto.dynamodb import models as ddb

    made: dict[int, object] = {}

    class _Copy:
        def __getattr__(self, name: str) -> object:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value: object, memo: dict | None = None) -> object:
            if isinstance(value, ddb.Table):
                if id(value) not in made:
                    made[id(value)] = real_copy.deepcopy(value)
                return made[id(value)]
            return real_copy.deepcopy(value, memo)

    transact = ddb.DynamoDBBackend.transact_write_items

    def transact_once(self, transact_items):  # type: ignore[no-untyped-def]
        made.clear()
        try:
            return transact(self, transact_items)
        finally:
            made.clear()

    monkeypatch.setattr(ddb, "copy", _Copy())
    monkeypatch.setattr(ddb.DynamoDBBackend, "transact_write_items", transact_once)


@contextmanager
def local_stack(admin_key: str) -> Iterator[Any]:
    """The whole local stack (moto server, sandbox, chalice local, queue workers) on free ports, as
    the e2e and browser suites run it; stopped afterwards, with this process's environment and
    runtime caches as they were before it started."""
    from infra.local_stack import LocalStack, free_port
    from tests.conftest import reset_caches

    saved = dict(os.environ)
    os.environ.pop("WECOM_API_BASE", None)
    local = LocalStack(http_port=free_port(), moto_port=free_port(), sandbox_port=free_port(), admin_key=admin_key)
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        reset_caches()
