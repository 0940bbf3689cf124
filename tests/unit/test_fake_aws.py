"""bench/fake_aws.py bills as DynamoDB and SQS on-demand do (what bench/broadcast.py reports).

Its semantics are held to the store tests (tests/functional/test_store_edges.py runs on moto and on
the fake); these tests pin the meter."""

from __future__ import annotations

import pytest

from bench.fake_aws import FakeAWS, item_size
from chalicelib.store import schema
from chalicelib.store.table import to_attrs

TABLE = "t"


@pytest.fixture
def fake():
    f = FakeAWS(clock=lambda: 1000.0, check=True)
    f.dynamodb.create_table(**schema.table_definition(TABLE))
    f.meter.reset()
    return f


def put(fake, **attrs):
    fake.dynamodb.put_item(TableName=TABLE, Item=to_attrs({"PK": "p", "SK": "s", **attrs}))


def test_item_size_counts_names_and_values():
    assert item_size(to_attrs({"PK": "p", "SK": "ab"})) == 2 + 1 + 2 + 2
    assert item_size(to_attrs({"n": 12345})) == 1 + 4  # 5 digits: 3 bytes + 1
    assert item_size(to_attrs({"l": ["ab", "c"]})) == 1 + 3 + (1 + 2) + (1 + 1)


def test_writes_are_billed_per_started_kilobyte_the_larger_of_before_and_after(fake):
    put(fake, x="a" * 100)
    assert fake.meter.wcu == 1
    put(fake, x="a" * 1500)  # replaces a 1 KB item with a 2 KB one
    assert fake.meter.wcu == 1 + 2
    fake.dynamodb.update_item(TableName=TABLE, Key=to_attrs({"PK": "p", "SK": "s"}), UpdateExpression="REMOVE x")
    assert fake.meter.wcu == 1 + 2 + 2  # the item before the update was 2 KB
    fake.dynamodb.delete_item(TableName=TABLE, Key=to_attrs({"PK": "p", "SK": "s"}))
    assert fake.meter.wcu == 6
    assert fake.meter.requests == {"dynamodb.PutItem": 2, "dynamodb.UpdateItem": 1, "dynamodb.DeleteItem": 1}


def test_a_failed_condition_is_billed_and_a_transaction_twice(fake):
    put(fake, x="a")
    with pytest.raises(fake.dynamodb.exceptions.ConditionalCheckFailedException):
        fake.dynamodb.put_item(TableName=TABLE, Item=to_attrs({"PK": "p", "SK": "s"}),
                               ConditionExpression="attribute_not_exists(PK)")
    assert fake.meter.wcu == 2
    fake.dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": to_attrs({"PK": "p", "SK": f"t{i}"})}} for i in range(3)])
    assert fake.meter.wcu == 2 + 3 * 2


def test_each_gsi_whose_projection_changes_is_one_more_write(fake):
    put(fake, GSI1PK="a", GSI1SK="1")
    assert fake.meter.wcu == 1 + 1
    put(fake, GSI1PK="a", GSI1SK="1", y="z")  # same index key, projected item changed
    assert fake.meter.wcu == 2 + 2
    put(fake, GSI1PK="a", GSI1SK="2", y="z")  # index key moved: a delete and a put in GSI1
    assert fake.meter.wcu == 4 + 3
    put(fake, GSI1PK="a", GSI1SK="2", y="z")  # nothing changed: the table write only
    assert fake.meter.wcu == 7 + 1
    put(fake, y="z")  # out of GSI1: its delete
    assert fake.meter.wcu == 8 + 2


def test_reads_are_half_units_per_4kb_eventually_consistent(fake):
    for i in range(3):
        fake.dynamodb.put_item(TableName=TABLE, Item=to_attrs({"PK": "p", "SK": f"s{i}", "x": "a" * 3000}))
    fake.meter.reset()
    fake.dynamodb.get_item(TableName=TABLE, Key=to_attrs({"PK": "p", "SK": "s0"}))
    fake.dynamodb.get_item(TableName=TABLE, Key=to_attrs({"PK": "p", "SK": "s0"}), ConsistentRead=True)
    assert fake.meter.rcu == 0.5 + 1
    resp = fake.dynamodb.query(
        TableName=TABLE, KeyConditionExpression="PK = :p", FilterExpression="SK = :n",
        ExpressionAttributeValues=to_attrs({":p": "p", ":n": "none"}))
    assert resp["Items"] == [] and resp["ScannedCount"] == 3
    assert fake.meter.rcu == 1.5 + 0.5 * 3  # ~9 KB read, filtered or not: 3 x 4 KB, halved


def test_sqs_bills_requests_not_messages(fake):
    url = fake.sqs.create_queue(QueueName="q")["QueueUrl"]
    fake.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(10)])
    msgs = fake.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    fake.sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}
                                                         for m in msgs])
    assert (len(msgs), fake.meter.sqs_requests) == (10, 4)
    assert fake.sqs.receive_message(QueueUrl=url) == {}


def test_a_message_received_too_often_goes_to_its_dead_letter_queue():
    now = [0.0]
    fake = FakeAWS(clock=lambda: now[0])
    dlq = fake.sqs.create_queue(QueueName="q-dlq")["QueueUrl"]
    url = fake.sqs.create_queue(QueueName="q", Attributes={
        "VisibilityTimeout": "10", "RedrivePolicy": '{"deadLetterTargetArn": "arn:aws:sqs:r:1:q-dlq", '
                                                    '"maxReceiveCount": "2"}'})["QueueUrl"]
    fake.sqs.send_message(QueueUrl=url, MessageBody="m", DelaySeconds=5)
    assert fake.sqs.receive_message(QueueUrl=url) == {}  # delayed
    for _ in range(2):
        now[0] += 11
        assert fake.sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "m"
    now[0] += 11
    assert fake.sqs.receive_message(QueueUrl=url) == {}
    assert fake.sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"] == "m"
