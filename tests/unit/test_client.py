"""WeComClient against the sandbox in-process (httpx.MockTransport): tokens, retries, pacing."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from chalicelib.wecom import errors
from chalicelib.wecom import models as m
from chalicelib.wecom.client import InMemoryRateLimiter, InMemoryTokenCache, WeComClient
from tests.helpers import SANDBOX_CORP as CORP
from tests.helpers import SANDBOX_SECRET as SECRET
from tests.helpers import T0

WELCOME = "externalcontact/send_welcome_msg"


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sb, clock, sleeps):
    def sleep(seconds):
        sleeps.append(seconds)
        clock.advance(seconds)

    return make_client(sb, clock, sleep)


def make_client(sb, clock, sleep, **kwargs):
    kwargs.setdefault("token_cache", InMemoryTokenCache())
    return WeComClient(corp_id=CORP, secret=kwargs.pop("secret", SECRET), base_url="http://wecom.test/cgi-bin",
                       transport=httpx.MockTransport(sb.handle), clock=clock, sleep=sleep, **kwargs)


def welcome_code(sb, client):
    way = client.add_contact_way(m.ContactWay(type=1, scene=2, user=["alice"], state="c1"))
    return sb.simulator.scan_contact_way(CORP, way.config_id)


def calls(sb, api):
    return len(sb.requests(api))


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("errcode, cls", [
    (40014, errors.TokenInvalid), (42001, errors.TokenInvalid), (40001, errors.AuthError),
    (48002, errors.AuthError), (60020, errors.AuthError), (301002, errors.AuthError),
    (45009, errors.FrequencyLimited), (45033, errors.FrequencyLimited), (-1, errors.SystemBusy),
    (6000, errors.SystemBusy), (40058, errors.InvalidArgument), (41001, errors.InvalidArgument),
    (41050, errors.WelcomeCodeExpired), (41051, errors.WelcomeAlreadySent),
    (41054, errors.MemberNotActivated), (84061, errors.NoRelation), (99999, errors.ApiError),
])
def test_errcode_decides_the_class(errcode, cls):
    err = errors.from_errcode(errcode, "whatever the message says: system busy", "x")
    assert type(err) is cls and err.errcode == errcode
    assert isinstance(err, errors.ApiError) and isinstance(err, errors.WeComError)


def test_frequency_limited_retry_after():
    assert errors.from_errcode(45009).retry_after == 60
    assert errors.from_errcode(45033).retry_after == 1
    assert errors.from_errcode(45009).retryable and not errors.from_errcode(40058).retryable
    assert issubclass(errors.WeComTimeout, errors.WeComUnavailable)


# -- typed calls -------------------------------------------------------------------------------------
def test_acquisition_flow(sb, client):
    scanned = welcome_code(sb, client)
    client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                             text=m.Text(content="hello")))
    ext = scanned["external_userid"]
    got = client.get_external_contact(ext)
    assert got.follow_user[0].state == "c1"
    assert client.list_external_contacts("alice").external_userid == [ext]
    assert client.batch_get_by_user(["alice"]).external_contact_list[0].follow_info.state == "c1"
    assert client.get_follow_user_list().follow_user == ["alice"]
    tag = client.add_corp_tag(m.AddCorpTagRequest(group_name="lvl", tag=[m.NewTag(name="vip")]))
    tag_id = tag.tag_group.tag[0].id
    client.mark_tag(m.MarkTagRequest(userid="alice", external_userid=ext, add_tag=[tag_id]))
    assert client.get_external_contact(ext).follow_user[0].tags[0].tag_id == tag_id
    client.edit_corp_tag(m.EditCorpTagRequest(id=tag_id, name="VIP"))
    assert client.get_corp_tag_list().tag_group[0].tag[0].name == "VIP"
    client.del_corp_tag(tag_id=[tag_id])
    assert client.get_corp_tag_list().tag_group == []
    assert len(sb.journal.welcomes(ext)) == 1
    assert calls(sb, "gettoken") == 1


def test_thinner_wrappers_are_real_calls(sb, client):
    chat = sb.simulator.create_group(CORP, "alice", "fans")["chat_id"]
    assert client.list_groupchats(m.GroupChatListRequest(limit=10)).group_chat_list[0].chat_id == chat
    assert client.get_groupchat(chat).group_chat.owner == "alice"
    jw = client.add_join_way(m.JoinWay(scene=2, chat_id_list=[chat], state="j"))
    assert client.get_join_way(jw.config_id).join_way.state == "j"
    client.update_join_way(m.JoinWay(config_id=jw.config_id, scene=2, chat_id_list=[chat], state="k"))
    client.del_join_way(jw.config_id)
    tpl = client.add_group_welcome_template(m.GroupWelcomeTemplate(text=m.Text(content="hi")))
    assert client.get_group_welcome_template(tpl.template_id).text.content == "hi"
    client.del_group_welcome_template(tpl.template_id)
    ext = welcome_code(sb, client)["external_userid"]
    sent = client.add_msg_template(m.MsgTemplate(external_userid=[ext], text=m.Text(content="sale")))
    sb.simulator.confirm_mass_message(CORP, sent.msgid, "alice")
    listed = client.get_groupmsg_list_v2(m.GroupMsgListRequest(chat_type="single", start_time=T0 - 60,
                                                               end_time=T0 + 60))
    assert listed.group_msg_list[0].msgid == sent.msgid
    assert client.get_groupmsg_task(sent.msgid).task_list[0].status == 2
    assert client.get_groupmsg_send_result(sent.msgid, "alice").send_list[0].status == 1
    job = client.add_moment_task(m.MomentTask(text=m.Text(content="news")))
    assert client.get_moment_task_result(job.jobid).status == 3
    sb.add_staff(CORP, "bob")
    moved = client.transfer_customer(m.TransferCustomerRequest(
        handover_userid="alice", takeover_userid="bob", external_userid=[ext]))
    assert moved.customer[0].errcode == 0
    assert client.transfer_result(m.TransferResultRequest(
        handover_userid="alice", takeover_userid="bob")).customer[0].status == 2
    failed = client.groupchat_transfer(m.GroupChatTransferRequest(chat_id_list=[chat], new_owner="bob"))
    assert failed.failed_chat_list[0].errcode == 90500  # owner has not resigned
    way = client.add_contact_way(m.ContactWay(type=1, scene=2, user=["alice"]))
    client.update_contact_way(m.ContactWay(config_id=way.config_id, state="new"))
    assert client.get_contact_way(way.config_id).contact_way.state == "new"
    client.del_contact_way(way.config_id)


def test_models_refuse_what_wecom_refuses():
    with pytest.raises(ValueError):
        m.ContactWay(type=1, scene=2, user=["a"], state="s" * 31)
    with pytest.raises(ValueError):
        m.WelcomeMessage(welcome_code="c", attachments=[{"msgtype": "image", "image": {}}] * 10)
    with pytest.raises(ValueError):
        m.MsgTemplate(external_userid=["x"] * 10_001)
    with pytest.raises(ValueError):
        m.BatchGetByUserRequest(userid_list=["u"] * 101)


def test_api_errors_are_typed(sb, client):
    with pytest.raises(errors.MemberNotActivated):
        sb.add_staff(CORP, "dave", activated=False)
        client.add_contact_way(m.ContactWay(type=1, scene=2, user=["dave"]))
    with pytest.raises(errors.WelcomeCodeExpired):
        client.send_welcome_msg(m.WelcomeMessage(welcome_code="nope", text=m.Text(content="x")))


# -- tokens ------------------------------------------------------------------------------------------
def test_wrong_secret_is_auth_error(sb, clock):
    client = make_client(sb, clock, clock.sleep, secret="wrong")
    with pytest.raises(errors.AuthError) as exc:
        client.get_follow_user_list()
    assert exc.value.errcode == 40001
    assert "wrong" not in repr(client)


def test_token_refreshed_once_on_42001_and_the_call_succeeds(sb, client):
    scanned = welcome_code(sb, client)
    sb.faults.add("errcode", errcode=42001, path=WELCOME)
    client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                             text=m.Text(content="hi")))
    assert len(sb.journal.welcomes(scanned["external_userid"])) == 1
    assert calls(sb, "gettoken") == 2
    assert calls(sb, WELCOME) == 2


def test_token_invalid_twice_raises(sb, client):
    client.get_follow_user_list()
    sb.faults.add("errcode", errcode=40014, count=2)
    with pytest.raises(errors.TokenInvalid):
        client.get_follow_user_list()
    assert calls(sb, "gettoken") == 2


def test_token_kept_in_memory_and_refreshed_before_expiry(sb, client, clock):
    cache = client._cache
    for _ in range(5):
        client.get_follow_user_list()
    assert calls(sb, "gettoken") == 1
    clock.advance(7200 - 299)  # inside the 5-minute refresh margin
    client.get_follow_user_list()
    assert calls(sb, "gettoken") == 2
    assert cache.get(CORP, "contact").expires_at == pytest.approx(clock() + 7200)
    assert [r["errcode"] for r in sb.requests("externalcontact/get_follow_user_list")] == [0] * 6


def test_in_memory_cache_lease_and_conditional_invalidate():
    cache = InMemoryTokenCache()
    assert cache.acquire_lease("c", "a", holder="h1", now=0, lease_seconds=10, fresh_until=300)
    assert not cache.acquire_lease("c", "a", holder="h2", now=1, lease_seconds=10, fresh_until=301)
    cache.store("c", "a", access_token="t1", expires_at=7200, holder="h1")
    assert not cache.acquire_lease("c", "a", holder="h2", now=2, lease_seconds=10, fresh_until=302)
    assert not cache.invalidate("c", "a", access_token="other")
    assert cache.invalidate("c", "a", access_token="t1")
    assert cache.acquire_lease("c", "a", holder="h2", now=3, lease_seconds=10, fresh_until=303)


# -- retries ------------------------------------------------------------------------------------------
def test_system_busy_retried_for_retry_safe_call(sb, client, sleeps):
    client.get_follow_user_list()
    sb.faults.add("errcode", errcode=-1, count=2, path="externalcontact/get_follow_user_list")
    assert client.get_follow_user_list().follow_user == ["alice"]
    assert calls(sb, "externalcontact/get_follow_user_list") == 4
    assert len(sleeps) == 2 and all(0 <= s <= 4 for s in sleeps)


def test_system_busy_gives_up_after_three_retries(sb, client):
    client.get_follow_user_list()
    sb.faults.add("errcode", errcode=6000, count=10)
    with pytest.raises(errors.SystemBusy):
        client.get_follow_user_list()
    assert calls(sb, "externalcontact/get_follow_user_list") == 1 + 4


def test_system_busy_not_retried_for_non_idempotent_call(sb, client):
    scanned = welcome_code(sb, client)
    sb.faults.add("errcode", errcode=-1, path=WELCOME)
    with pytest.raises(errors.SystemBusy):
        client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                                 text=m.Text(content="hi")))
    assert calls(sb, WELCOME) == 1


def test_45009_is_never_retried_in_process(sb, client, sleeps):
    client.get_follow_user_list()
    sb.faults.add("errcode", errcode=45009)
    with pytest.raises(errors.FrequencyLimited) as exc:
        client.get_follow_user_list()
    assert exc.value.retry_after == 60 and not exc.value.local
    assert calls(sb, "externalcontact/get_follow_user_list") == 2 and sleeps == []


def test_45033_retried_after_a_short_sleep(sb, client, sleeps):
    client.get_follow_user_list()
    sb.faults.add("errcode", errcode=45033)
    client.get_follow_user_list()
    assert sleeps and sleeps[0] >= 0.5


def test_5xx_retried_for_safe_call_not_for_unsafe(sb, client):
    client.get_follow_user_list()
    sb.faults.add("http", status=502, count=1)
    client.get_follow_user_list()
    scanned = welcome_code(sb, client)
    sb.faults.add("http", status=503, path=WELCOME)
    with pytest.raises(errors.WeComUnavailable) as exc:
        client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                                 text=m.Text(content="hi")))
    assert exc.value.status_code == 503 and calls(sb, WELCOME) == 1


@pytest.mark.parametrize("which", ["welcome", "broadcast"])
def test_timeout_on_non_idempotent_call_is_not_retried(sb, client, which):
    scanned = welcome_code(sb, client)
    if which == "welcome":
        api = WELCOME
        call = lambda: client.send_welcome_msg(m.WelcomeMessage(  # noqa: E731
            welcome_code=scanned["welcome_code"], text=m.Text(content="hi")))
    else:
        api = "externalcontact/add_msg_template"
        call = lambda: client.add_msg_template(m.MsgTemplate(  # noqa: E731
            external_userid=[scanned["external_userid"]], text=m.Text(content="sale")))
    sb.faults.add("timeout", path=api)  # WeCom executes, the answer is lost
    with pytest.raises(errors.WeComTimeout) as exc:
        call()
    assert exc.value.maybe_executed is True
    assert calls(sb, api) == 1
    if which == "welcome":
        assert len(sb.journal.welcomes(scanned["external_userid"])) == 1
    else:
        assert len(sb.world.corp(CORP).mass_messages) == 1


def test_slow_answer_beyond_timeout_on_unsafe_call(sb, clock, sleeps):
    client = make_client(sb, clock, clock.sleep, timeout=2.0)
    scanned = welcome_code(sb, client)
    sb.faults.add("slow", delay=10, path=WELCOME)
    with pytest.raises(errors.WeComTimeout):
        client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                                 text=m.Text(content="hi")))
    assert calls(sb, WELCOME) == 1


def test_timeout_on_safe_call_is_retried(sb, client):
    client.get_follow_user_list()
    sb.faults.add("timeout")
    assert client.get_follow_user_list().follow_user == ["alice"]
    assert calls(sb, "externalcontact/get_follow_user_list") == 3


def test_connect_error_retried_even_for_unsafe_call(sb, client):
    scanned = welcome_code(sb, client)
    sb.faults.add("connect_error", path=WELCOME)  # never reached WeCom: safe to repeat
    client.send_welcome_msg(m.WelcomeMessage(welcome_code=scanned["welcome_code"],
                                             text=m.Text(content="hi")))
    assert calls(sb, WELCOME) == 2
    assert len(sb.journal.welcomes()) == 1


# -- pacing --------------------------------------------------------------------------------------------
def test_burst_over_the_budget_is_spread_over_windows(sb, client, clock, sleeps):
    client._limiter = InMemoryRateLimiter(per_second=5)
    client.get_follow_user_list()  # window T0: 1 used
    for _ in range(11):
        client.get_follow_user_list()
    per_window: dict[int, int] = {}
    for r in sb.requests("externalcontact/get_follow_user_list"):
        per_window[int(r["at"])] = per_window.get(int(r["at"]), 0) + 1
    assert sorted(per_window.values(), reverse=True) == [5, 5, 2]
    assert all(r["errcode"] == 0 for r in sb.requests("externalcontact/get_follow_user_list"))
    assert sum(sleeps) == pytest.approx(2.0)


def test_pacing_beyond_max_wait_raises_locally(sb, clock):
    class Full:
        def acquire(self, corp_id, api, now):
            return 30.0

    client = make_client(sb, clock, clock.sleep, rate_limiter=Full())
    with pytest.raises(errors.FrequencyLimited) as exc:
        client.get_follow_user_list()
    assert exc.value.local and exc.value.retry_after == 30.0
    assert calls(sb, "externalcontact/get_follow_user_list") == 0


# -- import cost ------------------------------------------------------------------------------------
def test_import_does_not_load_httpx_or_pydantic_models():
    code = ("import sys, chalicelib.wecom.client; "
            "print('httpx' in sys.modules, 'chalicelib.wecom.models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_send_app_message(sb, client):
    sent = client.send_app_message(m.AppTextMessage(touser="alice", agentid=1000002,
                                                    text=m.Text(content="group code low")))
    assert sent.invaliduser == ""
    assert [e["text"] for e in sb.journal.entries("app_message")] == ["group code low"]


def test_departed_members_customers_are_unassigned_until_handed_over_and_a_full_takeover_refuses(sb, client, clock):
    """get_unassigned_list lists a resigned member's customers until a resigned transfer moves them;
    an in-service transfer of a departed member is refused; a takeover at its customer limit ends the
    transfer as status 4 (takeover full) with transfer_fail customer_limit_exceed."""
    ext = welcome_code(sb, client)["external_userid"]
    sb.add_staff(CORP, "bob")
    assert client.get_unassigned_list().info == []
    sb.resign_staff(CORP, "alice")
    [row] = client.get_unassigned_list().info
    assert (row.handover_userid, row.external_userid, row.dimission_time) == ("alice", ext, T0)
    request = m.TransferCustomerRequest(handover_userid="alice", takeover_userid="bob", external_userid=[ext])
    with pytest.raises(errors.ApiError) as refused:
        client.transfer_customer(request)
    assert refused.value.errcode == 40003
    assert client.resigned_transfer_customer(request).customer[0].errcode == 0
    assert client.get_unassigned_list().info == []  # moving now
    sb.update_corp(CORP, settings={"takeover_customer_limit": 0})
    clock.advance(86400)
    sb.simulator.complete_transfers(CORP)
    [result] = client.transfer_result(m.TransferResultRequest(handover_userid="alice", takeover_userid="bob"),
                                      resigned=True).customer
    assert result.status == 4
    fail = sb.journal.entries("callback")[-1]
    assert (fail["change_type"], fail["fields"]["FailReason"]) == ("transfer_fail", "customer_limit_exceed")
