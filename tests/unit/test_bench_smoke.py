"""The callback path's AWS requests, counted with bench/aws_requests.py's botocore hooks.

Acceptance claim: the minimum for the callback path is one SQS send, and a warm instance pays
exactly that (corp runtime and queue URL cached in memory). The cold callback may also read the
corp (DynamoDB GetItem), open its secrets (KMS Decrypt) and look the queue URL up (SQS
GetQueueUrl, unless the deployment gave the URL: infra/ does), nothing else.
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


@pytest.mark.parametrize("url_in_env", [False, True], ids=["queue-url-asked", "queue-url-from-env"])
def test_warm_callback_sends_exactly_one_sqs_message(aws, counting, monkeypatch, url_in_env):
    from chalice.test import Client

    from chalicelib.platform import caches, queues, settings

    if url_in_env:
        monkeypatch.setenv(f"{settings.EVENTS_QUEUE}_URL", queues.queue_url(aws.events_queue))
    caches.clear_all()
    import app as app_module

    try:
        with Client(app_module.app, stage_name="test") as client:
            register(client)
            # Start the callback path cold: clients, table, queue URLs and corp cache built by the
            # fixture or the registration would predate the hook (and hide requests).
            caches.clear_all()

            with counting() as cold:
                resp = _post(client, contact_xml(customer="wmCold"))
            assert resp.status_code == 200, resp.body
            assert cold["sqs.SendMessage"] == 1, cold
            assert set(cold) <= COLD_ALLOWED, cold
            assert ("sqs.GetQueueUrl" in cold) is not url_in_env, cold

            with counting() as warm:
                resp = _post(client, contact_xml(customer="wmWarm"))
            assert resp.status_code == 200, resp.body
            assert dict(warm) == {"sqs.SendMessage": 1}, warm
            assert warm.total == 1

        assert len(drain_queue(aws.events_queue)) == 2
    finally:
        caches.clear_all()
