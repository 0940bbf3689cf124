"""WeCom's web side for the chat toolbar: OAuth codes (auth/getuserinfo), JS-SDK tickets cached per
corp like the access token, and the JS-SDK signature against WeCom's published worked example."""

from __future__ import annotations

import pytest

from chalicelib.wecom import errors
from chalicelib.wecom.client import InMemoryTokenCache
from chalicelib.wecom.jssdk import js_signature
from tests.helpers import SANDBOX_CORP as CORP
from tests.unit.test_client import calls, make_client


def test_signature_matches_the_published_worked_example():
    # JS-SDK 使用权限签名算法, 附录1 of WeChat's JS-SDK doc, the algorithm WeCom's doc 90506 adopts:
    # string1 = "jsapi_ticket=...&noncestr=...&timestamp=...&url=...", signature = sha1(string1).
    # The same vector is asserted by SDK tests, e.g. kinisky564477/wechat wx/*_test.go
    # TestJsTicketSignature.
    assert js_signature(
        ticket="sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
        noncestr="Wm3WZYTPz0wzccnW", timestamp=1414587457, url="http://mp.weixin.qq.com?params=value",
    ) == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_signature_ignores_the_fragment():
    # doc 90506: the URL signed is the page's full URL without the part after '#'.
    base = dict(ticket="t", noncestr="n", timestamp=1)
    assert js_signature(url="https://h/p?a=1#x", **base) == js_signature(url="https://h/p?a=1", **base)


@pytest.fixture
def client(sb, clock):
    return make_client(sb, clock, clock.sleep)


def test_oauth_code_names_the_staff_member_once(sb, client):
    code = sb.issue_oauth_code(CORP, "alice")
    assert client.get_user_info(code).userid == "alice"
    with pytest.raises(errors.InvalidCode):  # doc 91023: a code can be used once
        client.get_user_info(code)


def test_oauth_code_expires_after_five_minutes(sb, client, clock):
    code = sb.issue_oauth_code(CORP, "alice")
    clock.advance(300)  # doc 91023: unused for 5 minutes -> expired
    with pytest.raises(errors.InvalidCode):
        client.get_user_info(code)


def test_oauth_code_of_another_corp_is_refused(sb, client):
    sb.register_corp("wwother", secrets={"contact": "x"}, staff=[{"userid": "alice"}])
    code = sb.issue_oauth_code("wwother", "alice")
    with pytest.raises(errors.InvalidCode):
        client.get_user_info(code)


def test_oauth_redirect_carries_a_code_and_the_state(sb, client):
    import httpx

    http = httpx.Client(transport=httpx.MockTransport(sb.handle))
    resp = http.get("http://sandbox.test/connect/oauth2/authorize", params={
        "appid": CORP, "redirect_uri": "https://scrm.example/toolbar/" + CORP, "response_type": "code",
        "scope": "snsapi_base", "state": "s1", "agentid": "1000002", "userid": "alice"})
    assert resp.status_code == 302
    target = httpx.URL(resp.headers["location"])
    assert (target.host, target.path, target.params["state"]) == ("scrm.example", "/toolbar/" + CORP, "s1")
    assert client.get_user_info(target.params["code"]).userid == "alice"


@pytest.mark.parametrize("kind, api", [("jsapi", "get_jsapi_ticket"), ("agent_config", "ticket/get")])
def test_tickets_cached_per_corp_and_refreshed_before_expiry(sb, clock, kind, api):
    cache = InMemoryTokenCache()
    first, second = (make_client(sb, clock, clock.sleep, token_cache=cache) for _ in range(2))
    ticket = first.js_ticket(kind)
    assert second.js_ticket(kind) == first.js_ticket(kind) == ticket  # the shared cache: one fetch
    assert calls(sb, api) == 1
    assert sb.js_ticket_valid(CORP, kind, ticket)
    clock.advance(7200 - 299)  # inside the refresh margin
    assert first.js_ticket(kind) != ticket and calls(sb, api) == 2


def test_corp_and_agent_tickets_differ(sb, client):
    assert client.js_ticket("jsapi") != client.js_ticket("agent_config")
    with pytest.raises(ValueError):
        client.js_ticket("other")
