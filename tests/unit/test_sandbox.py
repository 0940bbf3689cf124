"""The sandbox enforces WeCom's rules (docs/sandbox.md): raw HTTP through httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest

from chalicelib.wecom.crypto import CallbackCrypto
from sandbox import Clock, Sandbox, SimulationError

CORP = "wwtest0000000001"
SECRET = "contact-secret"
T0 = 1_700_000_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
JPG = b"\xff\xd8\xff\xe0" + b"\0" * 100


class Product:
    """Stands in for the product's callback route: decrypts, records, answers a status."""

    def __init__(self, corp, clock):
        self.crypto = CallbackCrypto(token=corp.callback_token,
                                     encoding_aes_key=corp.encoding_aes_key, receive_id=corp.corp_id)
        self.clock = clock
        self.events: list[bytes] = []
        self.statuses: list[int] = []

    def __call__(self, url, params, body):
        assert url == "http://product.test/wecom/callback"
        self.events.append(self.crypto.decrypt_callback(body=body, now=self.clock(), **params))
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def clock():
    return Clock(T0, frozen=True)


@pytest.fixture
def sb(clock):
    sandbox = Sandbox(clock=clock, sleep=clock.sleep)
    corp = sandbox.register_corp(
        CORP, secrets={"contact": SECRET, "other": "other-secret"},
        callback_url="http://product.test/wecom/callback",
        apps_without_customer_contact=["other"],
        staff=[{"userid": "alice"}, {"userid": "bob"}, {"userid": "dave", "activated": False}])
    sandbox.product = Product(corp, clock)
    sandbox.simulator.deliver = sandbox.product
    return sandbox


class Api:
    def __init__(self, sb):
        self.http = httpx.Client(transport=httpx.MockTransport(sb.handle), base_url="http://wecom.test")
        self.token = self.get("gettoken", corpid=CORP, corpsecret=SECRET)["access_token"]

    def get(self, api, **params):
        return self.http.get(f"/cgi-bin/{api}", params=params).json()

    def post(self, api, body, token=None):
        return self.http.post(f"/cgi-bin/{api}", params={"access_token": token or self.token},
                              json=body).json()

    def upload(self, kind, content, filename="a.png", content_type="image/png"):
        """media/upload as WeCom takes it: multipart/form-data, the file in the part "media"."""
        return self.http.post("/cgi-bin/media/upload", params={"access_token": self.token, "type": kind},
                              files={"media": (filename, content, content_type)}).json()

    def upload_attachment(self, kind, content, attachment_type=1, filename="a.png", content_type="image/png"):
        """media/upload_attachment (Moments: attachment_type 1): the same multipart part "media"."""
        return self.http.post("/cgi-bin/media/upload_attachment",
                              params={"access_token": self.token, "media_type": kind,
                                      "attachment_type": attachment_type},
                              files={"media": (filename, content, content_type)}).json()

    def image(self, attachment_type=None):
        resp = (self.upload("image", PNG) if attachment_type is None
                else self.upload_attachment("image", PNG, attachment_type))
        assert resp["errcode"] == 0, resp
        return {"msgtype": "image", "image": {"media_id": resp["media_id"]}}

    def call_get(self, api, **params):
        return self.get(api, access_token=self.token, **params)


@pytest.fixture
def api(sb):
    return Api(sb)


def contact_way(api, **fields):
    body = {"type": 1, "scene": 2, "user": ["alice"], **fields}
    resp = api.post("externalcontact/add_contact_way", body)
    assert resp["errcode"] == 0, resp
    return resp["config_id"]


# -- tokens ---------------------------------------------------------------------------------------
def test_gettoken_rules(sb, api, clock):
    assert api.get("gettoken", corpid=CORP, corpsecret="wrong")["errcode"] == 40001
    assert api.get("gettoken", corpid="wwnope", corpsecret=SECRET)["errcode"] == 40013
    assert api.get("gettoken", corpid=CORP)["errcode"] == 41004
    ok = api.get("gettoken", corpid=CORP, corpsecret=SECRET)
    assert ok["errcode"] == 0 and ok["errmsg"] == "ok" and ok["expires_in"] == 7200


def test_token_missing_invalid_and_expiry(sb, api, clock):
    assert api.get("externalcontact/get_follow_user_list")["errcode"] == 41001
    assert api.get("externalcontact/get_follow_user_list", access_token="bogus")["errcode"] == 40014
    clock.advance(7199)
    assert api.call_get("externalcontact/get_follow_user_list")["errcode"] == 0
    clock.advance(1)
    resp = api.call_get("externalcontact/get_follow_user_list")
    assert resp["errcode"] == 42001
    assert "hint" in resp["errmsg"]  # errmsg varies: decide by errcode only


def test_app_without_customer_contact_gets_48002(sb, api):
    token = api.get("gettoken", corpid=CORP, corpsecret="other-secret")["access_token"]
    assert api.post("externalcontact/get_contact_way", {"config_id": "x"}, token)["errcode"] == 48002


def test_post_api_called_with_get_is_40058(sb, api):
    assert api.call_get("externalcontact/add_contact_way")["errcode"] == 40058


def test_every_answer_has_errcode_and_errmsg(sb, api):
    for resp in (api.call_get("externalcontact/get_follow_user_list"),
                 api.post("externalcontact/get_contact_way", {"config_id": "nope"})):
        assert {"errcode", "errmsg"} <= set(resp)


# -- channel codes ----------------------------------------------------------------------------------
def test_contact_way_state_limit(sb, api):
    contact_way(api, state="s" * 30)
    resp = api.post("externalcontact/add_contact_way",
                    {"type": 1, "scene": 2, "user": ["alice"], "state": "s" * 31})
    assert resp["errcode"] == 40058


@pytest.mark.parametrize("body, errcode", [
    ({"scene": 2, "user": ["alice"]}, 41037),
    ({"type": 1, "user": ["alice"]}, 41038),
    ({"type": 3, "scene": 2, "user": ["alice"]}, 41039),
    ({"type": 1, "scene": 2, "user": ["alice", "bob"]}, 40058),  # type 1: exactly one user
    ({"type": 1, "scene": 2, "user": []}, 40058),
    ({"type": 1, "scene": 2, "user": ["nobody"]}, 40003),
    ({"type": 1, "scene": 2, "user": ["dave"]}, 41054),  # not activated
    ({"type": 2, "scene": 2, "user": ["alice"] * 101}, 41041),
])
def test_contact_way_rules(sb, api, body, errcode):
    assert api.post("externalcontact/add_contact_way", body)["errcode"] == errcode


def test_contact_way_get_update_delete(sb, api):
    config_id = contact_way(api, state="a")
    assert api.post("externalcontact/update_contact_way",
                    {"config_id": config_id, "state": "b"})["errcode"] == 0
    way = api.post("externalcontact/get_contact_way", {"config_id": config_id})["contact_way"]
    assert way["state"] == "b" and way["skip_verify"] is True and way["user"] == ["alice"]
    assert api.post("externalcontact/del_contact_way", {"config_id": config_id})["errcode"] == 0
    assert api.post("externalcontact/get_contact_way", {"config_id": config_id})["errcode"] == 41044


def test_contact_and_join_ways_share_the_quota(sb, api):
    sb.update_corp(CORP, settings={"contact_way_quota": 2})
    contact_way(api)
    chat_id = sb.simulator.create_group(CORP, "alice", "g")["chat_id"]
    assert api.post("externalcontact/groupchat/add_join_way",
                    {"scene": 2, "chat_id_list": [chat_id]})["errcode"] == 0
    resp = api.post("externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": ["alice"]})
    assert resp["errcode"] == 41045
    # temporary ways do not count
    assert api.post("externalcontact/add_contact_way",
                    {"type": 1, "scene": 2, "user": ["alice"], "is_temp": True})["errcode"] == 0


# -- welcome messages --------------------------------------------------------------------------------
def scan(sb, api, **way):
    return sb.simulator.scan_contact_way(CORP, contact_way(api, **way))


def test_scan_posts_encrypted_add_external_contact_with_state_and_code(sb, api):
    result = scan(sb, api, state="promo-1")
    xml = sb.product.events[-1].decode()
    assert "<ChangeType><![CDATA[add_external_contact]]></ChangeType>" in xml
    assert "<State><![CDATA[promo-1]]></State>" in xml
    assert f"<WelcomeCode><![CDATA[{result['welcome_code']}]]></WelcomeCode>" in xml
    assert f"<ExternalUserID><![CDATA[{result['external_userid']}]]>" in xml


def test_welcome_code_single_use(sb, api, clock):
    code = scan(sb, api)["welcome_code"]
    body = {"welcome_code": code, "text": {"content": "hi"}}
    clock.advance(19)
    assert api.post("externalcontact/send_welcome_msg", body)["errcode"] == 0
    assert api.post("externalcontact/send_welcome_msg", body)["errcode"] == 41051
    assert len(sb.journal.welcomes()) == 1


def test_welcome_code_expires_after_20_seconds(sb, api, clock):
    code = scan(sb, api)["welcome_code"]
    clock.advance(20.5)
    resp = api.post("externalcontact/send_welcome_msg", {"welcome_code": code, "text": {"content": "x"}})
    assert resp["errcode"] == 41050
    assert sb.journal.welcomes() == []


def test_welcome_rules(sb, api):
    code = scan(sb, api)["welcome_code"]
    send = "externalcontact/send_welcome_msg"
    assert api.post(send, {"text": {"content": "x"}})["errcode"] == 41049
    assert api.post(send, {"welcome_code": "nope", "text": {"content": "x"}})["errcode"] == 41050
    assert api.post(send, {"welcome_code": code})["errcode"] == 44004
    image = api.image()
    assert api.post(send, {"welcome_code": code, "attachments": [image] * 10})["errcode"] == 41064
    resp = api.post(send, {"welcome_code": code, "text": {"content": "hi"}, "attachments": [image] * 9})
    assert resp["errcode"] == 0
    (entry,) = sb.journal.welcomes(sb.journal.welcomes()[0]["external_userid"])
    assert entry["text"] == "hi" and len(entry["attachments"]) == 9


def test_no_welcome_code_once_chat_started(sb, api):
    first = scan(sb, api)
    api.post("externalcontact/send_welcome_msg",
             {"welcome_code": first["welcome_code"], "text": {"content": "hi"}})
    sb.simulator.customer_deletes_staff(CORP, first["external_userid"], "alice")
    again = sb.simulator.scan_contact_way(CORP, contact_way(api),
                                          external_userid=first["external_userid"])
    assert again["welcome_code"] is None
    assert "WelcomeCode" not in sb.product.events[-1].decode()


# -- callbacks ----------------------------------------------------------------------------------------
def test_callback_retried_on_failure_like_wecom(sb, api):
    sb.product.statuses = [500, 503]
    result = scan(sb, api)
    assert result["callbacks"][0]["statuses"] == [500, 503, 200]
    assert len(sb.product.events) == 3  # the same event, delivered three times


def test_callback_gives_up_after_three_retries(sb, api):
    sb.product.statuses = [500] * 10
    result = scan(sb, api)
    assert result["callbacks"][0]["statuses"] == [500] * 4
    assert result["callbacks"][0]["delivered"] is False


def test_api_actions_fire_no_callbacks(sb, api):
    config_id = contact_way(api)
    assert sb.product.events == []
    ext = sb.simulator.scan_contact_way(CORP, config_id)["external_userid"]
    tag = api.post("externalcontact/add_corp_tag",
                   {"group_name": "g", "tag": [{"name": "t"}]})["tag_group"]["tag"][0]["id"]
    assert api.post("externalcontact/mark_tag", {"userid": "alice", "external_userid": ext,
                                                 "add_tag": [tag]})["errcode"] == 0
    assert len(sb.product.events) == 1  # only the scan


# -- relations ---------------------------------------------------------------------------------------
def test_customer_deletes_staff_keeps_one_sided_relation(sb, api):
    ext = scan(sb, api)["external_userid"]
    sb.simulator.customer_deletes_staff(CORP, ext, "alice")
    assert "del_follow_user" in sb.product.events[-1].decode()
    assert api.call_get("externalcontact/get", external_userid=ext)["errcode"] == 0


def test_staff_deletes_customer_then_84061(sb, api):
    ext = scan(sb, api)["external_userid"]
    sb.simulator.staff_deletes_customer(CORP, "alice", ext)
    assert "del_external_contact" in sb.product.events[-1].decode()
    tag = api.post("externalcontact/add_corp_tag",
                   {"group_name": "g", "tag": [{"name": "t"}]})["tag_group"]["tag"][0]["id"]
    resp = api.post("externalcontact/mark_tag",
                    {"userid": "alice", "external_userid": ext, "add_tag": [tag]})
    assert resp["errcode"] == 84061
    assert api.call_get("externalcontact/list", userid="alice")["errcode"] == 84061


def test_skip_verify_half_add_until_confirmed(sb, api):
    sb.update_corp(CORP, settings={"skip_verify_half": True})
    result = scan(sb, api)
    assert "add_half_external_contact" in sb.product.events[-1].decode()
    assert result["welcome_code"]
    tag = api.post("externalcontact/add_corp_tag",
                   {"group_name": "g", "tag": [{"name": "t"}]})["tag_group"]["tag"][0]["id"]
    body = {"userid": "alice", "external_userid": result["external_userid"], "add_tag": [tag]}
    assert api.post("externalcontact/mark_tag", body)["errcode"] == 84061
    sb.simulator.confirm_contact(CORP, "alice", result["external_userid"])
    assert api.post("externalcontact/mark_tag", body)["errcode"] == 0


def test_batch_get_by_user_limits_and_paging(sb, api):
    ways = contact_way(api, state="p")
    for _ in range(3):
        sb.simulator.scan_contact_way(CORP, ways)
    url = "externalcontact/batch/get_by_user"
    assert api.post(url, {"userid_list": ["alice"] * 101})["errcode"] == 40058
    assert api.post(url, {"userid_list": ["alice"], "limit": 101})["errcode"] == 40058
    page1 = api.post(url, {"userid_list": ["alice"], "limit": 2})
    assert len(page1["external_contact_list"]) == 2 and page1["next_cursor"]
    page2 = api.post(url, {"userid_list": ["alice"], "limit": 2, "cursor": page1["next_cursor"]})
    assert len(page2["external_contact_list"]) == 1 and page2["next_cursor"] == ""
    assert page2["external_contact_list"][0]["follow_info"]["state"] == "p"


def test_staff_edit_fires_edit_external_contact(sb, api):
    ext = scan(sb, api)["external_userid"]
    tag = api.post("externalcontact/add_corp_tag",
                   {"group_name": "g", "tag": [{"name": "t"}]})["tag_group"]["tag"][0]["id"]
    sb.simulator.staff_edits_customer(CORP, "alice", ext, add_tag=[tag])
    assert "edit_external_contact" in sb.product.events[-1].decode()
    assert sb.journal.tag_marks(ext)[0]["source"] == "staff"


# -- tags ---------------------------------------------------------------------------------------------
def test_corp_tag_rules(sb, api):
    sb.update_corp(CORP, settings={"corp_tag_limit": 3})
    add = "externalcontact/add_corp_tag"
    group = api.post(add, {"group_name": "level", "tag": [{"name": "a"}, {"name": "b"}]})["tag_group"]
    assert api.post(add, {"group_name": "level", "tag": [{"name": "a"}]})["errcode"] == 40071
    assert api.post(add, {"group_id": "nope", "tag": [{"name": "z"}]})["errcode"] == 40068
    assert api.post(add, {"group_name": "level", "tag": [{"name": "c"}, {"name": "d"}]})["errcode"] == 40126
    same = api.post(add, {"group_name": "level", "tag": [{"name": "c"}]})  # existing name -> same group
    assert same["tag_group"]["group_id"] == group["group_id"]
    listed = api.post("externalcontact/get_corp_tag_list", {})["tag_group"]
    assert [t["name"] for t in listed[0]["tag"]] == ["a", "b", "c"]
    assert api.post("externalcontact/del_corp_tag", {"group_id": [group["group_id"]]})["errcode"] == 0
    assert api.post("externalcontact/get_corp_tag_list", {})["tag_group"] == []


# -- groups --------------------------------------------------------------------------------------------
def test_join_way_member_cap_and_auto_create(sb, api):
    sb.update_corp(CORP, settings={"group_join_cap": 3})
    chat_id = sb.simulator.create_group(CORP, "alice", "Fans", members=["bob"])["chat_id"]
    way = api.post("externalcontact/groupchat/add_join_way",
                   {"scene": 2, "chat_id_list": [chat_id], "state": "g1", "room_base_name": "Fans "})
    first = sb.simulator.join_group(CORP, way["config_id"])
    assert first["chat_id"] == chat_id
    second = sb.simulator.join_group(CORP, way["config_id"])
    assert second["chat_id"] != chat_id  # full at 3: a new room was created
    info = api.post("externalcontact/groupchat/get", {"chat_id": chat_id})["group_chat"]
    assert len(info["member_list"]) == 3
    customer = [m for m in info["member_list"] if m["type"] == 2][0]
    assert customer["state"] == "g1" and customer["join_scene"] == 3
    xml = sb.product.events[-1].decode()
    assert "<UpdateDetail><![CDATA[add_member]]></UpdateDetail>" in xml and "<JoinScene>3</JoinScene>" in xml


def test_join_way_without_auto_create_refuses_when_full(sb, api):
    sb.update_corp(CORP, settings={"group_join_cap": 2})
    chat_id = sb.simulator.create_group(CORP, "alice", "Fans")["chat_id"]
    way = api.post("externalcontact/groupchat/add_join_way",
                   {"scene": 2, "chat_id_list": [chat_id], "auto_create_room": 0})
    sb.simulator.join_group(CORP, way["config_id"])
    with pytest.raises(SimulationError):
        sb.simulator.join_group(CORP, way["config_id"])


def test_join_way_rules(sb, api):
    chats = [sb.simulator.create_group(CORP, "alice", f"g{i}")["chat_id"] for i in range(6)]
    add = "externalcontact/groupchat/add_join_way"
    assert api.post(add, {"scene": 2, "chat_id_list": chats})["errcode"] == 41091
    assert api.post(add, {"scene": 2, "chat_id_list": ["nope"]})["errcode"] == 40050
    assert api.post(add, {"scene": 2, "chat_id_list": chats[:1], "state": "s" * 31})["errcode"] == 40058


def test_leave_group_posts_del_member(sb, api):
    chat_id = sb.simulator.create_group(CORP, "alice", "g")["chat_id"]
    ext = sb.simulator.invite_to_group(CORP, chat_id, "alice")["external_userid"]
    sb.simulator.leave_group(CORP, chat_id, ext)
    xml = sb.product.events[-1].decode()
    assert "del_member" in xml and "<QuitScene>0</QuitScene>" in xml and f"<Item>{ext}</Item>" in xml


# -- broadcasts ----------------------------------------------------------------------------------------
def test_mass_message_limits(sb, api):
    add = "externalcontact/add_msg_template"
    assert api.post(add, {"external_userid": ["x"] * 10_001,
                          "text": {"content": "hi"}})["errcode"] == 40058
    assert api.post(add, {"chat_type": "group", "sender": "alice", "chat_id_list": ["c"] * 2001,
                          "text": {"content": "hi"}})["errcode"] == 40058
    ext = scan(sb, api)["external_userid"]
    assert api.post(add, {"external_userid": [ext], "text": {"content": "字" * 1334}})["errcode"] == 40058
    image = api.image()
    assert api.post(add, {"external_userid": [ext], "attachments": [image] * 10})["errcode"] == 41064
    assert api.post(add, {"chat_type": "group", "text": {"content": "x"}})["errcode"] == 41009
    assert api.post(add, {"external_userid": [ext], "text": {"content": "字" * 1333}})["errcode"] == 0


def test_mass_message_is_a_task_until_confirmed_and_respects_quota(sb, api):
    sb.update_corp(CORP, settings={"mass_message_quota": "day"})
    a = scan(sb, api)["external_userid"]
    b = scan(sb, api)["external_userid"]
    sent = api.post("externalcontact/add_msg_template",
                    {"external_userid": [a, b, "wmstranger"], "text": {"content": "sale"}})
    assert sent["fail_list"] == ["wmstranger"]
    assert sb.journal.mass_messages() == []  # nothing until the staff member confirms
    sb.simulator.staff_deletes_customer(CORP, "alice", b)
    sb.simulator.confirm_mass_message(CORP, sent["msgid"], "alice")
    assert [e["external_userid"] for e in sb.journal.mass_messages()] == [a]
    second = api.post("externalcontact/add_msg_template",
                      {"external_userid": [a], "text": {"content": "again"}})
    sb.simulator.confirm_mass_message(CORP, second["msgid"], "alice")
    assert len(sb.journal.mass_messages(a)) == 1  # over WeCom's quota: skipped silently
    results = api.post("externalcontact/get_groupmsg_send_result",
                       {"msgid": second["msgid"], "userid": "alice"})["send_list"]
    assert results[0]["status"] == 3
    first = api.post("externalcontact/get_groupmsg_send_result",
                     {"msgid": sent["msgid"], "userid": "alice"})["send_list"]
    assert {r["external_userid"]: r["status"] for r in first} == {a: 1, b: 2}
    task = api.post("externalcontact/get_groupmsg_task", {"msgid": sent["msgid"]})["task_list"]
    assert task == [{"userid": "alice", "status": 2, "send_time": task[0]["send_time"]}]


def test_remind_at_most_three_times_a_day(sb, api):
    ext = scan(sb, api)["external_userid"]
    msgid = api.post("externalcontact/add_msg_template",
                     {"external_userid": [ext], "text": {"content": "x"}})["msgid"]
    for _ in range(3):
        assert api.post("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 0
    assert api.post("externalcontact/remind_groupmsg_send", {"msgid": msgid})["errcode"] == 41094


# -- control endpoints ----------------------------------------------------------------------------
def test_control_endpoints(clock):
    sandbox = Sandbox(clock=clock, sleep=clock.sleep)
    http = httpx.Client(transport=httpx.MockTransport(sandbox.handle), base_url="http://sb.test")
    corp = http.post("/sandbox/corps", json={"corp_id": "wwctl", "secrets": {"contact": "s"}}).json()
    assert corp["secrets"] == {"contact": "s"} and len(corp["encoding_aes_key"]) == 43
    assert http.post("/sandbox/corps/wwctl/staff", json={"userid": "amy"}).status_code == 200
    token = http.get("/cgi-bin/gettoken", params={"corpid": "wwctl", "corpsecret": "s"}).json()["access_token"]
    way = http.post("/cgi-bin/externalcontact/add_contact_way", params={"access_token": token},
                    json={"type": 1, "scene": 2, "user": ["amy"]}).json()
    scanned = http.post("/sandbox/corps/wwctl/simulate/scan_contact_way",
                        json={"config_id": way["config_id"], "name": "Lee"}).json()
    assert scanned["callbacks"][0]["delivered"] is False  # no callback_url yet
    refused = http.post("/sandbox/corps/wwctl/simulate/scan_contact_way", json={"config_id": "nope"})
    assert refused.status_code == 409
    assert http.post("/sandbox/faults", json={"kind": "errcode", "errcode": 45009}).json()["id"] == 1
    assert http.get("/sandbox/faults").json()["faults"][0]["errcode"] == 45009
    assert http.delete("/sandbox/faults").status_code == 200
    assert http.post("/sandbox/clock/advance", json={"seconds": 30}).json()["now"] == T0 + 30
    journal = http.get("/sandbox/journal", params={"kind": "callback"}).json()["entries"]
    assert journal[0]["change_type"] == "add_external_contact"
    assert http.get("/sandbox/requests", params={"api": "gettoken"}).json()["count"] == 1
    assert http.get("/sandbox/corps/wwctl/state").json()["relations"][0]["userid"] == "amy"


def test_many_concurrent_joins_honour_the_scan_cap_and_auto_create(sb, api):
    """450 customers at once through two groups (each holding its owner): no group passes the
    200 scan cap, whatever the interleaving, and auto_create_room makes the rooms for the rest."""
    chats = [sb.simulator.create_group(CORP, "alice", f"g{i}")["chat_id"] for i in range(2)]
    way = api.post("externalcontact/groupchat/add_join_way",
                   {"scene": 2, "chat_id_list": chats, "room_base_name": "Fans ", "room_base_id": 10})
    result = sb.simulator.join_many(CORP, way["config_id"], 450, concurrency=12, prefix="wmc")
    assert result["joined"] == 450 and result["refused"] == 0
    corp = sb.world.corp(CORP)
    sizes = {c.chat_id: len(c.members) for c in corp.chats.values()}
    assert max(sizes.values()) == 200 and sum(sizes.values()) == 450 + 3  # three owners
    assert sizes[chats[0]] == sizes[chats[1]] == 200
    created = [c for c in corp.chats.values() if c.chat_id not in chats]
    assert [c.name for c in created] == ["Fans 11"]
    assert created[0].chat_id in corp.join_ways[way["config_id"]]["chat_id_list"]
    joined = [e for e in sb.product.events if b"add_member" in e]
    assert len(joined) == 450  # one callback per join, none lost under concurrency


def test_many_joins_without_auto_create_stop_at_the_cap(sb, api):
    chat = sb.simulator.create_group(CORP, "alice", "g")["chat_id"]
    way = api.post("externalcontact/groupchat/add_join_way",
                   {"scene": 2, "chat_id_list": [chat], "auto_create_room": 0})
    result = sb.simulator.join_many(CORP, way["config_id"], 230, concurrency=8)
    assert result["joined"] == 199 and result["refused"] == 31
    assert len(sb.world.corp(CORP).chats[chat].members) == 200


def test_app_message_send(sb, api):
    sent = api.post("message/send", {"touser": "alice|ghost", "msgtype": "text", "agentid": 1000002,
                                     "text": {"content": "low capacity"}})
    assert sent["errcode"] == 0 and sent["invaliduser"] == "ghost"
    assert [e["userid"] for e in sb.journal.entries("app_message")] == ["alice"]
    assert api.post("message/send", {"touser": "alice", "msgtype": "text", "agentid": 99,
                                     "text": {"content": "x"}})["errcode"] == 40056
    assert api.post("message/send", {"touser": "alice", "msgtype": "text", "agentid": 1000002,
                                     "text": {"content": "x" * 2049}})["errcode"] == 40058


# -- temporary media (doc 90389; limits doc 90313 "上传的媒体文件限制") ---------------------------------------
def test_media_upload_rules(sb, api):
    resp = api.upload("image", PNG)
    assert (resp["errcode"], resp["type"]) == (0, "image") and resp["media_id"]
    assert resp["created_at"] == str(T0)  # a string, as WeCom sends it
    assert api.upload("image", JPG, "a.jpg", "image/jpeg")["errcode"] == 0
    assert api.upload("image", b"GIF89a" + b"\0" * 100, "a.gif", "image/gif")["errcode"] == 40005  # jpg/png only
    assert api.upload("image", PNG[:5])["errcode"] == 40006  # every file must be over 5 bytes
    big = PNG + b"\0" * (10 * 1024 * 1024 - len(PNG))
    assert api.upload("image", big)["errcode"] == 0  # 10 MB exactly
    assert api.upload("image", big + b"\0")["errcode"] == 40009
    assert api.upload("sticker", PNG)["errcode"] == 40004
    assert api.upload("file", b"%PDF-1.4 x", "a.pdf", "application/pdf")["errcode"] == 0
    assert api.upload("file", b"x" * (20 * 1024 * 1024 + 1), "a.bin", "application/octet-stream")["errcode"] == 40006
    no_part = api.http.post("/cgi-bin/media/upload", params={"access_token": api.token, "type": "image"},
                            files={"other": ("a.png", PNG, "image/png")}).json()
    assert no_part["errcode"] == 41005
    assert api.http.post("/cgi-bin/media/upload", params={"access_token": api.token, "type": "image"},
                         json={"media": "x"}).json()["errcode"] == 41005  # not multipart


def test_upload_attachment_rules_and_moments_take_only_its_media_ids(sb, api):
    """media/upload_attachment (doc 95098): media_type image | video | file, attachment_type 1
    (Moments) or 2 (product album), the file in part "media", the limits of media/upload."""
    resp = api.upload_attachment("image", PNG)
    assert (resp["errcode"], resp["type"]) == (0, "image") and resp["media_id"]
    assert resp["created_at"] == str(T0)
    assert api.upload_attachment("image", JPG, filename="a.jpg", content_type="image/jpeg")["errcode"] == 0
    assert api.upload_attachment("image", b"GIF89a" + b"\0" * 100)["errcode"] == 40005
    assert api.upload_attachment("image", PNG + b"\0" * (10 * 1024 * 1024))["errcode"] == 40009
    assert api.upload_attachment("voice", PNG)["errcode"] == 40004  # image, video or file only
    assert api.upload_attachment("image", PNG, attachment_type=3)["errcode"] == 40058
    assert api.upload_attachment("video", b"\0\0\0\x18ftypmp42" + b"\0" * 100, filename="a.mp4",
                                 content_type="video/mp4")["errcode"] == 0
    no_part = api.http.post("/cgi-bin/media/upload_attachment",
                            params={"access_token": api.token, "media_type": "image", "attachment_type": 1},
                            files={"other": ("a.png", PNG, "image/png")}).json()
    assert no_part["errcode"] == 41005
    moment = "externalcontact/add_moment_task"
    assert api.post(moment, {"attachments": [api.image(attachment_type=1)]})["errcode"] == 0
    assert api.post(moment, {"attachments": [api.image(attachment_type=2)]})["errcode"] == 40007  # an album's
    assert api.post(moment, {"attachments": [api.image()]})["errcode"] == 40007  # media/upload's
    assert api.post(moment, {"attachments": [  # a URL is not how Moments take images
        {"msgtype": "image", "image": {"pic_url": "https://x.test/a.png"}}]})["errcode"] == 41006


def test_a_moments_link_takes_its_cover_as_a_moments_image_media_id(sb, api):
    """add_moment_task's link is {title, url, media_id} (doc 95094; WxJava, go-workwx, silenceper
    MomentTaskLink): the cover is an image uploaded with media/upload_attachment (attachment_type 1),
    required; a picurl is not how Moments take it."""
    moment = "externalcontact/add_moment_task"

    def link(**cover):
        return {"msgtype": "link", "link": {"title": "Sale", "url": "https://x.test/sale", **cover}}

    cover = api.image(attachment_type=1)["image"]["media_id"]
    assert api.post(moment, {"attachments": [link(media_id=cover)]})["errcode"] == 0
    assert api.post(moment, {"attachments": [link()]})["errcode"] == 41006
    assert api.post(moment, {"attachments": [link(picurl="https://x.test/a.png")]})["errcode"] == 41006
    assert api.post(moment, {"attachments": [link(media_id=api.image()["image"]["media_id"])]})["errcode"] == 40007
    assert api.post(moment, {"attachments": [link(media_id="m-unknown")]})["errcode"] == 40007


def test_image_media_ids_are_refused_unknown_or_after_three_days(sb, api, clock):
    ext = scan(sb, api)["external_userid"]
    add, moment = "externalcontact/add_msg_template", "externalcontact/add_moment_task"
    image = api.image()
    unknown = {"msgtype": "image", "image": {"media_id": "m-unknown"}}
    as_file = api.upload("file", b"%PDF-1.4 x", "a.pdf", "application/pdf")["media_id"]
    not_an_image = {"msgtype": "image", "image": {"media_id": as_file}}
    for bad in (unknown, not_an_image):
        assert api.post(add, {"external_userid": [ext], "attachments": [bad]})["errcode"] == 40007
        assert api.post(moment, {"attachments": [bad]})["errcode"] == 40007
    assert api.post(add, {"external_userid": [ext], "attachments": [image]})["errcode"] == 0
    assert api.post(moment, {"attachments": [image]})["errcode"] == 40007  # Moments take upload_attachment's ids
    for_moments = api.image(attachment_type=1)
    assert api.post(moment, {"attachments": [for_moments]})["errcode"] == 0
    clock.advance(3 * 86400 - 1)
    api.token = api.get("gettoken", corpid=CORP, corpsecret=SECRET)["access_token"]  # 2 h tokens
    assert api.post(moment, {"attachments": [for_moments]})["errcode"] == 0
    assert api.post(add, {"external_userid": [ext], "attachments": [image]})["errcode"] == 0
    clock.advance(1)  # three days after the upload: expired
    assert api.post(moment, {"attachments": [for_moments]})["errcode"] == 40007
    assert api.post(add, {"external_userid": [ext], "attachments": [image]})["errcode"] == 40007
    code = scan(sb, api)["welcome_code"]
    send = "externalcontact/send_welcome_msg"
    assert api.post(send, {"welcome_code": code, "attachments": [image]})["errcode"] == 40007
    assert api.post(send, {"welcome_code": code, "attachments": [api.image()]})["errcode"] == 0
    assert api.post(add, {"external_userid": [ext], "attachments": [
        {"msgtype": "image", "image": {"pic_url": "https://x.test/a.png"}}]})["errcode"] == 0  # a URL: no media id
