"""chalicelib.wecom.events: recorded samples -> typed events, identity, dict round-trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.wecom import events
from chalicelib.wecom.crypto import MAX_BODY_BYTES, BodyTooLarge, XmlInvalid
from chalicelib.wecom.events import (
    AddExternalContact,
    AddHalfExternalContact,
    CallbackEvent,
    DelExternalContact,
    DelFollowUser,
    EditExternalContact,
    EventInvalid,
    ExternalChatCreate,
    ExternalChatDismiss,
    ExternalChatUpdate,
    ExternalTagCreate,
    ExternalTagDelete,
    ExternalTagShuffle,
    ExternalTagUpdate,
    GenericEvent,
    MsgAuditApproved,
    TransferFail,
    event_from_dict,
    parse_event,
    parse_xml,
)

EVENTS_DIR = Path(__file__).parents[1] / "events" / "wecom"
SAMPLES = sorted(p.name for p in EVENTS_DIR.glob("*.xml"))

CORP = "ww1436e0e65a779aee"
USER = {"user_id": "zhangsan", "external_user_id": "wmAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"}
CHAT = "wrx7HUARsKAAAAd2sBcGFyZ1n8kQ2aSA"
TEXT_MESSAGE = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
).encode()


def load_event(name: str) -> bytes:
    return (EVENTS_DIR / name).read_bytes()


# sample file -> (class, expected fields beyond the common ones)
EXPECTED: dict[str, tuple[type[CallbackEvent], dict]] = {
    "change_external_contact.add_external_contact.xml": (
        AddExternalContact,
        {**USER, "state": "ch_2024spring", "welcome_code": "WELCOMECODE_8f3a2c"},
    ),
    "change_external_contact.edit_external_contact.xml": (EditExternalContact, USER),
    "change_external_contact.add_half_external_contact.xml": (
        AddHalfExternalContact,
        {**USER, "state": "ch_2024spring", "welcome_code": "WELCOMECODE_half_1"},
    ),
    "change_external_contact.del_external_contact.xml": (
        DelExternalContact,
        {**USER, "source": "DELETE_BY_TRANSFER"},
    ),
    "change_external_contact.del_follow_user.xml": (DelFollowUser, USER),
    "change_external_contact.transfer_fail.xml": (
        TransferFail,
        {**USER, "fail_reason": "customer_refused"},
    ),
    "change_external_contact.msg_audit_approved.xml": (
        MsgAuditApproved,
        {**USER, "welcome_code": "WELCOMECODE_audit_1"},
    ),
    "change_external_chat.create.xml": (ExternalChatCreate, {"chat_id": CHAT}),
    "change_external_chat.dismiss.xml": (ExternalChatDismiss, {"chat_id": CHAT}),
    "change_external_chat.update.xml": (
        ExternalChatUpdate,
        {
            "chat_id": CHAT,
            "update_detail": "add_member",
            "join_scene": 3,
            "quit_scene": 0,
            "mem_change_cnt": 2,
            "mem_change_list": ["Jack", "wmRoseAAAAAxyz"],
            "last_mem_ver": "9c3f97c2ada667dfb5f6d03308d963e1",
            "cur_mem_ver": "71217227bbd112ecfe3a49c482195cb4",
        },
    ),
    "change_external_chat.update.legacy_mem_change_list.xml": (
        ExternalChatUpdate,
        {
            "chat_id": CHAT,
            "update_detail": "del_member",
            "join_scene": None,
            "quit_scene": 1,
            "mem_change_cnt": 2,
            "mem_change_list": ["Jack", "wmRoseAAAAAxyz"],
        },
    ),
    "change_external_tag.create.xml": (
        ExternalTagCreate,
        {"id": "etAJ2GCAAAAAtag1", "tag_type": "tag", "strategy_id": None},
    ),
    "change_external_tag.update.xml": (
        ExternalTagUpdate,
        {"id": "etAJ2GCAAAAAgrp1", "tag_type": "tag_group", "strategy_id": 1},
    ),
    "change_external_tag.delete.xml": (
        ExternalTagDelete,
        {"id": "etAJ2GCAAAAAtag1", "tag_type": "tag"},
    ),
    "change_external_tag.shuffle.xml": (
        ExternalTagShuffle,
        {"id": "etAJ2GCAAAAAgrp1", "strategy_id": 1},
    ),
}


def test_every_sample_has_an_expectation():
    assert sorted(EXPECTED) == SAMPLES


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_parses_to_its_class(name):
    # GIVEN a recorded plaintext, WHEN parsed, THEN its class, common and specific fields
    cls, fields = EXPECTED[name]
    event = parse_event(load_event(name))
    assert type(event) is cls
    assert event.to_user_name == CORP
    assert event.from_user_name == "sys"
    assert event.msg_type == "event"
    assert event.create_time > 1_700_000_000
    event_tag, change_type = name.split(".")[:2]
    assert event.route_key == (event_tag, change_type) == (cls.EVENT, cls.CHANGE_TYPE)
    for field, value in fields.items():
        assert getattr(event, field) == value, field


def test_every_change_type_has_a_sample():
    covered = {type(parse_event(load_event(name))) for name in SAMPLES}
    assert covered == set(events._MODELS)


def test_mem_change_list_both_forms_and_empty():
    base = load_event("change_external_chat.update.xml").decode()
    items = re.search(r"<MemChangeList>.*</MemChangeList>", base, re.DOTALL).group(0)
    forms = {
        "items": items,
        "comma": "<MemChangeList><![CDATA[Jack,wmRoseAAAAAxyz]]></MemChangeList>",
        "comma-spaces": "<MemChangeList>Jack, wmRoseAAAAAxyz,</MemChangeList>",
    }
    for label, form in forms.items():
        event = parse_event(base.replace(items, form).encode())
        assert event.mem_change_list == ["Jack", "wmRoseAAAAAxyz"], label
    single = parse_event(base.replace(items, "<MemChangeList><Item>Jack</Item></MemChangeList>").encode())
    assert single.mem_change_list == ["Jack"]
    for empty in ("<MemChangeList></MemChangeList>", ""):
        assert parse_event(base.replace(items, empty).encode()).mem_change_list == []


def test_parse_xml_flat_children_and_lists():
    fields = parse_xml(load_event("change_external_chat.update.xml"))
    assert fields["MemChangeList"] == ["Jack", "wmRoseAAAAAxyz"]
    assert fields["JoinScene"] == "3"
    assert parse_xml(b"<xml><A/><B>x</B><B>y</B></xml>") == {"A": "", "B": "x"}


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param(TEXT_MESSAGE, id="text-message"),
        pytest.param(
            load_event("change_external_contact.add_external_contact.xml").replace(
                b"add_external_contact", b"brand_new_change"
            ),
            id="unknown-change-type",
        ),
        pytest.param(
            b"<xml><ToUserName>ww</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"
            b"<Event>kf_msg_or_event</Event><Token>ENC</Token><OpenKfId>wkAA</OpenKfId></xml>",
            id="unknown-event",
        ),
        pytest.param(b"<xml/>", id="empty"),
        pytest.param(
            b"<xml><Event><Item>a</Item></Event><ChangeType>create</ChangeType>"
            b"<CreateTime>soon</CreateTime></xml>",
            id="garbage-values",
        ),
        pytest.param(
            b"<xml><SuiteId>ww</SuiteId><InfoType>change_external_contact</InfoType>"
            b"<TimeStamp>1403610513</TimeStamp><AuthCorpId>wwc</AuthCorpId></xml>",
            id="third-party-envelope",
        ),
    ],
)
def test_unknown_input_becomes_generic_event(xml):
    event = parse_event(xml)
    assert type(event) is GenericEvent
    assert event.fields == parse_xml(xml)
    assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_text_message_vector_keeps_raw_fields():
    event = parse_event(TEXT_MESSAGE)
    assert (event.to_user_name, event.create_time, event.msg_type) == (
        CORP,
        1476422779,
        "text",
    )
    assert event.route_key == ("", None)
    assert event.fields["Content"] == "你好"
    assert event.fields["MsgId"] == "1456453720"


@pytest.mark.parametrize(
    "name, tag",
    [
        ("change_external_contact.add_external_contact.xml", "UserID"),
        ("change_external_contact.del_follow_user.xml", "ExternalUserID"),
        ("change_external_chat.create.xml", "ChatId"),
        ("change_external_chat.update.xml", "UpdateDetail"),
        ("change_external_tag.create.xml", "Id"),
        ("change_external_tag.delete.xml", "TagType"),
        ("change_external_tag.update.xml", "CreateTime"),
        ("change_external_contact.transfer_fail.xml", "ToUserName"),
    ],
)
def test_missing_required_field_is_event_invalid(name, tag):
    xml = re.sub(rf"<{tag}>.*?</{tag}>", "", load_event(name).decode()).encode()
    with pytest.raises(EventInvalid) as info:
        parse_event(xml)
    exc = info.value
    assert (exc.code, exc.http_status) == ("event_invalid", 400)


@pytest.mark.parametrize(
    "old, new",
    [
        ("<CreateTime>1716955000</CreateTime>", "<CreateTime>yesterday</CreateTime>"),
        ("<UserID><![CDATA[zhangsan]]></UserID>", "<UserID></UserID>"),
        ("<UserID><![CDATA[zhangsan]]></UserID>", "<UserID><Item>a</Item></UserID>"),
    ],
)
def test_malformed_required_field_is_event_invalid(old, new):
    xml = load_event("change_external_contact.add_external_contact.xml").decode()
    assert old in xml
    with pytest.raises(EventInvalid):
        parse_event(xml.replace(old, new).encode())


# The longest value WeCom gives each field (docs/architecture.md, "Callback field limits"): one
# character more is refused at the callback, before anything is queued or written.
ADD = "change_external_contact.add_external_contact.xml"
LIMITS = [
    (ADD, "ToUserName", 64),
    (ADD, "FromUserName", 64),
    (ADD, "UserID", 64),
    (ADD, "ExternalUserID", 128),
    (ADD, "State", 30),
    (ADD, "WelcomeCode", 128),
    ("change_external_contact.del_external_contact.xml", "Source", 64),
    ("change_external_contact.transfer_fail.xml", "FailReason", 64),
    ("change_external_chat.create.xml", "ChatId", 128),
    ("change_external_chat.update.xml", "UpdateDetail", 64),
    ("change_external_chat.update.xml", "LastMemVer", 128),
    ("change_external_chat.update.xml", "CurMemVer", 128),
    ("change_external_chat.update.xml", "Item", 128),  # one member of MemChangeList
    ("change_external_tag.create.xml", "Id", 128),
    ("change_external_tag.create.xml", "TagType", 64),
    ("change_external_tag.shuffle.xml", "Id", 128),
]


def _with_value(name: str, tag: str, value: str) -> bytes:
    xml = load_event(name).decode()
    out, found = re.subn(rf"<{tag}>.*?</{tag}>", f"<{tag}><![CDATA[{value}]]></{tag}>", xml, count=1, flags=re.S)
    assert found == 1, tag
    return out.encode()


@pytest.mark.parametrize("name, tag, limit", LIMITS)
def test_values_longer_than_wecom_gives_are_event_invalid(name, tag, limit):
    assert parse_event(_with_value(name, tag, "a" * limit))  # the longest WeCom gives still parses
    with pytest.raises(EventInvalid) as info:
        parse_event(_with_value(name, tag, "a" * (limit + 1)))
    assert info.value.http_status == 400 and "too long" in str(info.value)


def test_a_3000_character_external_user_id_is_event_invalid():
    with pytest.raises(EventInvalid, match="ExternalUserID"):
        parse_event(_with_value(ADD, "ExternalUserID", "wm" + "x" * 2998))


def test_mem_change_list_longer_than_a_group_is_event_invalid():
    items = "".join(f"<Item>m{i}</Item>" for i in range(2001))
    xml = re.sub(r"<MemChangeList>.*?</MemChangeList>", f"<MemChangeList>{items}</MemChangeList>",
                 load_event("change_external_chat.update.xml").decode(), flags=re.S)
    with pytest.raises(EventInvalid):
        parse_event(xml.encode())


def test_event_from_dict_applies_the_same_limits():
    """A message queued before the limits existed cannot be rebuilt: the consumer dead-letters it."""
    data = parse_event(load_event(ADD)).to_dict()
    data["external_user_id"] = "wm" + "x" * 2998
    with pytest.raises(EventInvalid, match="external_user_id"):
        event_from_dict(data)


def test_xml_tag_named_like_a_python_field_is_not_read():
    xml = load_event("change_external_contact.add_external_contact.xml").decode()
    xml = xml.replace("UserID>", "user_id>", 2)
    with pytest.raises(EventInvalid):
        parse_event(xml.encode())


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param(b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>', id="entity"),
        pytest.param(b"<xml><A>1</A>", id="not-well-formed"),
        pytest.param(b"<root><A>1</A></root>", id="root-not-xml"),
        pytest.param(b"<xml><A>\xff</A></xml>", id="not-utf8"),
    ],
)
def test_parse_xml_rejects_hostile_or_broken_xml(xml):
    with pytest.raises(XmlInvalid):
        parse_xml(xml)


def test_parse_xml_size_limit():
    with pytest.raises(BodyTooLarge):
        parse_xml(b"<xml>" + b"a" * MAX_BODY_BYTES + b"</xml>")


def test_events_are_read_only():
    event = parse_event(load_event("change_external_contact.add_external_contact.xml"))
    with pytest.raises(ValidationError):
        event.user_id = "lisi"


# -- identity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_identity_is_stable_for_identical_input(name):
    first, retry = parse_event(load_event(name)), parse_event(load_event(name))
    assert first.identity() == retry.identity()
    assert re.fullmatch(r"[0-9a-f]{32}", first.identity())


def test_identity_ignores_xml_layout():
    xml = load_event("change_external_contact.add_external_contact.xml").decode()
    compact = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", xml).replace("\n", "")
    assert parse_event(compact.encode()).identity() == parse_event(xml.encode()).identity()


def test_identity_differs_between_samples():
    identities = {parse_event(load_event(name)).identity() for name in SAMPLES}
    assert len(identities) == len(SAMPLES)


@pytest.mark.parametrize(
    "name, old, new",
    [
        (
            "change_external_contact.add_external_contact.xml",
            "1716955000",
            "1716955001",
        ),
        ("change_external_contact.add_external_contact.xml", "zhangsan", "lisi"),
        (
            "change_external_contact.add_external_contact.xml",
            "Gi0mACAAAA",
            "Gi0mACAAAB",
        ),
        (
            "change_external_contact.add_external_contact.xml",
            CORP,
            "ww0000000000000000",
        ),
        ("change_external_chat.update.xml", "wrx7HUARsK", "wrx7HUARsL"),
        ("change_external_chat.update.xml", "add_member", "del_member"),
        ("change_external_chat.update.xml", "<Item><![CDATA[Jack]]></Item>", ""),
        ("change_external_chat.update.xml", "71217227bbd1", "71217227bbd2"),
        ("change_external_tag.create.xml", "etAJ2GCAAAAAtag1", "etAJ2GCAAAAAtag2"),
        ("change_external_tag.update.xml", "<StrategyId>1<", "<StrategyId>2<"),
    ],
)
def test_identity_differs_when_time_or_ids_differ(name, old, new):
    xml = load_event(name).decode()
    assert old in xml
    changed = parse_event(xml.replace(old, new).encode())
    assert changed.identity() != parse_event(xml.encode()).identity()


def test_identity_of_generic_events_uses_all_fields():
    other = TEXT_MESSAGE.replace(b"1456453720", b"1456453721")
    assert parse_event(TEXT_MESSAGE).identity() == parse_event(TEXT_MESSAGE).identity()
    assert parse_event(other).identity() != parse_event(TEXT_MESSAGE).identity()


def test_same_change_type_in_other_event_family_has_other_identity():
    chat = parse_event(load_event("change_external_chat.create.xml"))
    tag = parse_event(load_event("change_external_tag.create.xml"))
    assert chat.change_type == tag.change_type == "create"
    assert chat.identity() != tag.identity()


# -- dict round-trip -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_to_dict_round_trips(name):
    event = parse_event(load_event(name))
    data = event.to_dict()
    assert data["kind"] == type(event).KIND
    wire = json.loads(json.dumps(data))
    again = event_from_dict(wire)
    assert type(again) is type(event)
    assert again == event
    assert again.to_dict() == data
    assert again.identity() == event.identity()


def test_event_from_dict_rejects_unknown_kind():
    with pytest.raises(EventInvalid):
        event_from_dict({"kind": "nope"})
    with pytest.raises(EventInvalid):
        event_from_dict({"to_user_name": CORP})


def test_event_from_dict_rejects_missing_fields():
    data = parse_event(load_event("change_external_chat.create.xml")).to_dict()
    del data["chat_id"]
    with pytest.raises(EventInvalid):
        event_from_dict(data)


def test_kinds_are_unique_and_readable():
    kinds = [m.KIND for m in events._MODELS]
    assert len(set(kinds)) == len(kinds)
    assert "change_external_contact:add_external_contact" in kinds
    assert GenericEvent.KIND == "generic"


# -- the regex fast path agrees with ElementTree ---------------------------------------------------

FAST_PATH_CASES = [
    *(load_event(name) for name in SAMPLES),
    TEXT_MESSAGE,
    b"<xml></xml>",
    b"  <xml>\n</xml>\n",
    b"<xml><A></A><B><![CDATA[]]></B><C>\n</C><D> x > y </D></xml>",
    b"<xml><A><![CDATA[<b>&amp; ]] ] ]>]]></A></xml>",
    b"<xml><A><![CDATA[x]]]></A></xml>",
    b"<xml><A><![CDATA[x]]>junk]]></A></xml>",
    b"<xml><A><![CDATA[x]]>tail</A></xml>",
    b"<xml><A>a &amp; b</A></xml>",
    b"<xml><A>a ]]> b</A></xml>",
    b"<xml><A>a\r\nb</A></xml>",
    b"<xml><A><![CDATA[a\r\nb]]></A></xml>",
    b"<xml><A>\x01</A></xml>",
    b"<xml><A>\xef\xbf\xbe</A></xml>",
    b"<xml><A x='1'>v</A></xml>",
    b"<xml><A>v</B></xml>",
    b"<xml><A>v</A><A>w</A></xml>",
    b"<xml><a:b>v</a:b></xml>",
    b"<xml><A>1</A><!-- c --></xml>",
    b"<?xml version='1.0'?><xml><A>1</A></xml>",
    b"\xef\xbb\xbf<xml><A>1</A></xml>",
    b"<xml><A>\xff</A></xml>",
    b"<xml>text<A>1</A></xml>",
    b"<xml><A>1</A></xml><B/>",
    b"<xml><xml>1</xml></xml>",
    b"<XML><A>1</A></XML>",
    b"<xml><A>\xe4\xbd\xa0\xe5\xa5\xbd</A><B><![CDATA[\xe4\xbd\xa0]]></B></xml>",
    b"<xml>\x0c<A>1</A></xml>",
]


@pytest.mark.parametrize("xml", FAST_PATH_CASES)
def test_fast_path_agrees_with_elementtree(xml):
    # GIVEN any document, WHEN the fast path takes it, THEN it returns what ElementTree returns
    try:
        expected = events._element_fields(xml)
    except XmlInvalid:
        assert events._flat_fields(xml) is None
        with pytest.raises(XmlInvalid):
            parse_xml(xml)
        return
    fast = events._flat_fields(xml)
    assert fast is None or fast == expected
    assert parse_xml(xml) == expected


def test_fast_path_takes_wecom_shaped_events():
    assert events._flat_fields(load_event("change_external_contact.add_external_contact.xml"))
    assert events._flat_fields(TEXT_MESSAGE)
