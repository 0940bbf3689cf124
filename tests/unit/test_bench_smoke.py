"""The callback path's AWS requests, counted with bench/aws_requests.py's botocore hooks.

Acceptance claim: the minimum for the callback path is one SQS send, and a warm instance pays
exactly that (corp runtime and queue URL cached in memory). The cold callback may also read the
corp (DynamoDB GetItem), open its secrets (KMS Decrypt) and look the queue URL up (SQS
GetQueueUrl), nothing else.
"""

from __future__ import annotations

import pytest

from tests.helpers import CORP_ID, contact_xml, drain_queue, encrypted, register

COLD_ALLOWED = {"dynamodb.GetItem", "kms.Decrypt", "sqs.GetQueueUrl", "sqs.SendMessage"}


@pytest.fixture
def counting():
    from bench import aws_requests

    aws_requests.install()
    yield aws_requests.count_aws_requests
    aws_requests.uninstall()


def _post(client, xml: bytes):
    query, body = encrypted(xml, CORP_ID)
    return client.http.post(f"/wecom/{CORP_ID}/callback?{query}", body=body,
                            headers={"Content-Type": "text/xml"})


def test_warm_callback_sends_exactly_one_sqs_message(aws, counting):
    from chalice.test import Client

    from chalicelib import aws as aws_clients
    from chalicelib import corps, queues
    from chalicelib.api import core
    from chalicelib.store import reset_table

    corps.forget_runtime()
    core.reset_admin_key()
    import app as app_module

    try:
        with Client(app_module.app, stage_name="test") as client:
            register(client)
            # Start the callback path cold: clients, table, queue URLs and corp cache built by the
            # fixture or the registration would predate the hook (and hide requests).
            aws_clients.reset_clients()
            reset_table()
            queues.reset_queue_urls()
            corps.forget_runtime()

            with counting() as cold:
                resp = _post(client, contact_xml(customer="wmCold"))
            assert resp.status_code == 200, resp.body
            assert cold["sqs.SendMessage"] == 1, cold
            assert set(cold) <= COLD_ALLOWED, cold

            with counting() as warm:
                resp = _post(client, contact_xml(customer="wmWarm"))
            assert resp.status_code == 200, resp.body
            assert dict(warm) == {"sqs.SendMessage": 1}, warm
            assert warm.total == 1

        assert len(drain_queue(aws.events_queue)) == 2
    finally:
        corps.forget_runtime()
