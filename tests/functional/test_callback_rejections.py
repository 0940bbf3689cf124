"""Bad callbacks get a clear 4xx and change nothing: no queue message, no table write.

One test per hostile case, through the real route (chalice's test client on moto).
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from urllib.parse import urlencode

import pytest

from tests.helpers import AES_KEY, CORP_ID, TOKEN, contact_xml, crypto_for, register

KEY = base64.b64decode(AES_KEY + "=")


def _raw_encrypt(plain: bytes, *, pad_to: int = 32, pad_byte: int | None = None) -> str:
    from Crypto.Cipher import AES

    pad = pad_to - len(plain) % pad_to
    value = pad if pad_byte is None else pad_byte
    data = plain + bytes((value,)) * pad
    return base64.b64encode(AES.new(KEY, AES.MODE_CBC, KEY[:16]).encrypt(data)).decode()


def _frame(msg: bytes, receive_id: bytes = CORP_ID.encode()) -> bytes:
    return os.urandom(16) + struct.pack(">I", len(msg)) + msg + receive_id


def _signed(encrypt: str, *, ts: int | None = None, token: str = TOKEN) -> tuple[dict, bytes]:
    from chalicelib.wecom.crypto import signature

    ts_s = str(int(time.time()) if ts is None else ts)
    query = {"msg_signature": signature(token, ts_s, "n0nce", encrypt), "timestamp": ts_s, "nonce": "n0nce"}
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return query, body.encode()


def _good() -> tuple[dict, bytes]:
    params, body = crypto_for().encrypt_callback(contact_xml(), timestamp=str(int(time.time())), nonce="abc")
    return params, body


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b"<xml><Encrypt>&lol2;</Encrypt></xml>")


def case_wrong_signature():
    q, b = _good()
    q["msg_signature"] = "0" * 40
    return q, b


def case_missing_signature():
    q, b = _good()
    del q["msg_signature"]
    return q, b


def case_missing_timestamp():
    q, b = _good()
    del q["timestamp"]
    return q, b


def case_missing_nonce():
    q, b = _good()
    del q["nonce"]
    return q, b


def case_old_timestamp():
    return _signed(crypto_for().encrypt(contact_xml()), ts=int(time.time()) - 301)


def case_future_timestamp():
    return _signed(crypto_for().encrypt(contact_xml()), ts=int(time.time()) + 360)  # margin: a slow CI run


def case_wrong_corp_in_plaintext():
    return _signed(_raw_encrypt(_frame(contact_xml(), b"wwSomeOtherCorp")))


def case_bad_base64():
    return _signed("this is not base64!!")


def case_bad_padding_zero():
    return _signed(_raw_encrypt(_frame(contact_xml()), pad_byte=0))


def case_bad_padding_33():
    return _signed(_raw_encrypt(_frame(contact_xml()), pad_byte=33))


def case_truncated_ciphertext():
    full = base64.b64decode(crypto_for().encrypt(contact_xml()))
    return _signed(base64.b64encode(full[:-7]).decode())


def case_truncated_whole_blocks():
    full = base64.b64decode(crypto_for().encrypt(contact_xml()))
    return _signed(base64.b64encode(full[:32]).decode())


def case_doctype_envelope():
    q, _ = _good()
    return q, BILLION_LAUGHS


def case_doctype_plaintext():
    return _signed(crypto_for().encrypt(BILLION_LAUGHS))


def case_external_entity_plaintext():
    xml = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b"<xml><ToUserName>&e;</ToUserName></xml>")
    return _signed(crypto_for().encrypt(xml))


def case_body_over_1mb():
    q, _ = _good()
    return q, b"<xml><Encrypt>" + b"A" * 1_000_001 + b"</Encrypt></xml>"


def case_non_utf8_plaintext():
    return _signed(crypto_for().encrypt(b"<xml>\xff\xfe\xfa</xml>"))


def case_length_field_beyond_buffer():
    msg = contact_xml()
    framed = os.urandom(16) + struct.pack(">I", len(msg) + 500) + msg + CORP_ID.encode()
    return _signed(_raw_encrypt(framed))


def case_not_xml_envelope():
    q, _ = _good()
    return q, b'{"Encrypt": "json is not what WeCom sends"}'


def case_event_missing_fields():
    xml = (f"<xml><ToUserName>{CORP_ID}</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"
           "<Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType></xml>").encode()
    return _signed(crypto_for().encrypt(xml))


def case_create_time_in_milliseconds():
    return _signed(crypto_for().encrypt(contact_xml(create_time=int(time.time() * 1000))))


def case_create_time_in_the_future():
    return _signed(crypto_for().encrypt(contact_xml(create_time=int(time.time()) + 3600)))



def case_external_user_id_3000_chars():
    return _signed(crypto_for().encrypt(contact_xml(customer="wm" + "x" * 2998)))


def case_user_id_too_long():
    return _signed(crypto_for().encrypt(contact_xml(staff="u" * 65)))


def case_state_too_long():
    return _signed(crypto_for().encrypt(contact_xml(state="s" * 31)))


def case_chat_id_too_long():
    xml = (f"<xml><ToUserName>{CORP_ID}</ToUserName><CreateTime>{int(time.time())}</CreateTime>"
           "<MsgType>event</MsgType><Event>change_external_chat</Event><ChangeType>create</ChangeType>"
           f"<ChatId>wr{'c' * 127}</ChatId></xml>").encode()
    return _signed(crypto_for().encrypt(xml))



def case_deeply_nested_envelope():
    q, _ = _good()
    return q, b"<xml>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</xml>"


CASES = {
    name[5:]: fn for name, fn in globals().items() if name.startswith("case_") and callable(fn)
}
EXPECTED = {
    "wrong_signature": (401, "signature_invalid"),
    "missing_signature": (400, "missing_parameter"),
    "missing_timestamp": (400, "missing_parameter"),
    "missing_nonce": (400, "missing_parameter"),
    "old_timestamp": (400, "timestamp_invalid"),
    "future_timestamp": (400, "timestamp_invalid"),
    "wrong_corp_in_plaintext": (403, "receive_id_mismatch"),
    "bad_base64": (400, "base64_invalid"),
    "bad_padding_zero": (400, "decrypt_failed"),
    "bad_padding_33": (400, "decrypt_failed"),
    "truncated_ciphertext": (400, "decrypt_failed"),
    "truncated_whole_blocks": (400, "decrypt_failed"),
    "doctype_envelope": (400, "xml_invalid"),
    "doctype_plaintext": (400, "xml_invalid"),
    "external_entity_plaintext": (400, "xml_invalid"),
    "body_over_1mb": (413, "body_too_large"),
    "non_utf8_plaintext": (400, "buffer_invalid"),
    "length_field_beyond_buffer": (400, "buffer_invalid"),
    "not_xml_envelope": (400, "xml_invalid"),
    "event_missing_fields": (400, "event_invalid"),
    "create_time_in_milliseconds": (400, "event_invalid"),
    "create_time_in_the_future": (400, "event_invalid"),
    "external_user_id_3000_chars": (400, "event_invalid"),
    "user_id_too_long": (400, "event_invalid"),
    "state_too_long": (400, "event_invalid"),
    "chat_id_too_long": (400, "event_invalid"),
    "deeply_nested_envelope": (400, "xml_invalid"),
}


def _table_count(settings) -> int:
    from chalicelib.platform import aws

    return aws.client("dynamodb").scan(TableName=settings.table_name, Select="COUNT")["Count"]


def _queued(settings) -> int:
    from chalicelib.platform import queues

    return queues.depth(settings.events_queue).visible


def test_every_case_has_an_expectation():
    assert set(CASES) == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_rejected_with_4xx_and_nothing_changes(case, chalice_client, aws):
    register(chalice_client)
    before = _table_count(aws)
    query, body = CASES[case]()
    resp = chalice_client.http.post(f"/wecom/{CORP_ID}/callback?{urlencode(query)}", body=body,
                                    headers={"Content-Type": "application/xml"})
    status, code = EXPECTED[case]
    assert resp.status_code == status, resp.body
    assert json.loads(resp.body)["error"]["code"] == code
    assert _queued(aws) == 0
    assert _table_count(aws) == before


def test_unknown_corp_is_404_and_nothing_changes(chalice_client, aws):
    query, body = _good()
    resp = chalice_client.http.post(f"/wecom/wwNotRegistered/callback?{urlencode(query)}", body=body,
                                    headers={"Content-Type": "text/xml"})
    assert resp.status_code == 404
    assert json.loads(resp.body)["error"]["code"] == "unknown_corp"
    assert _queued(aws) == 0 and _table_count(aws) == 0


@pytest.mark.parametrize("content_type", ["text/xml", "application/xml", "application/json",
                                          "text/plain;charset=utf-8", "application/octet-stream"])
def test_any_content_type_is_accepted(content_type, chalice_client, aws):
    register(chalice_client)
    query, body = _good()
    resp = chalice_client.http.post(f"/wecom/{CORP_ID}/callback?{urlencode(query)}", body=body,
                                    headers={"Content-Type": content_type})
    assert resp.status_code == 200 and resp.body == b""
    assert _queued(aws) == 1


def test_url_verification_answers_the_echostr_and_nothing_else(chalice_client, aws):
    from chalicelib.wecom.crypto import signature

    register(chalice_client)
    echostr = crypto_for().encrypt(b"1288432023552776189")
    ts = str(int(time.time()))
    query = urlencode({"msg_signature": signature(TOKEN, ts, "nonce1", echostr), "timestamp": ts,
                       "nonce": "nonce1", "echostr": echostr})
    resp = chalice_client.http.get(f"/wecom/{CORP_ID}/callback?{query}")
    assert resp.status_code == 200
    assert resp.body == b"1288432023552776189"
    bad = chalice_client.http.get(f"/wecom/{CORP_ID}/callback?{query.replace('nonce=nonce1', 'nonce=other')}")
    assert bad.status_code == 401


@pytest.mark.parametrize("corp_id", ["x" * 3000, "bad%20id", "a.b"])
def test_malformed_corp_ids_are_404_not_500(corp_id, chalice_client, aws):
    query, body = _good()
    resp = chalice_client.http.post(f"/wecom/{corp_id}/callback?{urlencode(query)}", body=body)
    assert resp.status_code == 404
    assert chalice_client.http.get(f"/api/v1/corps/{corp_id}", headers={
        "Authorization": "Bearer admin-test-key"}).status_code == 404
