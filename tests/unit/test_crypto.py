"""chalicelib.wecom.crypto: published vectors, wechatpy interop, one test per hostile input."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.wecom import crypto
from chalicelib.wecom.crypto import (
    MAX_BODY_BYTES,
    Base64Invalid,
    BodyTooLarge,
    BufferInvalid,
    CallbackCrypto,
    CallbackRejected,
    DecryptFailed,
    MissingParameter,
    ReceiveIdMismatch,
    SignatureInvalid,
    TimestampInvalid,
    XmlInvalid,
    signature,
)

# Published WeCom sample (wecom-api.md section 7). The token is ours: the sample's signatures
# match no known token.
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
TOKEN = "QDG6eK"
ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
ECHO_PLAIN = b"1288432023552776189"
ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtR"
    "LNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y"
    "9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6i"
    "ELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
ENCRYPT_PLAIN = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
).encode()

NOW = 1_716_955_000
TS = str(NOW)
NONCE = "1372623149"
EVENT_XML = (
    Path(__file__).parents[1] / "events" / "wecom" / "change_external_contact.add_external_contact.xml"
)


@pytest.fixture
def cc() -> CallbackCrypto:
    return CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)


def assert_rejected(
    exc: BaseException,
    cls: type[CallbackRejected],
    code: str,
    status: int,
    wecom_code: int,
) -> None:
    assert type(exc) is cls
    assert isinstance(exc, CallbackRejected)
    assert (exc.code, exc.http_status, exc.wecom_code) == (code, status, wecom_code)


def envelope(encrypt: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()


def post(cc: CallbackCrypto, encrypt: str, *, body: bytes | None = None, **query: str | None):
    """GIVEN an Encrypt value signed with our token, WHEN posted, THEN what decrypt_callback does."""
    params: dict[str, str | None] = {
        "msg_signature": signature(TOKEN, TS, NONCE, encrypt),
        "timestamp": TS,
        "nonce": NONCE,
    }
    params.update(query)
    return cc.decrypt_callback(**params, body=envelope(encrypt) if body is None else body, now=NOW)


def raw_encrypt(raw: bytes) -> str:
    """AES-256-CBC over already padded bytes, to forge broken plaintexts."""
    from Crypto.Cipher import AES

    key = base64.b64decode(AES_KEY + "=")
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(raw)).decode()


def frame(msg: bytes, receive_id: bytes = CORP_ID.encode(), length: int | None = None) -> bytes:
    return b"R" * 16 + struct.pack(">I", len(msg) if length is None else length) + msg + receive_id


def pkcs7(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


# -- published vectors ---------------------------------------------------------------------------


def test_published_echostr_vector_decrypts(cc):
    assert cc.decrypt(ECHOSTR) == ECHO_PLAIN


def test_published_message_vector_decrypts(cc):
    assert cc.decrypt(ENCRYPT) == ENCRYPT_PLAIN


def test_encrypt_reproduces_published_vectors_with_their_random_prefix(cc):
    assert cc.encrypt(ECHO_PLAIN, random16=b"8908d0ff052afda0") == ECHOSTR
    assert cc.encrypt(ENCRYPT_PLAIN, random16=b"694ce5a83ae07fe3") == ENCRYPT


def test_verify_url_returns_raw_plaintext(cc):
    sig = signature(TOKEN, TS, NONCE, ECHOSTR)
    got = cc.verify_url(msg_signature=sig, timestamp=TS, nonce=NONCE, echostr=ECHOSTR, now=NOW)
    assert got == ECHO_PLAIN


def test_verify_url_reads_space_as_plus(cc):
    sig = signature(TOKEN, TS, NONCE, ECHOSTR)
    spaced = ECHOSTR.replace("+", " ")
    got = cc.verify_url(msg_signature=sig, timestamp=TS, nonce=NONCE, echostr=spaced, now=NOW)
    assert got == ECHO_PLAIN


def test_decrypt_callback_published_vector(cc):
    assert post(cc, ENCRYPT) == ENCRYPT_PLAIN


def test_signature_is_sha1_of_sorted_strings():
    import hashlib

    expected = hashlib.sha1("".join(sorted([TOKEN, TS, NONCE, ENCRYPT])).encode()).hexdigest()
    assert signature(TOKEN, TS, NONCE, ENCRYPT) == expected
    assert signature(NONCE, ENCRYPT, TOKEN, TS) == expected  # order does not matter


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 39, 40, 41, 1000])
def test_round_trip_across_padding_boundaries(cc, size):
    msg = bytes(range(97, 123)) * 40
    msg = msg[:size]
    assert cc.decrypt(cc.encrypt(msg)) == msg


def test_encrypt_callback_round_trip(cc):
    plaintext = EVENT_XML.read_bytes()
    query, body = cc.encrypt_callback(plaintext, timestamp=TS, nonce=NONCE, agent_id="1000002")
    assert set(query) == {"msg_signature", "timestamp", "nonce"}
    assert body.startswith(b"<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>")
    assert cc.decrypt_callback(**query, body=body, now=NOW) == plaintext


@pytest.mark.parametrize("layout", [
    "<xml><Encrypt><![CDATA[{e}]]></Encrypt></xml>",  # no ToUserName / AgentID
    "\ufeff<xml><Encrypt>{e}</Encrypt></xml>",  # UTF-8 byte order mark, no CDATA
    '<?xml version="1.0" encoding="UTF-8"?>\n<xml><Encrypt><![CDATA[{e}]]></Encrypt></xml>',
    "<xml><Encrypt><![CDATA[{e}]]></Encrypt><ToUserName><![CDATA[x]]></ToUserName><AgentID>1</AgentID></xml>",
    # the passive-reply layout of WeCom's official samples, which some senders reuse for callbacks
    "<xml>\n<Encrypt><![CDATA[{e}]]></Encrypt>\n<MsgSignature><![CDATA[s]]></MsgSignature>\n"
    "<TimeStamp>1</TimeStamp>\n<Nonce><![CDATA[n]]></Nonce>\n</xml>",
    "<xml>\r\n  <ToUserName><![CDATA[x]]></ToUserName>\r\n  <Encrypt>\r\n    {e}\r\n  </Encrypt>\r\n</xml>",
], ids=["minimal", "bom", "declaration", "reordered", "reply-layout", "indented"])
def test_envelopes_laid_out_by_other_senders(cc, layout):
    plaintext = EVENT_XML.read_bytes()
    encrypt = cc.encrypt(plaintext)
    assert post(cc, encrypt, body=layout.format(e=encrypt).encode()) == plaintext


def test_encrypt_reply_envelope(cc):
    from xml.etree.ElementTree import fromstring

    root = fromstring(cc.encrypt_reply(b"<xml/>", timestamp=TS, nonce=NONCE))
    assert [child.tag for child in root] == [
        "Encrypt",
        "MsgSignature",
        "TimeStamp",
        "Nonce",
    ]
    encrypt = root.findtext("Encrypt")
    assert root.findtext("MsgSignature") == signature(TOKEN, TS, NONCE, encrypt)
    assert cc.decrypt(encrypt) == b"<xml/>"


# -- interop with wechatpy -----------------------------------------------------------------------


@pytest.fixture
def wechatpy_crypto():
    mod = pytest.importorskip("wechatpy.enterprise.crypto")
    return mod.WeChatCrypto(TOKEN, AES_KEY, CORP_ID)


def test_we_decrypt_what_wechatpy_encrypts(cc, wechatpy_crypto):
    plaintext = EVENT_XML.read_text()
    body = wechatpy_crypto.encrypt_message(plaintext, NONCE, TS)
    from xml.etree.ElementTree import fromstring

    sig = fromstring(body).findtext("MsgSignature")
    got = cc.decrypt_callback(msg_signature=sig, timestamp=TS, nonce=NONCE, body=body.encode(), now=NOW)
    assert got == plaintext.encode()


def test_wechatpy_decrypts_what_we_encrypt(cc, wechatpy_crypto):
    plaintext = EVENT_XML.read_bytes()
    query, body = cc.encrypt_callback(plaintext, timestamp=TS, nonce=NONCE, agent_id="1000002")
    got = wechatpy_crypto.decrypt_message(body, query["msg_signature"], TS, NONCE)
    assert got == plaintext.decode()
    reply = cc.encrypt_reply(plaintext, timestamp=TS, nonce=NONCE)
    from xml.etree.ElementTree import fromstring

    sig = fromstring(reply).findtext("MsgSignature")
    assert wechatpy_crypto.decrypt_message(reply, sig, TS, NONCE) == plaintext.decode()


def test_wechatpy_verifies_our_url_echo(cc, wechatpy_crypto):
    echostr = cc.encrypt(b"8329743091")
    sig = signature(TOKEN, TS, NONCE, echostr)
    assert wechatpy_crypto.check_signature(sig, TS, NONCE, echostr) == "8329743091"


# -- construction --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [AES_KEY[:-1], AES_KEY + "A", AES_KEY[:-1] + "=", AES_KEY[:-1] + "-", ""])
def test_malformed_aes_key_is_value_error(key):
    with pytest.raises(ValueError):
        CallbackCrypto(token=TOKEN, encoding_aes_key=key, receive_id=CORP_ID)


def test_empty_token_is_value_error():
    with pytest.raises(ValueError):
        CallbackCrypto(token="", encoding_aes_key=AES_KEY, receive_id=CORP_ID)


def test_repr_hides_secrets(cc):
    assert TOKEN not in repr(cc) and AES_KEY not in repr(cc)


def test_module_import_does_not_load_pycryptodome():
    code = "import sys, chalicelib.wecom.crypto; sys.exit('Crypto' in sys.modules)"
    root = Path(__file__).parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


# -- hostile inputs ------------------------------------------------------------------------------


def test_wrong_signature(cc):
    with pytest.raises(SignatureInvalid) as info:
        post(cc, ENCRYPT, msg_signature="0" * 40)
    assert_rejected(info.value, SignatureInvalid, "signature_invalid", 401, -40001)


def test_signature_from_another_token(cc):
    with pytest.raises(SignatureInvalid):
        post(cc, ENCRYPT, msg_signature=signature("other", TS, NONCE, ENCRYPT))


def test_non_ascii_signature_is_rejected_not_type_error(cc):
    with pytest.raises(SignatureInvalid):
        post(cc, ENCRYPT, msg_signature="签名" * 20)


def test_wrong_signature_on_url_verification(cc):
    with pytest.raises(SignatureInvalid) as info:
        cc.verify_url(msg_signature="0" * 40, timestamp=TS, nonce=NONCE, echostr=ECHOSTR, now=NOW)
    assert_rejected(info.value, SignatureInvalid, "signature_invalid", 401, -40001)


@pytest.mark.parametrize("name", ["msg_signature", "timestamp", "nonce"])
@pytest.mark.parametrize("value", [None, ""])
def test_missing_query_parameter_on_post(cc, name, value):
    with pytest.raises(MissingParameter) as info:
        post(cc, ENCRYPT, **{name: value})
    assert_rejected(info.value, MissingParameter, "missing_parameter", 400, 0)
    assert info.value.parameter == name


@pytest.mark.parametrize("name", ["msg_signature", "timestamp", "nonce", "echostr"])
@pytest.mark.parametrize("value", [None, ""])
def test_missing_query_parameter_on_url_verification(cc, name, value):
    params = {
        "msg_signature": signature(TOKEN, TS, NONCE, ECHOSTR),
        "timestamp": TS,
        "nonce": NONCE,
        "echostr": ECHOSTR,
    }
    params[name] = value
    with pytest.raises(MissingParameter) as info:
        cc.verify_url(**params, now=NOW)
    assert_rejected(info.value, MissingParameter, "missing_parameter", 400, 0)
    assert info.value.parameter == name


@pytest.mark.parametrize("offset", [-301, 301, -100_000, 100_000])
def test_timestamp_outside_skew(cc, offset):
    ts = str(NOW + offset)
    with pytest.raises(TimestampInvalid) as info:
        post(
            cc,
            ENCRYPT,
            timestamp=ts,
            msg_signature=signature(TOKEN, ts, NONCE, ENCRYPT),
        )
    assert_rejected(info.value, TimestampInvalid, "timestamp_invalid", 400, 0)


@pytest.mark.parametrize("offset", [-300, 0, 300])
@pytest.mark.parametrize("fraction", [0.0, 0.9])  # our clock between two whole seconds
def test_timestamp_inside_skew(cc, offset, fraction):
    ts = str(NOW + offset)
    params = {"msg_signature": signature(TOKEN, ts, NONCE, ENCRYPT), "timestamp": ts, "nonce": NONCE}
    got = cc.decrypt_callback(**params, body=envelope(ENCRYPT), now=NOW + fraction)
    assert got == ENCRYPT_PLAIN


@pytest.mark.parametrize("ts", ["abc", "-1716955000", "1716955000.0", " 1716955000", "１７１６"])
def test_timestamp_not_an_integer(cc, ts):
    with pytest.raises(TimestampInvalid) as info:
        post(
            cc,
            ENCRYPT,
            timestamp=ts,
            msg_signature=signature(TOKEN, ts, NONCE, ENCRYPT),
        )
    assert_rejected(info.value, TimestampInvalid, "timestamp_invalid", 400, 0)


def test_timestamp_checked_on_url_verification(cc):
    ts = str(NOW - 301)
    sig = signature(TOKEN, ts, NONCE, ECHOSTR)
    with pytest.raises(TimestampInvalid):
        cc.verify_url(msg_signature=sig, timestamp=ts, nonce=NONCE, echostr=ECHOSTR, now=NOW)


def test_wrong_receive_id_in_plaintext(cc):
    other = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id="wwffffffffffffffff")
    with pytest.raises(ReceiveIdMismatch) as info:
        post(cc, other.encrypt(b"<xml/>"))
    assert_rejected(info.value, ReceiveIdMismatch, "receive_id_mismatch", 403, -40005)


def test_empty_receive_id_in_plaintext_is_a_mismatch(cc):
    with pytest.raises(ReceiveIdMismatch):
        post(cc, raw_encrypt(pkcs7(frame(b"<xml/>", receive_id=b""))))


@pytest.mark.parametrize("encrypt", ["not base64!!", "QUI", "QUI=QUI=", "QU\nJD", "中文"])
def test_bad_base64(cc, encrypt):
    with pytest.raises(Base64Invalid) as info:
        post(cc, encrypt)
    assert_rejected(info.value, Base64Invalid, "base64_invalid", 400, -40010)


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x00", id="pad-byte-0"),
        pytest.param(b"\x21", id="pad-byte-33"),
        pytest.param(b"\x05\x05\x05\x04\x05", id="inconsistent"),
        pytest.param(b"\x20", id="claims-32-has-1"),
    ],
)
def test_bad_padding(cc, tail):
    body = frame(b"<xml/>")
    raw = body + b"X" * (64 - len(body) - len(tail)) + tail
    with pytest.raises(DecryptFailed) as info:
        post(cc, raw_encrypt(raw))
    assert_rejected(info.value, DecryptFailed, "decrypt_failed", 400, -40007)


def test_truncated_ciphertext(cc):
    # GIVEN a valid ciphertext with its last 16-byte block cut off: CBC still decrypts the rest,
    # which now ends inside the receive id instead of in padding.
    full = base64.b64decode(cc.encrypt(b"<xml>hello</xml>", random16=b"R" * 16))
    truncated = base64.b64encode(full[:-16]).decode()
    with pytest.raises(DecryptFailed) as info:
        post(cc, truncated)
    assert_rejected(info.value, DecryptFailed, "decrypt_failed", 400, -40007)


def test_plaintext_shorter_than_header(cc):
    with pytest.raises(DecryptFailed) as info:
        post(cc, raw_encrypt(b"R" * 15 + b"\x01"))
    assert_rejected(info.value, DecryptFailed, "decrypt_failed", 400, -40007)


@pytest.mark.parametrize("size", [15, 40, 17])
def test_ciphertext_not_multiple_of_16(cc, size):
    with pytest.raises(DecryptFailed) as info:
        post(cc, base64.b64encode(b"\x01" * size).decode())
    assert_rejected(info.value, DecryptFailed, "decrypt_failed", 400, -40007)


def test_length_field_larger_than_buffer(cc):
    with pytest.raises(BufferInvalid) as info:
        post(cc, raw_encrypt(pkcs7(frame(b"<xml/>", length=10_000))))
    assert_rejected(info.value, BufferInvalid, "buffer_invalid", 400, -40008)


def test_length_field_covering_receive_id_is_a_mismatch(cc):
    msg = b"<xml/>"
    with pytest.raises(ReceiveIdMismatch):
        post(cc, raw_encrypt(pkcs7(frame(msg, length=len(msg) + 3))))


def test_non_utf8_plaintext(cc):
    with pytest.raises(BufferInvalid) as info:
        post(cc, cc.encrypt(b"<xml>\xff\xfe</xml>"))
    assert_rejected(info.value, BufferInvalid, "buffer_invalid", 400, -40008)


def test_non_utf8_echostr(cc):
    echostr = cc.encrypt(b"\xc3\x28")
    sig = signature(TOKEN, TS, NONCE, echostr)
    with pytest.raises(BufferInvalid):
        cc.verify_url(msg_signature=sig, timestamp=TS, nonce=NONCE, echostr=echostr, now=NOW)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
    b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>'
)
EXTERNAL_ENTITY = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize(
    "prolog, ref",
    [
        pytest.param(BILLION_LAUGHS, "&e;", id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, "&x;", id="external-entity"),
        pytest.param(b"<!DOCTYPE xml>", "", id="bare-doctype"),
        pytest.param(b"<!doctype xml>", "", id="lowercase-doctype"),
    ],
)
def test_dtd_in_envelope(cc, prolog, ref):
    body = prolog + f"<xml><Encrypt><![CDATA[{ENCRYPT}]]></Encrypt><X>{ref}</X></xml>".encode()
    with pytest.raises(XmlInvalid) as info:
        post(cc, ENCRYPT, body=body)
    assert_rejected(info.value, XmlInvalid, "xml_invalid", 400, -40002)


def test_utf16_envelope_cannot_hide_a_dtd(cc):
    body = (EXTERNAL_ENTITY.decode() + f"<xml><Encrypt>{ENCRYPT}</Encrypt></xml>").replace(
        'version="1.0"', 'version="1.0" encoding="UTF-16"'
    )
    with pytest.raises(XmlInvalid):
        post(cc, ENCRYPT, body=body.encode("utf-16"))


@pytest.mark.parametrize(
    "prolog, ref",
    [
        pytest.param(BILLION_LAUGHS, "&e;", id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, "&x;", id="external-entity"),
    ],
)
def test_dtd_in_plaintext(cc, prolog, ref):
    # decrypt_callback returns authenticated bytes; the event parser refuses the DTD.
    from chalicelib.wecom.events import parse_event

    plaintext = prolog + f"<xml><Event>x</Event><Content>{ref}</Content></xml>".encode()
    got = post(cc, cc.encrypt(plaintext))
    with pytest.raises(XmlInvalid) as info:
        parse_event(got)
    assert_rejected(info.value, XmlInvalid, "xml_invalid", 400, -40002)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<xml><Encrypt>abc</Encrypt>", id="unclosed"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<xml><ToUserName>ww</ToUserName></xml>", id="no-encrypt"),
        pytest.param(b"<xml><Encrypt></Encrypt></xml>", id="empty-encrypt"),
        pytest.param(f"<other><Encrypt>{ENCRYPT}</Encrypt></other>".encode(), id="wrong-root"),
        pytest.param(b"<xml>\x00</xml>", id="nul"),
    ],
)
def test_bad_envelope(cc, body):
    with pytest.raises(XmlInvalid) as info:
        post(cc, ENCRYPT, body=body)
    assert_rejected(info.value, XmlInvalid, "xml_invalid", 400, -40002)


@pytest.mark.parametrize(
    "body",
    [
        envelope(ENCRYPT),
        f"<xml><Encrypt>{ENCRYPT}</Encrypt></xml>".encode(),
        f" <xml>\n <ToUserName>ww1</ToUserName>\n <AgentID>1</AgentID>\n"
        f" <Encrypt><![CDATA[{ENCRYPT}]]></Encrypt>\n</xml>\n".encode(),
        f"<xml><Encrypt><![CDATA[{ENCRYPT}]]></Encrypt><MsgSignature>x</MsgSignature></xml>".encode(),
        f"<?xml version='1.0'?><xml><Encrypt>{ENCRYPT}</Encrypt></xml>".encode(),
        f"<xml><ToUserName>a&amp;b</ToUserName><Encrypt>{ENCRYPT}</Encrypt></xml>".encode(),
        f"<xml><Encrypt>{ENCRYPT[:10]}&#65;{ENCRYPT[10:]}</Encrypt></xml>".encode(),
        f"<xml><Encrypt><![CDATA[{ENCRYPT}]]>x</Encrypt></xml>".encode(),
    ],
)
def test_envelope_fast_path_agrees_with_elementtree(body):
    root = crypto._xml_root(body)
    expected = root.findtext("Encrypt")
    assert crypto.CallbackCrypto._envelope_encrypt(body) == expected


def test_body_over_one_megabyte(cc):
    body = envelope(ENCRYPT) + b" " * MAX_BODY_BYTES
    with pytest.raises(BodyTooLarge) as info:
        post(cc, ENCRYPT, body=body)
    assert_rejected(info.value, BodyTooLarge, "body_too_large", 413, 0)


# -- order of checks -----------------------------------------------------------------------------


def test_size_is_checked_before_parameters(cc):
    with pytest.raises(BodyTooLarge):
        post(cc, ENCRYPT, body=b"x" * (MAX_BODY_BYTES + 1), msg_signature=None)


def test_timestamp_is_checked_before_envelope_and_signature(cc):
    with pytest.raises(TimestampInvalid):
        post(cc, ENCRYPT, body=b"<xml", timestamp="1", msg_signature="bad")


def test_envelope_is_checked_before_signature(cc):
    with pytest.raises(XmlInvalid):
        post(cc, ENCRYPT, body=b"<xml", msg_signature="bad")


def test_signature_is_checked_before_base64_and_aes(cc):
    with pytest.raises(SignatureInvalid):
        post(cc, "not base64!!", msg_signature="0" * 40)


def test_exceptions_share_one_base():
    for name in crypto.__all__:
        obj = getattr(crypto, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, CallbackRejected)
