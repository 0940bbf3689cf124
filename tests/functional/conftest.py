from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.helpers import AES_KEY, CORP_ID, SECRET, TOKEN, drain_queue, register, sqs_event

STAFF = ("alice", "bob", "carol")


@pytest.fixture
def chalice_client(aws):
    """The real app behind chalice's test client, on moto in-process."""
    from chalice.test import Client

    from chalicelib.corps import registry as corps
    from chalicelib.platform import caches

    caches.clear_all()
    import app as app_module

    # A stage with no settings of its own: the dev stage's names must not leak into the tests.
    with Client(app_module.app, stage_name="test") as client:
        yield client
    caches.clear_all()
    corps.use_wecom_transport(None)


@dataclass
class World:
    """The product (chalice test client on moto) wired to the WeCom sandbox in-process: the
    sandbox is the product's WeCom, and its simulated customers' callbacks reach our route."""

    client: Any
    sb: Any
    settings: Any
    api_key: str = ""
    delivered: list[tuple[str, dict[str, str], bytes, int]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        resp = getattr(self.client.http, method.lower())(path, **kwargs)
        return resp.status_code, (json.loads(resp.body) if resp.body else None)

    def deliver(self, url: str, params: dict[str, str], body: bytes) -> int:
        path = urlsplit(url).path
        resp = self.client.http.post(f"{path}?{urlencode(params)}", body=body,
                                     headers={"Content-Type": "text/xml"})
        self.delivered.append((path, params, body, resp.status_code))
        return resp.status_code

    def replay(self, index: int = -1, times: int = 1) -> None:
        """Post a delivered callback again, byte for byte, as WeCom's retries do."""
        path, params, body, _ = self.delivered[index]
        for _ in range(times):
            resp = self.client.http.post(f"{path}?{urlencode(params)}", body=body,
                                         headers={"Content-Type": "text/xml"})
            assert resp.status_code == 200

    def pump(self, max_rounds: int = 20, *, redeliver: bool = False) -> list[dict]:
        """Run the events consumer over everything queued (as Lambda's event source would). A
        message the consumer reports failed fails the test (drained, it would be lost here); with
        `redeliver` it is queued again, as SQS makes it visible again after its visibility timeout."""
        from chalicelib.platform import aws, queues

        results = []
        for _ in range(max_rounds):
            bodies = drain_queue(self.settings.events_queue)
            if not bodies:
                return results
            event = sqs_event(bodies)
            payload = self.client.lambda_.invoke("on_events", event).payload
            results.append(payload)
            failed = {f["itemIdentifier"] for f in payload["batchItemFailures"]}
            assert redeliver or not failed, f"the consumer failed {len(failed)} message(s): {payload}"
            url = queues.queue_url(self.settings.events_queue)
            for record in event["Records"]:
                if record["messageId"] in failed:
                    aws.client("sqs").send_message(QueueUrl=url, MessageBody=record["body"])
        raise AssertionError("events queue did not drain")

    def tag(self, group: str, *names: str) -> list[str]:
        status, body = self.call("POST", "/api/v1/tags", {"group_name": group, "names": list(names)})
        assert status == 201, body
        return [t["tag_id"] for t in body["tags"]]


@pytest.fixture
def world(chalice_client, aws, monkeypatch):
    import httpx

    from chalicelib.corps import registry as corps
    from sandbox import Sandbox

    # The sandbox answers in-process through the transport, whatever WECOM_API_BASE says.
    w = World(client=chalice_client, sb=None, settings=aws)
    sb = Sandbox(deliver=w.deliver)
    w.sb = sb
    sb.register_corp(CORP_ID, name="Test Brand", secrets={"contact": SECRET}, callback_token=TOKEN,
                     encoding_aes_key=AES_KEY, callback_url=f"http://product/wecom/{CORP_ID}/callback",
                     staff=[{"userid": s, "name": s.title()} for s in STAFF])
    corps.use_wecom_transport(httpx.MockTransport(sb.handle))
    w.api_key = register(chalice_client)["api_key"]
    yield w
    corps.use_wecom_transport(None)
