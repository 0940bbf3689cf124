"""Fault injection: each mode, per path, for the next N calls or at a rate."""

from __future__ import annotations

import httpx
import pytest

from sandbox import Clock, Sandbox

CORP = "wwfaults000000001"
T0 = 1_700_000_000


@pytest.fixture
def sb():
    clock = Clock(T0, frozen=True)
    sandbox = Sandbox(clock=clock, sleep=clock.sleep, seed=7)
    sandbox.register_corp(CORP, secrets={"contact": "s"}, staff=[{"userid": "alice"}])
    return sandbox


@pytest.fixture
def http(sb):
    return httpx.Client(transport=httpx.MockTransport(sb.handle), base_url="http://wecom.test",
                        timeout=httpx.Timeout(5.0))


def token(http):
    return http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": "s"}).json()["access_token"]


def follow_users(http, tok):
    return http.get("/cgi-bin/externalcontact/get_follow_user_list", params={"access_token": tok})


def add_way(http, tok):
    return http.post("/cgi-bin/externalcontact/add_contact_way", params={"access_token": tok},
                     json={"type": 1, "scene": 2, "user": ["alice"]})


@pytest.mark.parametrize("errcode", [45009, 45033, -1, 6000])
def test_errcode_fault_for_next_n_calls_on_one_path(sb, http, errcode):
    tok = token(http)
    sb.faults.add("errcode", errcode=errcode, count=2, path="externalcontact/get_follow_user_list")
    assert add_way(http, tok).json()["errcode"] == 0  # other paths unaffected
    assert follow_users(http, tok).json()["errcode"] == errcode
    assert follow_users(http, tok).json()["errcode"] == errcode
    assert follow_users(http, tok).json()["errcode"] == 0
    assert sb.faults.to_list() == []


def test_token_fault_revokes_the_token(sb, http):
    tok = token(http)
    sb.faults.add("errcode", errcode=42001)
    assert follow_users(http, tok).json()["errcode"] == 42001
    assert follow_users(http, tok).json()["errcode"] == 40014  # the token stays dead
    assert follow_users(http, token(http)).json()["errcode"] == 0


def test_http_5xx_fault_is_not_executed(sb, http):
    tok = token(http)
    sb.faults.add("http", status=503, path="externalcontact/add_contact_way")
    resp = add_way(http, tok)
    assert resp.status_code == 503 and "html" in resp.headers["content-type"]
    assert sb.world.corp(CORP).contact_ways == {}


def test_timeout_fault_executes_by_default(sb, http):
    tok = token(http)
    sb.faults.add("timeout", path="externalcontact/add_contact_way")
    with pytest.raises(httpx.ReadTimeout):
        add_way(http, tok)
    assert len(sb.world.corp(CORP).contact_ways) == 1  # WeCom did it; the caller cannot know


def test_timeout_fault_without_execution(sb, http):
    tok = token(http)
    sb.faults.add("timeout", execute=False)
    with pytest.raises(httpx.ReadTimeout):
        add_way(http, tok)
    assert sb.world.corp(CORP).contact_ways == {}


def test_slow_fault_below_and_above_the_read_timeout(sb, http):
    tok = token(http)
    sb.faults.add("slow", delay=2.0)
    assert follow_users(http, tok).json()["errcode"] == 0
    assert sb.clock() == T0 + 2.0  # the injected sleep waited
    sb.faults.add("slow", delay=30.0)
    with pytest.raises(httpx.ReadTimeout):
        add_way(http, tok)
    assert sb.clock() == T0 + 7.0  # waited the client's read timeout, then gave up
    assert len(sb.world.corp(CORP).contact_ways) == 1


def test_connect_error_fault(sb, http):
    tok = token(http)
    sb.faults.add("connect_error")
    with pytest.raises(httpx.ConnectError):
        add_way(http, tok)
    assert sb.world.corp(CORP).contact_ways == {}


def test_rate_faults(sb, http):
    tok = token(http)
    sb.faults.add("errcode", errcode=-1, rate=1.0, count=None)
    assert all(follow_users(http, tok).json()["errcode"] == -1 for _ in range(5))
    sb.faults.clear()
    sb.faults.add("errcode", errcode=-1, rate=0.5, count=None)
    codes = [follow_users(http, tok).json()["errcode"] for _ in range(200)]
    assert 60 < codes.count(-1) < 140


def test_requests_are_recorded_with_their_fault(sb, http):
    tok = token(http)
    sb.faults.add("errcode", errcode=45009)
    follow_users(http, tok)
    follow_users(http, tok)
    seen = sb.requests("externalcontact/get_follow_user_list")
    assert [(r["fault"], r["errcode"]) for r in seen] == [("errcode", 45009), (None, 0)]


def test_unknown_fault_kind_is_refused(sb):
    with pytest.raises(ValueError):
        sb.faults.add("explode")
