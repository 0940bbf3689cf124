"""The staff chat-toolbar page (聊天工具栏, issue #15) against the sandbox in-process: staff identity
from WeCom's web OAuth code, a signed session bound to the staff member, the JS-SDK signature for
the page's own URL, and one customer's story only for a staff member who has a relation with them."""

from __future__ import annotations

import base64
import json

import pytest

from tests.functional.test_acquisition import _code
from tests.helpers import CORP_ID, SECRET, register

BASE = "https://scrm.example/prod"
PAGE = f"{BASE}/toolbar/{CORP_ID}"


@pytest.fixture
def tb(world, monkeypatch):
    """The world, with the deployment's public URL set (what the page's URL is checked against) and
    the corp's app (agent id, as registered with one: the JS-SDK's agentConfig needs it)."""
    from chalicelib.platform.settings import PUBLIC_BASE_URL, get_settings
    from tests.functional.test_churn import _agent

    monkeypatch.setenv(PUBLIC_BASE_URL, BASE)
    get_settings.cache_clear()
    _agent(world)
    return world


def _http(world, method, path, *, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    resp = getattr(world.client.http, method.lower())(path, **kwargs)
    return resp.status_code, (json.loads(resp.body) if resp.body else None)


def _session(world, staff, corp_id=CORP_ID):
    code = world.sb.issue_oauth_code(corp_id, staff)
    status, body = _http(world, "POST", f"/toolbar/{corp_id}/session", body={"code": code})
    assert status == 200, body
    assert body["staff_id"] == staff
    return body["token"]


def _customer_of(world, staff, name, *, tag_ids=()):
    """A customer who added `staff` by scanning a channel code (the code tags them)."""
    status, code = _code(world, staff_ids=[staff], tag_ids=list(tag_ids), name=f"{name} poster",
                         store=f"store-{name}")
    assert status == 201, code
    ext = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=name)["external_userid"]
    world.pump()
    return ext, code


def _refused(status, body):
    return status == 404 and body["error"]["code"] == "not_found" and set(body) == {"error"}


# -- the page ------------------------------------------------------------------------------------------
def test_the_page_is_served_static_with_no_key_in_it(tb):
    resp = tb.client.http.get(f"/toolbar/{CORP_ID}")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    page = resp.body.decode()
    assert tb.api_key not in page and "Bearer" not in page
    assert tb.client.http.get("/toolbar/wwNoSuchCorp").status_code == 404


# -- the OAuth code and the session ---------------------------------------------------------------------
def test_a_code_is_exchanged_once_for_a_session_of_that_staff_member(tb):
    code = tb.sb.issue_oauth_code(CORP_ID, "alice")
    status, body = _http(tb, "POST", f"/toolbar/{CORP_ID}/session", body={"code": code})
    assert status == 200 and body["staff_id"] == "alice" and body["token"]
    status, again = _http(tb, "POST", f"/toolbar/{CORP_ID}/session", body={"code": code})
    assert (status, again["error"]["code"]) == (401, "oauth_code_invalid"), again
    assert "token" not in again


def test_an_expired_code_is_refused(tb):
    code = tb.sb.issue_oauth_code(CORP_ID, "alice")
    tb.sb.clock.advance(300)  # doc 91023: 5 minutes
    status, body = _http(tb, "POST", f"/toolbar/{CORP_ID}/session", body={"code": code})
    assert (status, body["error"]["code"]) == (401, "oauth_code_invalid"), body


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "x" * 600}, {"code": "a", "staff_id": "bob"}])
def test_a_malformed_exchange_is_refused_without_calling_wecom(tb, body):
    before = len(tb.sb.requests("auth/getuserinfo"))
    status, answer = _http(tb, "POST", f"/toolbar/{CORP_ID}/session", body=body)
    assert status == 400, answer
    assert len(tb.sb.requests("auth/getuserinfo")) == before


def _customer_path(ext):
    return f"/toolbar/{CORP_ID}/customers/{ext}"


def _forge(token, **changes):
    payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{forged}.{mac}"


def test_a_forged_expired_or_foreign_session_is_refused(tb, monkeypatch):
    from chalicelib.toolbar import service

    ext, _ = _customer_of(tb, "bob", "Bea")
    alice = _session(tb, "alice")
    # another corp registered on this deployment: its session does not open this corp
    other = "wwothercorp000002"
    tb.sb.register_corp(other, secrets={"contact": SECRET}, staff=[{"userid": "bob"}])
    register(tb.client, corp_id=other)  # even with the same contact secret
    foreign = _session(tb, "bob", corp_id=other)
    cases = {"none": None, "garbage": "not-a-token", "forged": _forge(alice, u="bob"),
             "foreign": foreign, "foreign_relabelled": _forge(foreign, c=CORP_ID)}
    for name, token in cases.items():
        status, body = _http(tb, "GET", _customer_path(ext), token=token)
        assert (status, (body or {}).get("error", {}).get("code")) == (401, "session_invalid"), (name, status, body)
    bob, now = _session(tb, "bob"), service.now()
    assert _http(tb, "GET", _customer_path(ext), token=bob)[0] == 200
    monkeypatch.setattr(service, "now", lambda: now + service.SESSION_SECONDS + 1)
    status, body = _http(tb, "GET", _customer_path(ext), token=bob)
    assert (status, body["error"]["code"]) == (401, "session_invalid"), body


# -- the JS-SDK signature ---------------------------------------------------------------------------------
def test_the_signature_is_for_the_pages_own_url(tb):
    from chalicelib.wecom.jssdk import js_signature

    token = _session(tb, "alice")
    url = f"{PAGE}?code=abc&state=s#top"
    status, cfg = _http(tb, "GET", f"/toolbar/{CORP_ID}/config?url={_q(url)}", token=token)
    assert status == 200, cfg
    assert cfg["corp_id"] == CORP_ID and cfg["url"] == f"{PAGE}?code=abc&state=s"
    assert cfg["agent_id"] == tb.sb.world.corp(CORP_ID).agent_id
    tickets = tb.sb.world.corp(CORP_ID).js_tickets
    for kind, signature, nonce in (("jsapi", cfg["signature"], cfg["nonce_str"]),
                                   ("agent_config", cfg["agent_signature"], cfg["agent_nonce_str"])):
        ticket, = [t for t, (k, _) in tickets.items() if k == kind]
        assert tb.sb.js_ticket_valid(CORP_ID, kind, ticket)
        assert signature == js_signature(ticket=ticket, noncestr=nonce, timestamp=cfg["timestamp"], url=url)
    _http(tb, "GET", f"/toolbar/{CORP_ID}/config?url={_q(PAGE)}", token=token)
    assert len(tb.sb.requests("get_jsapi_ticket")) == len(tb.sb.requests("ticket/get")) == 1  # cached


def _q(url):
    from urllib.parse import quote

    return quote(url, safe="")


@pytest.mark.parametrize("url", [
    "https://evil.example/prod/toolbar/" + CORP_ID,           # another host
    "https://scrm.example.evil.example/prod/toolbar/" + CORP_ID,
    "https://scrm.example@evil.example/prod/toolbar/" + CORP_ID,
    "http://scrm.example/prod/toolbar/" + CORP_ID,             # another scheme
    "https://scrm.example:8443/prod/toolbar/" + CORP_ID,       # another port
    "https://scrm.example/prod/console",                       # our host, not the toolbar page
    "https://scrm.example/prod/toolbar/wwothercorp000002",     # another corp's page
    "https://scrm.example/prod/toolbar/" + CORP_ID + "/../x",
    "javascript:alert(1)", "", "x" * 3000,
])
def test_a_signature_for_another_url_is_refused_and_fetches_no_ticket(tb, url):
    token = _session(tb, "alice")
    status, body = _http(tb, "GET", f"/toolbar/{CORP_ID}/config?url={_q(url)}", token=token)
    assert status == 400 and body["error"]["code"] in ("url_not_allowed", "validation_error"), body
    assert "signature" not in json.dumps(body)
    assert tb.sb.requests("get_jsapi_ticket") == tb.sb.requests("ticket/get") == []


def test_a_corp_without_its_apps_agent_id_gets_a_clear_error_and_fetches_no_ticket(tb):
    from chalicelib.store import get_table, keys

    get_table().update(keys.corp(CORP_ID), expression="REMOVE agent_id")
    status, body = _http(tb, "GET", f"/toolbar/{CORP_ID}/config?url={_q(PAGE)}", token=_session(tb, "alice"))
    assert (status, body["error"]["code"]) == (409, "agent_required"), body
    assert "agent_id" in body["error"]["message"] and "signature" not in json.dumps(body)
    assert tb.sb.requests("get_jsapi_ticket") == tb.sb.requests("ticket/get") == []


def test_a_signature_needs_a_session(tb):
    status, body = _http(tb, "GET", f"/toolbar/{CORP_ID}/config?url={_q(PAGE)}")
    assert (status, body["error"]["code"]) == (401, "session_invalid"), body


# -- the customer ----------------------------------------------------------------------------------------
def test_alice_sees_her_customer_channel_tags_and_timeline_in_one_request(tb):
    vip, new = tb.tag("level", "vip", "new")
    ext, code = _customer_of(tb, "alice", "Ann", tag_ids=[new])
    status, view = _http(tb, "GET", _customer_path(ext), token=_session(tb, "alice"))
    assert status == 200, view
    assert view["customer_id"] == ext and view["name"] == "Ann"
    assert view["added"]["staff_id"] == "alice" and view["added"]["channel"] == code["state"]
    assert view["added"]["channel_name"] == "Ann poster" and view["added"]["added_at"]
    assert [(t["tag_id"], t["name"]) for t in view["tags"]] == [(new, "new")]
    assert "added" in [e["kind"] for e in view["timeline"]]
    assert view["history"] == []
    library = {t["tag_id"]: (g["group_name"], t["name"]) for g in view["tag_library"] for t in g["tags"]}
    assert library == {vip: ("level", "vip"), new: ("level", "new")}  # to choose tags by name


def test_alice_adds_a_tag_it_reaches_wecom_and_the_timeline(tb):
    vip, = tb.tag("level", "vip")
    ext, _ = _customer_of(tb, "alice", "Ann")
    token = _session(tb, "alice")
    status, result = _http(tb, "POST", f"{_customer_path(ext)}/tags", token=token, body={"add": [vip]})
    assert status == 200 and result["status"] == "done", result
    assert vip in tb.sb.world.corp(CORP_ID).relations[(ext, "alice")].tags
    _, view = _http(tb, "GET", _customer_path(ext), token=token)
    assert [t["tag_id"] for t in view["tags"]] == [vip]
    changed = [e for e in view["timeline"] if e["kind"] == "tags_changed"]
    assert [(e["staff_id"], e["details"]["added"]) for e in changed] == [("alice", [vip])]
    status, result = _http(tb, "POST", f"{_customer_path(ext)}/tags", token=token, body={"remove": [vip]})
    assert status == 200 and vip not in tb.sb.world.corp(CORP_ID).relations[(ext, "alice")].tags


def test_alice_asking_for_bobs_customer_or_a_forged_id_sees_nothing_and_changes_nothing(tb):
    vip, = tb.tag("level", "vip")
    ext, _ = _customer_of(tb, "bob", "Bea")
    alice = _session(tb, "alice")
    answers = [_http(tb, "GET", _customer_path(c), token=alice) for c in (ext, "wmForgedCustomer01")]
    assert all(_refused(*a) for a in answers), answers
    assert answers[0][1] == answers[1][1]  # bob's customer and no customer at all look the same
    assert "Bea" not in json.dumps(answers[0][1])
    for c in (ext, "wmForgedCustomer01"):
        status, body = _http(tb, "POST", f"{_customer_path(c)}/tags", token=alice, body={"add": [vip]})
        assert _refused(status, body), body
    assert tb.sb.requests("externalcontact/mark_tag") == []
    assert tb.sb.world.corp(CORP_ID).relations[(ext, "bob")].tags == []


# -- a group ----------------------------------------------------------------------------------------------
def test_a_group_is_shown_to_its_staff_members_only(tb):
    ext, _ = _customer_of(tb, "alice", "Ann")
    chat = tb.sb.simulator.create_group(CORP_ID, "alice", "Ann's group", customers=[ext])["chat_id"]
    tb.pump()
    status, group = _http(tb, "GET", f"/toolbar/{CORP_ID}/groups/{chat}", token=_session(tb, "alice"))
    assert status == 200, group
    assert group["group_id"] == chat and group["name"] == "Ann's group"
    assert {m["member_id"] for m in group["members"]} >= {"alice", ext}
    assert group["member_count"] == 2 and group["codes"] == []
    for chat_id in (chat, "wrNoSuchGroup"):
        status, body = _http(tb, "GET", f"/toolbar/{CORP_ID}/groups/{chat_id}", token=_session(tb, "bob"))
        assert status == 404 and body["error"]["code"] == "not_found" and "Ann" not in json.dumps(body), body


# -- the customer's groups and broadcasts ------------------------------------------------------------------
def _groups_of(view):
    return {g["group_id"]: (g["name"], g["member_count"], g["owner"]) for g in view["groups"]}


def test_the_customers_groups_are_listed_from_their_callbacks_until_they_leave(tb):
    ext, _ = _customer_of(tb, "alice", "Ann")
    sim = tb.sb.simulator
    ours = sim.create_group(CORP_ID, "alice", "Ann's group")["chat_id"]
    theirs = sim.create_group(CORP_ID, "bob", "Bob's club")["chat_id"]  # alice has no part in it: still Ann's group
    other = sim.create_group(CORP_ID, "alice", "Not Ann's")["chat_id"]
    tb.pump()
    for chat, invitor in ((ours, "alice"), (theirs, "bob"), (other, "alice")):
        sim.invite_to_group(CORP_ID, chat, invitor)  # another customer first: the group is read (its count)
    tb.pump()
    for chat, invitor in ((ours, "alice"), (theirs, "bob")):  # Ann's joins: their callbacks alone
        sim.invite_to_group(CORP_ID, chat, invitor, external_userid=ext)
    tb.pump()
    token = _session(tb, "alice")
    status, view = _http(tb, "GET", _customer_path(ext), token=token)
    assert status == 200, view
    assert _groups_of(view) == {ours: ("Ann's group", 3, "alice"), theirs: ("Bob's club", 3, "bob")}

    sim.leave_group(CORP_ID, ours, ext)
    tb.pump()
    from chalicelib.store import get_table, keys, schema

    left = get_table().get(keys.group_member(CORP_ID, ours, ext))
    assert left["status"] == "left" and schema.GSI1_PK not in left  # out of Ann's groups index
    assert _groups_of(_http(tb, "GET", _customer_path(ext), token=token)[1]) == {theirs: ("Bob's club", 3, "bob")}
    sim.dismiss_group(CORP_ID, theirs)
    tb.pump()
    assert _http(tb, "GET", _customer_path(ext), token=token)[1]["groups"] == []


def test_the_daily_group_sync_indexes_members_stored_before_the_index(tb):
    from chalicelib.groups import sync as group_sync
    from chalicelib.store import get_table, keys, schema
    from tests.functional.test_customer_sync import run_sync

    ext, _ = _customer_of(tb, "alice", "Ann")
    chat = tb.sb.simulator.create_group(CORP_ID, "alice", "Ann's group", customers=[ext])["chat_id"]
    tb.pump()
    group_sync.start(CORP_ID)
    run_sync(tb)
    token = _session(tb, "alice")
    assert [g["group_id"] for g in _http(tb, "GET", _customer_path(ext), token=token)[1]["groups"]] == [chat]
    # as a member item written before the index was: the next sync gives it its index entry
    get_table().update(keys.group_member(CORP_ID, chat, ext), expression=f"REMOVE {schema.GSI1_PK}, {schema.GSI1_SK}")
    assert _http(tb, "GET", _customer_path(ext), token=token)[1]["groups"] == []
    group_sync.start(CORP_ID)
    run_sync(tb)
    assert [g["group_id"] for g in _http(tb, "GET", _customer_path(ext), token=token)[1]["groups"]] == [chat]


def test_the_broadcasts_the_customer_received_are_listed_with_their_sender_and_status(tb, monkeypatch):
    import time

    from chalicelib.broadcasts import items as bitems
    from tests.functional.test_broadcasts import BROADCASTS, Sends

    sends = Sends(tb, monkeypatch)
    ann, ann_code = _customer_of(tb, "alice", "Ann")
    bea, bea_code = _customer_of(tb, "alice", "Bea")
    created = {}
    for name, state in (("Spring sale", ann_code["state"]), ("Only Bea", bea_code["state"])):
        status, body = tb.call("POST", BROADCASTS, {"name": name, "target": {"kind": "customers", "filter": {
            "channels": [state]}}, "content": {"text": f"{name} from {{staff_name}}"}})
        assert status == 201, body
        created[name] = body
    sends.run()
    status, view = _http(tb, "GET", _customer_path(ann), token=_session(tb, "alice"))
    assert status == 200, view
    got = [(b["broadcast_id"], b["name"], b["day"], b["sender"], b["status"], b["text"]) for b in view["broadcasts"]]
    spring = created["Spring sale"]
    claim = bitems.claims_of(CORP_ID, spring["day"], ann)
    assert claim["expires_at"] >= time.time() + 30 * 86400  # the claims outlive the history listed
    assert got == [(spring["broadcast_id"], "Spring sale", spring["day"], "alice", "sent",
                    "Spring sale from {staff_name}")]
