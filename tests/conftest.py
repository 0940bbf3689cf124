"""Shared fixtures.

`aws`: moto in-process (mock_aws) with the table and queues created from the same definitions
infra/ deploys, fresh for each test. Fast, and the same boto3 calls production makes.
"""

from __future__ import annotations

import os

import pytest

# Never reach a real AWS account from a test, whatever the developer's shell holds.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


def reset_caches() -> None:
    from chalicelib.platform import caches

    caches.clear_all()


@pytest.fixture
def clock():
    """The sandbox's clock, frozen at tests.helpers.T0: it moves only when the test (or a client's
    sleep) advances it."""
    from sandbox import Clock
    from tests.helpers import T0

    return Clock(T0, frozen=True)


@pytest.fixture
def sb(clock):
    """A WeCom sandbox on `clock` holding one corp (tests.helpers.SANDBOX_CORP, its contact secret
    SANDBOX_SECRET) with one staff member, alice."""
    from sandbox import Sandbox
    from tests.helpers import SANDBOX_CORP, SANDBOX_SECRET

    sandbox = Sandbox(clock=clock, sleep=clock.sleep)
    sandbox.register_corp(SANDBOX_CORP, secrets={"contact": SANDBOX_SECRET}, staff=[{"userid": "alice"}])
    return sandbox


@pytest.fixture
def aws_env(monkeypatch):
    """Environment of a test deployment (names only; no AWS yet)."""
    monkeypatch.setenv("SCRM_TABLE_NAME", "scrm-test")
    monkeypatch.setenv("SCRM_EVENTS_QUEUE", "scrm-test-events")
    monkeypatch.setenv("SCRM_SENDS_QUEUE", "scrm-test-sends")
    monkeypatch.setenv("SCRM_SYNC_QUEUE", "scrm-test-sync")
    monkeypatch.setenv("SCRM_ADMIN_KEY", "admin-test-key")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    reset_caches()
    yield
    reset_caches()


@pytest.fixture
def aws_backend():
    """What answers DynamoDB and SQS: "moto", or "fake" (bench/fake_aws.py, in-process, what the
    1M-recipient bench runs on). Store-level test modules override this fixture with both as params
    (`both_aws_backends`) so the fake is held to the same tests as moto; there the fake also evaluates
    every expression with moto and requires the same answer (check=True). "fake-unchecked": the fake
    alone, for runs too large for moto's expression evaluation (the 1,000-join group-code simulation)."""
    return "moto"


both_aws_backends = pytest.fixture(params=["moto", "fake"])(lambda request: request.param)


@pytest.fixture
def aws(aws_env, aws_backend):
    """moto in-process with the table and every queue (+ DLQ) created (DynamoDB and SQS on the fake
    when `aws_backend` is "fake" or "fake-unchecked"; KMS and SSM stay on moto)."""
    from moto import mock_aws

    from chalicelib.platform import aws as aws_clients
    from chalicelib.platform import queues
    from chalicelib.platform import sealing as secrets
    from chalicelib.platform.settings import get_settings
    from chalicelib.store import schema

    with mock_aws():
        if aws_backend in ("fake", "fake-unchecked"):
            from bench.fake_aws import FakeAWS

            aws_clients.use_clients(FakeAWS(check=aws_backend == "fake").client)
        try:
            settings = get_settings()
            schema.create_table(aws_clients.client("dynamodb"), settings.table_name)
            queues.create_queues(aws_clients.client("sqs"), settings)
            secrets.ensure_local_key(aws_clients.client("kms"), settings.kms_key_id)
            yield settings
        finally:
            aws_clients.use_clients(None)
