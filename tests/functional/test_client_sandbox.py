"""WeComClient + DynamoDB token cache and pacing (moto) + the sandbox, in-process and over HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from chalicelib.store import Table, get_table, keys
from chalicelib.store.rate_limits import DynamoRateLimiter
from chalicelib.store.tokens import DynamoTokenCache
from chalicelib.wecom import errors
from chalicelib.wecom import models as m
from chalicelib.wecom.client import WeComClient
from sandbox import serve
from tests.helpers import SANDBOX_CORP as CORP
from tests.helpers import SANDBOX_SECRET as SECRET
from tests.helpers import T0


class AtomicMoto:
    """moto's DynamoDB evaluates a condition and writes without a lock, so two threads can both
    pass the same condition; real DynamoDB applies each conditional write atomically. One lock
    around every call restores that guarantee for the concurrency tests."""

    _lock = threading.Lock()

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr) or name == "exceptions":
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


def shared_table() -> Table:
    table = get_table()
    return Table(AtomicMoto(table.client), table.name)


def worker_client(sb, clock, **kwargs):
    """What one Lambda instance builds: its own client and memory, the shared table."""
    return WeComClient(corp_id=CORP, secret=SECRET, base_url="http://wecom.test/cgi-bin",
                       token_cache=DynamoTokenCache(shared_table()),
                       transport=httpx.MockTransport(sb.handle), clock=clock,
                       sleep=kwargs.pop("sleep", lambda s: time.sleep(min(s, 0.05))), **kwargs)


def run_workers(sb, clock, n=20):
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []

    def work():
        client = worker_client(sb, clock)
        try:
            barrier.wait()
            for _ in range(3):
                client.get_follow_user_list()
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []


def test_twenty_workers_call_gettoken_once_per_token_lifetime(aws, sb, clock):
    run_workers(sb, clock)
    assert len(sb.requests("gettoken")) == 1
    assert len(sb.requests("externalcontact/get_follow_user_list")) == 60
    clock.advance(7200 - 200)  # every worker's token is now inside the refresh margin
    run_workers(sb, clock)
    assert len(sb.requests("gettoken")) == 2
    assert all(r["errcode"] == 0 for r in sb.requests("externalcontact/get_follow_user_list"))


def test_token_cache_invalidates_only_the_failed_token(aws):
    cache = DynamoTokenCache(get_table())
    assert cache.acquire_lease(CORP, "contact", holder="a", now=0, lease_seconds=10, fresh_until=300)
    assert not cache.acquire_lease(CORP, "contact", holder="b", now=1, lease_seconds=10, fresh_until=301)
    cache.store(CORP, "contact", access_token="t1", expires_at=7200, holder="a")
    assert not cache.acquire_lease(CORP, "contact", holder="b", now=2, lease_seconds=10, fresh_until=302)
    assert not cache.invalidate(CORP, "contact", access_token="t0")
    assert cache.get(CORP, "contact").access_token == "t1"
    assert cache.invalidate(CORP, "contact", access_token="t1")
    assert cache.get(CORP, "contact").access_token is None
    assert cache.acquire_lease(CORP, "contact", holder="b", now=3, lease_seconds=10, fresh_until=303)
    cache.release_lease(CORP, "contact", holder="b")
    assert cache.get(CORP, "contact").lease_holder is None
    item = get_table().get(keys.access_token(CORP, "contact"))
    assert item["expires_at"] > 0  # TTL set


def test_42001_refresh_through_dynamodb(aws, sb, clock):
    client = worker_client(sb, clock)
    way = client.add_contact_way(m.ContactWay(type=1, scene=2, user=["alice"]))
    scanned = sb.simulator.scan_contact_way(CORP, way.config_id)
    sb.faults.add("errcode", errcode=42001, path="externalcontact/send_welcome_msg")
    client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                             text=m.Text(content="hi")))
    assert len(sb.journal.welcomes(scanned["external_userid"])) == 1
    assert len(sb.requests("gettoken")) == 2
    # another instance reads the refreshed token from the table, no gettoken
    worker_client(sb, clock).get_follow_user_list()
    assert len(sb.requests("gettoken")) == 2


def test_dynamo_pacing_spreads_a_burst_over_windows(aws, sb, clock):
    client = worker_client(sb, clock, sleep=clock.sleep,
                           rate_limiter=DynamoRateLimiter(get_table(), per_second=4))
    for _ in range(10):
        client.get_follow_user_list()
    windows: dict[int, int] = {}
    for r in sb.requests("externalcontact/get_follow_user_list"):
        windows[int(r["at"])] = windows.get(int(r["at"]), 0) + 1
    assert list(windows.values()) == [4, 4, 2]
    assert all(r["errcode"] == 0 for r in sb.requests("externalcontact/get_follow_user_list"))


def test_each_api_has_its_own_budget(aws):
    limiter = DynamoRateLimiter(get_table(), per_second=2)
    now = T0 + 0.25
    assert limiter.acquire(CORP, "externalcontact/add_msg_template", now) == 0
    assert limiter.acquire(CORP, "externalcontact/add_msg_template", now) == 0
    assert limiter.acquire(CORP, "externalcontact/add_msg_template", now) == pytest.approx(0.75)
    assert limiter.acquire(CORP, "externalcontact/send_welcome_msg", now) == 0
    assert limiter.acquire("wwothercorp", "externalcontact/add_msg_template", now) == 0
    assert limiter.acquire(CORP, "externalcontact/add_msg_template", now + 0.75) == 0


def test_instances_lease_permits_in_blocks_and_never_exceed_the_budget(aws):
    from bench.aws_requests import count_aws_requests

    table = get_table()
    a, b = DynamoRateLimiter(table, per_second=12, block=5), DynamoRateLimiter(table, per_second=12, block=5)
    now = T0 + 0.5
    with count_aws_requests(table.client) as counts:
        granted = sum(limiter.acquire(CORP, "externalcontact/get", now) == 0
                      for limiter in (a, b) for _ in range(8))
        # a leased 5 + 5 and spent 8; b got single permits 11 and 12, then none: the window is spent
        assert granted == 10
        assert counts.total == 2 + 2 + 2 * 2  # a: 2 leases; b: 2 singles, then a block and a single refused
        assert [a.acquire(CORP, "externalcontact/get", now) for _ in range(3)] == [0, 0, pytest.approx(0.5)]
    window = table.get({"PK": f"CORP#{CORP}#RATE#externalcontact/get", "SK": f"W#{int(now)}"})
    assert window["n"] == 12  # never more than the budget, across instances


# -- over real HTTP ------------------------------------------------------------------------------------
@pytest.fixture
def server(sb):
    srv = serve(0, sandbox=sb, hold_seconds=1.0)
    yield srv
    srv.stop()


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


def test_an_uploaded_image_can_be_sent_for_three_days(aws, sb, clock):
    """media/upload (multipart) -> media_id, usable in add_msg_template until 3 days have passed."""
    client = worker_client(sb, clock)
    way = client.add_contact_way(m.ContactWay(type=1, scene=2, user=["alice"]))
    ext = sb.simulator.scan_contact_way(CORP, way.config_id)["external_userid"]
    media_id = client.upload_media("image", "sale.png", PNG)
    assert sb.world.corp(CORP).media[media_id].filename == "sale.png"

    def send():
        return client.add_msg_template(m.MsgTemplate(external_userid=[ext], attachments=[
            m.Attachment(msgtype="image", image=m.Image(media_id=media_id))]))

    assert send().fail_list == []
    clock.advance(3 * 86400)
    with pytest.raises(errors.ApiError) as refused:
        send()
    assert refused.value.errcode == 40007


def test_an_image_uploaded_for_moments_can_be_posted_for_three_days(aws, sb, clock):
    """media/upload_attachment (media_type image, attachment_type 1) -> a media_id add_moment_task
    takes until 3 days have passed; media/upload's ids are not Moments'."""
    client = worker_client(sb, clock)
    media_id = client.upload_attachment("image", "sale.png", PNG)
    stored = sb.world.corp(CORP).media[media_id]
    assert (stored.kind, stored.attachment_type, stored.filename) == ("image", 1, "sale.png")

    def post(media: str):
        return client.add_moment_task(m.MomentTask(attachments=[
            m.Attachment(msgtype="image", image=m.Image(media_id=media))]))

    assert post(media_id).jobid
    with pytest.raises(errors.ApiError) as refused:
        post(client.upload_media("image", "sale.png", PNG))
    assert refused.value.errcode == 40007
    clock.advance(3 * 86400)
    with pytest.raises(errors.ApiError) as refused:
        post(media_id)
    assert refused.value.errcode == 40007
    with pytest.raises(ValueError):  # checked as WeCom checks it, without a call
        client.upload_attachment("image", "a.gif", b"GIF89a" + b"\0" * 100)
    assert len(sb.requests("media/upload_attachment")) == 1


def test_a_moments_link_title_over_64_bytes_is_refused(aws, sb, clock):
    """add_moment_task's link.title: "最多64个字节" (doc 95094, as WxJava / PHP / Perl SDKs quote it):
    UTF-8 bytes, so 21 Chinese characters (63 bytes) pass and 22 (66 bytes) do not."""
    client = worker_client(sb, clock)
    cover = client.upload_attachment("image", "cover.png", PNG)

    def post(title: str):
        return client.add_moment_task(m.MomentTask(attachments=[m.Attachment(msgtype="link", link=m.Link(
            title=title, url="https://shop.example/sale", media_id=cover))]))

    assert post("促" * 21 + "a").jobid  # 64 bytes
    with pytest.raises(errors.ApiError) as refused:
        post("促" * 22)
    assert refused.value.errcode == 40058
    assert len(sb.journal.entries("moment", corp_id=CORP)) >= 1


@pytest.mark.parametrize(("kind", "filename", "content"), [
    ("image", "a.gif", b"GIF89a" + b"\0" * 100),  # images are JPG or PNG
    ("image", "big.png", PNG + b"\0" * (10 * 1024 * 1024)),  # over 10 MB
    ("image", "tiny.png", PNG[:5]),  # WeCom wants more than 5 bytes
    ("sticker", "a.png", PNG),
])
def test_upload_media_refuses_what_wecom_would_refuse_without_a_call(aws, sb, clock, kind, filename, content):
    client = worker_client(sb, clock)
    with pytest.raises(ValueError):
        client.upload_media(kind, filename, content)
    assert sb.requests("media/upload") == []


def test_client_over_http(server, sb, clock):
    from chalicelib.wecom.client import InMemoryTokenCache

    client = WeComClient(corp_id=CORP, secret=SECRET, base_url=server.url + "/cgi-bin",
                         token_cache=InMemoryTokenCache(), clock=clock, timeout=0.5)
    assert client.get_follow_user_list().follow_user == ["alice"]
    way = client.add_contact_way(m.ContactWay(type=1, scene=2, user=["alice"]))
    got = httpx.get(f"{server.url}/sandbox/qr/{CORP}/{way.config_id}").json()
    assert got["kind"] == "contact_way"
    scanned = httpx.post(f"{server.url}/sandbox/corps/{CORP}/simulate/scan_contact_way",
                         json={"config_id": way.config_id}).json()
    httpx.post(f"{server.url}/sandbox/faults", json={"kind": "timeout",
                                                     "path": "externalcontact/send_welcome_msg"})
    with pytest.raises(errors.WeComTimeout) as exc:
        client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                                 text=m.Text(content="hi")))
    assert exc.value.maybe_executed
    journal = httpx.get(f"{server.url}/sandbox/journal", params={"kind": "welcome"}).json()
    assert len(journal["entries"]) == 1
    client.close()


def test_callbacks_posted_over_http(server, sb):
    """The default delivery posts to the corp's callback URL: here a path the sandbox answers
    with 404, so WeCom's rule (any non-200 is a failure; 3 retries) shows."""
    sb.update_corp(CORP, callback_url=server.url + "/nowhere", settings={"callback_timeout": 1.0})
    http = httpx.Client(base_url=server.url)
    token = http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()
    way = http.post("/cgi-bin/externalcontact/add_contact_way",
                    params={"access_token": token["access_token"]},
                    json={"type": 1, "scene": 2, "user": ["alice"]}).json()
    result = sb.simulator.scan_contact_way(CORP, way["config_id"])
    assert result["callbacks"][0]["statuses"] == [404] * 4


def test_python_m_sandbox_seed_demo():
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", "0", "--seed-demo"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "WeCom sandbox on http://127.0.0.1:" in lines[0]
        url = lines[0].split(" on ")[1].split()[0]
        assert "wwdemo000000000001" in "".join(lines)
        token = httpx.get(f"{url}/cgi-bin/gettoken", params={
            "corpid": "wwdemo000000000001",
            "corpsecret": "demo-contact-secret-0000000000000000000001"}).json()
        assert token["errcode"] == 0
    finally:
        proc.terminate()
        proc.wait(5)
