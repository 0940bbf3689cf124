"""infra/moto_fixes.py's SQS fix: the local stack's moto answers SQS as before, without counting
the whole queue for every message it hands out (a burst's backlog made that ~40 % of moto's CPU)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def sqs():
    from infra import moto_fixes

    moto_fixes.cheap_sqs_attributes()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _attribute_builds(monkeypatch) -> list[int]:
    from moto.sqs.models import Queue

    builds = [0]
    built = Queue.attributes.fget

    def counted(self):
        builds[0] += 1
        return built(self)

    monkeypatch.setattr(Queue, "attributes", property(counted))
    return builds


def test_a_receive_does_not_build_the_queues_attributes_per_message(sqs, monkeypatch):
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for i in range(200):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    builds = _attribute_builds(monkeypatch)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == [f"m{i}" for i in range(10)]
    assert builds[0] == 0  # stock moto: 3 per message handed out (30 here), each counting all 200


def test_queue_attributes_answer_as_before_and_build_once(sqs, monkeypatch):
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b", DelaySeconds=30)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed", "MessageRetentionPeriod", "RedrivePolicy"]
    builds = _attribute_builds(monkeypatch)
    some = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert builds[0] == 1  # stock moto: 2 per name asked and once more
    assert some == {k: everything[k] for k in names if k in everything}
    assert (some["ApproximateNumberOfMessages"], some["ApproximateNumberOfMessagesNotVisible"],
            some["ApproximateNumberOfMessagesDelayed"]) == ("0", "1", "1")
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchThing"])


def test_a_message_past_its_retention_period_is_not_handed_out(sqs, monkeypatch):
    import time

    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    later = time.time() + 61
    monkeypatch.setattr("moto.sqs.models.unix_time", lambda *a: later)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
