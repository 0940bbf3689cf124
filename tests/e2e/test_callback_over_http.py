"""End to end over real HTTP: API registration, encrypted callback, SQS, consumer, DynamoDB."""

from __future__ import annotations

import time

import httpx

from chalicelib.store import counters
from tests.helpers import CORP_ID, contact_xml, corp_body, crypto_for


def _wait_for(predicate, timeout: float = 15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _queue_empty(name: str) -> bool:
    from chalicelib.platform import queues

    depth = queues.depth(name)
    return not (depth.visible or depth.in_flight)


def test_add_contact_end_to_end_exactly_once(stack):
    from chalicelib.customers import items as customer_items
    from chalicelib.platform import aws, queues
    from chalicelib.platform.settings import get_settings

    http = httpx.Client(base_url=stack.base_url, timeout=10)
    assert http.get("/api/v1/health").json()["status"] == "ok"
    created = http.post("/api/v1/corps", json=corp_body(),
                        headers={"Authorization": f"Bearer {stack.admin_key}"})
    assert created.status_code == 201, created.text
    callback = created.json()["callback_url"].replace(stack.base_url, "")

    xml = contact_xml(customer="wmE2E", state="poster-7", create_time=int(time.time()))
    params, body = crypto_for().encrypt_callback(xml, timestamp=str(int(time.time())), nonce="e2e")
    for _ in range(3):  # WeCom retries the same callback
        resp = http.post(callback, params=params, content=body, headers={"Content-Type": "text/xml"})
        assert resp.status_code == 200 and resp.content == b""

    rel = _wait_for(lambda: customer_items.get_relation(CORP_ID, "wmE2E", "zhangsan"))
    assert rel.status == "active" and rel.state == "poster-7"
    _wait_for(lambda: _queue_empty(get_settings().events_queue))

    # SQS delivers a message twice: replay one copy of what the receiver enqueued.
    from chalicelib.store import events as event_store  # noqa: F401  (same store the consumer uses)
    from chalicelib.wecom.events import parse_event

    event = parse_event(xml)
    message = queues.EventMessage(corp_id=CORP_ID, received_at_ms=int(time.time() * 1000), event=event.to_dict())
    aws.client("sqs").send_message(QueueUrl=queues.queue_url(get_settings().events_queue),
                                   MessageBody=message.model_dump_json())
    _wait_for(lambda: _queue_empty(get_settings().events_queue))

    day = time.strftime("%Y-%m-%d", time.gmtime(event.create_time + 8 * 3600))  # Asia/Shanghai
    rows = counters.read(CORP_ID, day, day)
    corp_row = next(r for r in rows if r["dimension"] == "corp")
    assert corp_row["adds"] == 1
    assert len([r for r in customer_items.relations_of_customer(CORP_ID, "wmE2E")]) == 1


def test_url_verification_over_http(stack):
    from chalicelib.wecom.crypto import signature
    from tests.helpers import TOKEN

    http = httpx.Client(base_url=stack.base_url, timeout=10)
    http.post("/api/v1/corps", json=corp_body(), headers={"Authorization": f"Bearer {stack.admin_key}"})
    echostr = crypto_for().encrypt(b"1288432023552776189")
    ts = str(int(time.time()))
    resp = http.get(f"/wecom/{CORP_ID}/callback", params={
        "msg_signature": signature(TOKEN, ts, "n1", echostr), "timestamp": ts, "nonce": "n1", "echostr": echostr})
    assert resp.status_code == 200
    assert resp.content == b"1288432023552776189"


def test_scan_on_the_simulator_end_to_end(stack):
    """The sandbox's customer scans a channel code; WeCom's callback goes over HTTP to the product,
    through SQS to the consumer, which sends the welcome back to the sandbox over HTTP."""
    from chalicelib.customers import items as customer_items

    demo = stack.demo or stack.register_demo_corp()
    http = httpx.Client(base_url=stack.base_url, timeout=10,
                        headers={"Authorization": f"Bearer {demo['api_key']}"})
    code = http.post("/api/v1/channel-codes", json={
        "name": "e2e poster", "staff_ids": ["alice"],
        "welcome": {"text": "Welcome, {customer_name}!"}})
    assert code.status_code == 201, code.text
    sandbox = httpx.Client(base_url=f"http://127.0.0.1:{stack.sandbox_port}", timeout=10)
    scan = sandbox.post(f"/sandbox/corps/{demo['corp_id']}/simulate/scan_contact_way",
                        json={"config_id": code.json()["config_id"], "name": "Eve E2E"})
    assert scan.status_code == 200, scan.text
    customer = scan.json()["external_userid"]
    assert scan.json()["callbacks"][0]["statuses"] == [200]

    def welcomed():
        entries = sandbox.get("/sandbox/journal", params={"kind": "welcome"}).json()["entries"]
        return [e for e in entries if e["external_userid"] == customer]

    welcomes = _wait_for(welcomed)
    assert [w["text"] for w in welcomes] == ["Welcome, Eve E2E!"]
    rel = _wait_for(lambda: customer_items.get_relation(demo["corp_id"], customer, "alice"))
    assert rel.state == code.json()["state"]
