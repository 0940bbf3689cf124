"""WeCom callback crypto (WXBizMsgCrypt), sans-I/O.

The protocol (wecom-api.md section 1, doc 91144 / 96466):

* ``AESKey = b64decode(EncodingAESKey + "=")`` (32 bytes), AES-256-CBC, ``IV = AESKey[:16]``.
* ``plaintext = random16 + struct.pack(">I", len(msg)) + msg + receive_id``, PKCS#7 padded to a
  multiple of **32** bytes, encrypted, base64-encoded.
* ``msg_signature = sha1("".join(sorted([token, timestamp, nonce, encrypt]))).hexdigest()``.

Nothing here does I/O, reads the environment or imports AWS code. pycryptodome is imported on the
first encryption/decryption, not at module import, so importing this module stays cheap.

Exception tree (one base, each subclass carries a stable ``code``, WeCom's ``ierror.py`` code and the
HTTP status the callback route should answer with)::

    CallbackRejected
    ├── SignatureInvalid     signature_invalid    -40001  401
    ├── TimestampInvalid     timestamp_invalid         0  400
    ├── XmlInvalid           xml_invalid          -40002  400
    ├── ReceiveIdMismatch    receive_id_mismatch  -40005  403
    ├── Base64Invalid        base64_invalid       -40010  400
    ├── DecryptFailed        decrypt_failed       -40007  400
    ├── BufferInvalid        buffer_invalid       -40008  400
    ├── BodyTooLarge         body_too_large            0  413
    └── MissingParameter     missing_parameter         0  400

The signature is checked before anything is decrypted, so the padding and length errors are not a
padding oracle: an attacker without the token never reaches them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = [
    "MAX_BODY_BYTES",
    "Base64Invalid",
    "BodyTooLarge",
    "BufferInvalid",
    "CallbackCrypto",
    "CallbackRejected",
    "DecryptFailed",
    "MissingParameter",
    "ReceiveIdMismatch",
    "SignatureInvalid",
    "TimestampInvalid",
    "XmlInvalid",
    "signature",
]

MAX_BODY_BYTES = 1_000_000
"""Largest callback body (and decrypted plaintext) accepted, in bytes."""

_BLOCK = 32  # WeCom's PKCS#7 block size (not AES's 16)
_AES_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# Any DTD (and with it any entity declaration) is refused before expat sees the document. The parser
# is forced to UTF-8, so these ASCII bytes are the only way to spell them.
_DTD_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class CallbackRejected(Exception):
    """A callback request that must not be processed. Base of every error in this module.

    ``code`` is stable (log and metric it), ``wecom_code`` is the matching WXBizMsgCrypt
    ``ierror.py`` code (0 when WeCom has none), ``http_status`` is what the route answers.
    Messages never contain secrets or decrypted content.
    """

    code: str = "callback_rejected"
    wecom_code: int = 0
    http_status: int = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.code)


class SignatureInvalid(CallbackRejected):
    code = "signature_invalid"
    wecom_code = -40001
    http_status = 401


class TimestampInvalid(CallbackRejected):
    code = "timestamp_invalid"


class XmlInvalid(CallbackRejected):
    code = "xml_invalid"
    wecom_code = -40002


class ReceiveIdMismatch(CallbackRejected):
    code = "receive_id_mismatch"
    wecom_code = -40005
    http_status = 403


class Base64Invalid(CallbackRejected):
    code = "base64_invalid"
    wecom_code = -40010


class DecryptFailed(CallbackRejected):
    code = "decrypt_failed"
    wecom_code = -40007


class BufferInvalid(CallbackRejected):
    code = "buffer_invalid"
    wecom_code = -40008


class BodyTooLarge(CallbackRejected):
    code = "body_too_large"
    http_status = 413


class MissingParameter(CallbackRejected):
    code = "missing_parameter"

    def __init__(self, parameter: str) -> None:
        super().__init__(f"missing query parameter: {parameter}")
        self.parameter = parameter


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's ``msg_signature``: sha1 hex of the four strings sorted and concatenated."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypt))).encode()).hexdigest()


def _check_xml(data: bytes) -> None:
    """Refuse what must never reach a parser: over ``MAX_BODY_BYTES``, any DTD, NUL bytes."""
    if len(data) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"XML over {MAX_BODY_BYTES} bytes")
    if _DTD_RE.search(data) or b"\x00" in data:
        raise XmlInvalid("DTD, entity declaration or NUL byte in XML")


def _xml_root(data: bytes, *, checked: bool = False) -> Element:
    """Parse untrusted XML safely; raise :class:`XmlInvalid` on anything suspicious.

    Refuses bodies over ``MAX_BODY_BYTES`` (:class:`BodyTooLarge`), any ``<!DOCTYPE``/``<!ENTITY``
    (so no entity expansion and no external entities), NUL bytes; the parser ignores the document's
    declared encoding and reads UTF-8 only (so a UTF-16 or EBCDIC document cannot hide a DTD from
    the byte check). Shared with ``events.parse_xml``. ``checked``: ``_check_xml`` already ran.
    """
    if not checked:
        _check_xml(data)
    from xml.etree.ElementTree import ParseError, XMLParser

    parser = XMLParser(encoding="utf-8")
    try:
        parser.feed(data)
        return parser.close()
    except ParseError as exc:
        raise XmlInvalid(f"XML not well-formed: {exc.code}") from None


# The envelope exactly as WeCom builds it. A body matching this whole pattern is well-formed XML
# without DTD, entities, comments or attributes, and group 1 is exactly what ElementTree would give
# as <Encrypt>'s text, so the parser is skipped (it costs ~6 us of a ~15 us callback). Anything
# else (other order, declaration, extra elements, odd characters) goes through ElementTree.
_WS = rb"[ \t\r\n]*"
_ENVELOPE_RE = re.compile(
    rb"%(ws)s<xml>%(ws)s"
    rb"(?:<ToUserName>(?:<!\[CDATA\[[A-Za-z0-9_-]*\]\]>|[A-Za-z0-9_-]*)</ToUserName>%(ws)s)?"
    rb"(?:<AgentID>(?:<!\[CDATA\[[0-9]*\]\]>|[0-9]*)</AgentID>%(ws)s)?"
    rb"<Encrypt>(?:<!\[CDATA\[([A-Za-z0-9+/=]+)\]\]>|([A-Za-z0-9+/=]+))</Encrypt>%(ws)s"
    rb"</xml>%(ws)s" % {b"ws": _WS}
)


def _required(**params: str | None) -> list[str]:
    """Return the values in order; raise MissingParameter for the first missing or empty one."""
    values = []
    for name, value in params.items():
        if not value:
            raise MissingParameter(name)
        values.append(value)
    return values


def _cdata(value: str) -> str:
    if "]]>" in value:
        raise ValueError("value cannot be placed in a CDATA section")
    return f"<![CDATA[{value}]]>"


class CallbackCrypto:
    """Verify, decrypt and encrypt WeCom callbacks for one receiver (corp id, suite id or "").

    Build once per (token, key, receive id) and reuse: the AES key schedule is cached.
    """

    __slots__ = (
        "_ecb",
        "_iv_int",
        "_key",
        "_receive_id",
        "_token",
        "max_skew_seconds",
        "receive_id",
    )

    def __init__(
        self,
        *,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        max_skew_seconds: int = 300,
    ) -> None:
        if not isinstance(encoding_aes_key, str) or not _AES_KEY_RE.fullmatch(encoding_aes_key):
            raise ValueError("EncodingAESKey must be 43 base64 characters")
        if not token:
            raise ValueError("token must not be empty")
        if max_skew_seconds < 0:
            raise ValueError("max_skew_seconds must be >= 0")
        self._key = base64.b64decode(encoding_aes_key + "=")
        self._token = token
        self.receive_id = receive_id
        self._receive_id = receive_id.encode()
        self.max_skew_seconds = max_skew_seconds
        self._ecb: Any = None
        self._iv_int = int.from_bytes(self._key[:16], "big")

    def __repr__(self) -> str:  # never show the token or the key
        return f"CallbackCrypto(receive_id={self.receive_id!r})"

    # -- low level -------------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, random16: bytes | None = None) -> str:
        """Encrypt ``plaintext`` for this receiver; return base64 text (what goes in ``<Encrypt>``)."""
        from Crypto.Cipher import AES

        if random16 is None:
            random16 = os.urandom(16)
        elif len(random16) != 16:
            raise ValueError("random16 must be 16 bytes")
        raw = random16 + struct.pack(">I", len(plaintext)) + plaintext + self._receive_id
        pad = _BLOCK - len(raw) % _BLOCK
        raw += bytes((pad,)) * pad
        cipher = AES.new(self._key, AES.MODE_CBC, self._key[:16])
        return base64.b64encode(cipher.encrypt(raw)).decode("ascii")

    def decrypt(self, encrypted: str) -> bytes:
        """Decrypt base64 ``encrypted``; check padding, length field and receive id; return the msg.

        Raises Base64Invalid, DecryptFailed, BufferInvalid or ReceiveIdMismatch. Does not check the
        signature: callers must do that first (``verify_url`` / ``decrypt_callback`` do).
        """
        try:
            data = binascii.a2b_base64(encrypted.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise Base64Invalid("Encrypt is not valid base64") from None
        size = len(data)
        if size == 0 or size % 16:
            raise DecryptFailed("ciphertext length is not a positive multiple of 16")
        ecb = self._ecb
        if ecb is None:
            from Crypto.Cipher import AES

            ecb = self._ecb = AES.new(self._key, AES.MODE_ECB)
        # CBC decryption as one ECB call plus one XOR with the previous blocks: the ECB object is
        # stateless, so it is built once per key, not once per message (2.5x faster than MODE_CBC).
        mask = (self._iv_int << (8 * (size - 16))) | int.from_bytes(data[:-16], "big")
        plain = (int.from_bytes(ecb.decrypt(data), "big") ^ mask).to_bytes(size, "big")
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes((pad,)) * pad:
            raise DecryptFailed("bad PKCS#7 padding")
        end = size - pad
        if end < 20:
            raise DecryptFailed("plaintext truncated")
        (length,) = struct.unpack_from(">I", plain, 16)
        if 20 + length > end:
            raise BufferInvalid("length field beyond decrypted buffer")
        if plain[20 + length : end] != self._receive_id:
            raise ReceiveIdMismatch("receive id in plaintext does not match")
        return plain[20 : 20 + length]

    # -- checks ----------------------------------------------------------------------------------

    def _check_timestamp(self, timestamp: str, now: float | None) -> None:
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise TimestampInvalid("timestamp is not an integer")
        if now is None:
            now = time.time()
        # Whole seconds on both sides: a timestamp exactly max_skew_seconds old is still inside.
        if abs(int(timestamp) - int(now)) > self.max_skew_seconds:
            raise TimestampInvalid("timestamp outside the allowed skew")

    def _check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self._token, timestamp, nonce, encrypt)
        if not msg_signature.isascii() or not hmac.compare_digest(expected, msg_signature):
            raise SignatureInvalid("msg_signature does not match")

    @staticmethod
    def _utf8(plain: bytes) -> bytes:
        try:
            plain.decode("utf-8")
        except UnicodeDecodeError:
            raise BufferInvalid("decrypted message is not UTF-8") from None
        return plain

    # -- requests --------------------------------------------------------------------------------

    def verify_url(
        self,
        *,
        msg_signature: str | None,
        timestamp: str | None,
        nonce: str | None,
        echostr: str | None,
        now: float | None = None,
    ) -> bytes:
        """GET URL verification: return the decrypted echostr, to answer as the raw body.

        Query values must already be URL-decoded. A space in ``echostr`` is read as ``+`` (base64
        never contains spaces; some stacks decode ``+`` in a query string to a space).
        """
        sig, ts, nonce_, echo = _required(
            msg_signature=msg_signature,
            timestamp=timestamp,
            nonce=nonce,
            echostr=echostr,
        )
        echo = echo.replace(" ", "+")
        self._check_timestamp(ts, now)
        self._check_signature(sig, ts, nonce_, echo)
        return self._utf8(self.decrypt(echo))

    def decrypt_callback(
        self,
        *,
        msg_signature: str | None,
        timestamp: str | None,
        nonce: str | None,
        body: bytes,
        now: float | None = None,
    ) -> bytes:
        """POST callback: return the decrypted plaintext XML (valid UTF-8).

        Checks, in this order: body size, query parameters present, timestamp skew, envelope XML
        (safe parse, ``<Encrypt>`` present), signature over Encrypt (constant time), base64,
        AES/padding, length field, receive id, UTF-8.
        """
        if isinstance(body, str):
            body = body.encode()
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"body over {MAX_BODY_BYTES} bytes")
        sig, ts, nonce_ = _required(msg_signature=msg_signature, timestamp=timestamp, nonce=nonce)
        self._check_timestamp(ts, now)
        encrypt = self._envelope_encrypt(body)
        self._check_signature(sig, ts, nonce_, encrypt)
        return self._utf8(self.decrypt(encrypt))

    @staticmethod
    def _envelope_encrypt(body: bytes) -> str:
        _check_xml(body)
        match = _ENVELOPE_RE.fullmatch(body)
        if match:
            return (match[1] or match[2]).decode("ascii")
        root = _xml_root(body, checked=True)
        node = root.find("Encrypt") if root.tag == "xml" else None
        text = node.text.strip() if node is not None and node.text else None  # base64 has no blanks
        if not text:
            raise XmlInvalid("envelope has no <Encrypt>")
        return text

    # -- what WeCom sends / what we answer -------------------------------------------------------

    def encrypt_callback(
        self, plaintext: bytes, *, timestamp: str, nonce: str, agent_id: str = ""
    ) -> tuple[dict[str, str], bytes]:
        """Build a callback as WeCom posts it: (query parameters, envelope XML body)."""
        encrypt = self.encrypt(plaintext)
        query = {
            "msg_signature": signature(self._token, timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName>{_cdata(self.receive_id)}</ToUserName>"
            f"<AgentID>{_cdata(agent_id)}</AgentID>"
            f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
        )
        return query, body.encode()

    def encrypt_reply(self, plaintext: bytes, *, timestamp: str, nonce: str) -> bytes:
        """Passive reply envelope ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``."""
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise ValueError("timestamp must be an integer string")
        encrypt = self.encrypt(plaintext)
        sig = signature(self._token, timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt>{_cdata(encrypt)}</Encrypt>"
            f"<MsgSignature>{_cdata(sig)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
        ).encode()
