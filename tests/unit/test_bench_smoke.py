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


@pytest.fixture
def bench_env(monkeypatch):
    """bench/broadcast.py sets a bench deployment's environment: give the tests theirs back."""
    import os

    from chalicelib.platform import caches

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    caches.clear_all()


def test_broadcast_bench_runs_in_process(bench_env):
    """bench/broadcast.py at a tiny N on the in-process fake: every customer once from its sender,
    the minimum of WeCom calls, and the figures the goals are stated in."""
    from bench import broadcast

    f = broadcast.run(300, staff=5, shared=0.2, stack_kind="fake", quiet=True, timeout=120)
    assert (f["status"], f["exactly_once_from_sender"], f["call_ratio"]) == ("sent", True, 1.0)
    assert f["wecom_calls"] == f["wecom_calls_min"] == 5
    assert f["planned"] == 300 and f["excluded"] == {"capped": 0, "lost_relation": 0, "no_sender": 0}
    assert 1.0 <= f["wcu_per_recipient"] < 2 and f["sqs_requests_per_recipient"] < 0.1
    assert set(f["planner_peak_mb"]) == {"plan0", "chunk"}
