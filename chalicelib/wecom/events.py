"""Decrypted WeCom callback XML -> typed, read-only events.

``parse_event(plaintext)`` parses the XML safely (``parse_xml``) and picks the model registered for
``(Event, ChangeType)``; anything it does not know becomes a ``GenericEvent`` holding every raw field,
so a new WeCom event never crashes the callback. A known event missing one of its ids raises
``EventInvalid`` (HTTP 400).

Models (wecom-api.md section 2; doc 92130 self-built app, 92277 third-party)::

    CallbackEvent
    ├── ExternalContactEvent   change_external_contact  (doc 92130)
    │   ├── AddExternalContact, EditExternalContact, AddHalfExternalContact,
    │   └── DelExternalContact, DelFollowUser, TransferFail, MsgAuditApproved
    ├── ExternalChatEvent      change_external_chat     (doc 92130)
    │   └── ExternalChatCreate, ExternalChatUpdate, ExternalChatDismiss
    ├── ExternalTagEvent       change_external_tag      (doc 92130)
    │   └── ExternalTagCreate, ExternalTagUpdate, ExternalTagDelete, ExternalTagShuffle
    └── GenericEvent           anything else (raw ``fields``)

Field names are snake_case; WeCom's XML tag names are the aliases. Event/ChangeType values stay
plain strings (not enums), so unknown values pass through as ``GenericEvent``.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate ~100 string
# annotations at import, on the callback's cold path (~3 ms measured); forward references are
# quoted instead.
import hashlib
import json
import re
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, StringConstraints, ValidationError, field_validator

from chalicelib.platform.model import Model

from .crypto import CallbackRejected, XmlInvalid, _check_xml, _xml_root

__all__ = [
    "AddExternalContact",
    "AddHalfExternalContact",
    "CallbackEvent",
    "DelExternalContact",
    "DelFollowUser",
    "EditExternalContact",
    "EventInvalid",
    "ExternalChatCreate",
    "ExternalChatDismiss",
    "ExternalChatEvent",
    "ExternalChatUpdate",
    "ExternalContactEvent",
    "ExternalTagCreate",
    "ExternalTagDelete",
    "ExternalTagEvent",
    "ExternalTagShuffle",
    "ExternalTagUpdate",
    "GenericEvent",
    "MsgAuditApproved",
    "TransferFail",
    "event_from_dict",
    "parse_event",
    "parse_xml",
]


MAX_CREATE_TIME = 10**10  # CreateTime is in seconds: anything at or above is not (year 2286)

# The longest value WeCom gives each field, in characters (its ids are ASCII). A longer one is not
# WeCom's: refused at the callback (400, nothing queued), it never reaches a DynamoDB key (2048 /
# 1024 bytes). Where WeCom documents no maximum, the limit is about 4x what it sends. Sources and
# examples: docs/architecture.md, "Callback field limits".
MAX_CORP_ID = 64  # CorpID "ww" + 16 hex = 18 chars; a third-party suite id is as short
MAX_USER_ID = 64  # member UserID: 1-64 chars of [A-Za-z0-9_.@-] (errcode 40003 "不合法的UserID")
MAX_EXTERNAL_USER_ID = 128  # "wm"/"wo" + 30 = 32 chars in practice; undocumented maximum
MAX_CHAT_ID = 128  # "wr" + 30 = 32 chars in practice; undocumented maximum
MAX_TAG_ID = 128  # "et" + ~20 chars in practice; undocumented maximum
MAX_STATE = 30  # 「联系我」/「加入群聊」 state: <= 30 chars (add_contact_way, add_join_way)
MAX_WELCOME_CODE = 128  # opaque, ~40 chars in practice; undocumented maximum
MAX_MEMBER_VERSION = 128  # LastMemVer/CurMemVer: an md5 hex (32 chars)
MAX_WORD = 64  # words from WeCom's fixed vocabularies: FromUserName "sys", UpdateDetail, TagType, Source...
MAX_GROUP_MEMBERS = 2000  # a customer group holds at most 2000 members: MemChangeList is never longer


class EventInvalid(CallbackRejected):
    """A known event type with a missing or malformed required field (or a bad ``to_dict`` dict)."""

    code = "event_invalid"


def parse_xml(data: bytes) -> dict[str, str | list[str]]:
    """Parse callback XML into the flat children of ``<xml>``.

    Size limit (1 MB, ``BodyTooLarge``), any DOCTYPE/ENTITY refused before parsing (``XmlInvalid``),
    standard-library ElementTree (expat) forced to UTF-8. A child with children (``<Item>``) becomes
    a list of their texts; a leaf becomes its text ("" if empty). The first of duplicate tags wins.

    Flat documents in WeCom's own shape (``<Tag><![CDATA[..]]></Tag>`` or plain text without ``&``)
    take a regex fast path that accepts only a strict subset of well-formed XML and returns exactly
    what ElementTree would; everything else (lists, entities, attributes, comments...) is parsed by
    ElementTree.
    """
    _check_xml(data)
    fields = _flat_fields(data)
    if fields is None:
        fields = _element_fields(data)
    return fields


def _element_fields(data: bytes) -> dict[str, str | list[str]]:
    root = _xml_root(data, checked=True)
    if root.tag != "xml":
        raise XmlInvalid("root element is not <xml>")
    fields: dict[str, str | list[str]] = {}
    for child in root:
        tag = child.tag
        if tag in fields:
            continue
        if len(child):
            fields[tag] = [item.text or "" for item in child]
        else:
            fields[tag] = child.text or ""
    return fields


# Fast path. A name is an ASCII XML name without ':'; a value is a CDATA section without ']', or
# text without '<', '&' or ']'. Characters XML forbids and '\r' (which XML normalises) are outside
# every class, so such documents go to ElementTree and values never need unescaping or normalising.
_NO = r"\]\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff"
_FLAT_CHILD = (
    r"[ \t\n]*<([A-Za-z_][A-Za-z0-9_.-]*)>"
    rf"(?:<!\[CDATA\[([^{_NO}]*)\]\]>|([^<&{_NO}]*))</\1>"
)
_FLAT_DOC_RE = re.compile(rf"[ \t\n]*<xml>(?:{_FLAT_CHILD})*[ \t\n]*</xml>[ \t\n]*")
_FLAT_CHILD_RE = re.compile(_FLAT_CHILD)


def _flat_fields(data: bytes) -> dict[str, str | list[str]] | None:
    """Flat children of ``<xml>`` via regex, or None when the document is not in the fast subset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # ElementTree reports it
    if not _FLAT_DOC_RE.fullmatch(text):
        return None
    # Children start right after the root's start tag ("<xml></xml>" must not read as a child).
    found = _FLAT_CHILD_RE.findall(text, text.index("<xml>") + 5)
    fields: dict[str, str | list[str]] = {tag: cdata or plain for tag, cdata, plain in found}
    return fields if len(fields) == len(found) else None  # duplicates: ElementTree decides


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


class CallbackEvent(Model):
    """Common envelope of every decrypted callback (doc 92130).

    ``to_user_name`` is the corp id, ``from_user_name`` is always ``sys`` for change events.
    """

    # Blanks around a value are layout (a pretty-printed document), never part of an id or a type.
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", str_strip_whitespace=True)

    KIND: ClassVar[str] = ""
    EVENT: ClassVar[str] = ""
    CHANGE_TYPE: ClassVar[str | None] = None
    IDENTITY_FIELDS: ClassVar[tuple[str, ...]] = ()

    to_user_name: str = Field(alias="ToUserName", min_length=1, max_length=MAX_CORP_ID)
    from_user_name: str = Field("", alias="FromUserName", max_length=MAX_WORD)
    # Unix seconds: a millisecond value (13 digits) is refused, not read as the year 55,000.
    create_time: int = Field(alias="CreateTime", ge=0, lt=MAX_CREATE_TIME)
    msg_type: str = Field("event", alias="MsgType")
    event: str = Field(alias="Event", min_length=1)
    change_type: str | None = Field(None, alias="ChangeType")

    @property
    def route_key(self) -> tuple[str, str | None]:
        """``(event, change_type)``, what the consumer's router dispatches on."""
        return (self.event, self.change_type)

    def _identity_payload(self) -> dict[str, Any]:
        names = (
            "to_user_name",
            "event",
            "change_type",
            "create_time",
            *self.IDENTITY_FIELDS,
        )
        return {name: getattr(self, name) for name in names}

    def identity(self) -> str:
        """Stable dedupe identity, computed from the event's own content only.

        Rule: sha256 over the canonical JSON (sorted keys, compact, UTF-8) of the corp id
        (``to_user_name``), ``event``, ``change_type``, ``create_time`` and the class's identifying
        fields (``IDENTITY_FIELDS``: user/external user ids, chat id, update detail, member change
        list and versions, tag id/type/strategy; all raw fields for ``GenericEvent``); the first 32
        hex characters. WeCom re-sends the same plaintext on a retry, so a retry gets the same
        identity; events differing in any of these (another second, another id) do not share it.
        Non-identifying payload such as ``welcome_code`` or ``state`` is left out, so adding an
        optional field to a model never changes the identity of an event already queued.
        """
        payload = json.dumps(
            self._identity_payload(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a ``kind`` discriminator; ``event_from_dict`` reverses it exactly."""
        return {"kind": self.KIND, **self.model_dump(mode="json")}


# -- change_external_contact (doc 92130 「客户联系」 事件) ------------------------------------------


class ExternalContactEvent(CallbackEvent):
    """A member <-> customer relation changed; ``user_id`` = member, ``external_user_id`` = customer."""

    EVENT = "change_external_contact"
    IDENTITY_FIELDS = ("user_id", "external_user_id")

    user_id: str = Field(alias="UserID", min_length=1, max_length=MAX_USER_ID)
    external_user_id: str = Field(alias="ExternalUserID", min_length=1, max_length=MAX_EXTERNAL_USER_ID)


class AddExternalContact(ExternalContactEvent):
    """Member added a customer. ``state`` = 「联系我」 state; ``welcome_code`` lives 20 s, once."""

    CHANGE_TYPE = "add_external_contact"
    state: str | None = Field(None, alias="State", max_length=MAX_STATE)
    welcome_code: str | None = Field(None, alias="WelcomeCode", max_length=MAX_WELCOME_CODE)


class EditExternalContact(ExternalContactEvent):
    """Member edited the customer's remark/description/tags."""

    CHANGE_TYPE = "edit_external_contact"


class AddHalfExternalContact(ExternalContactEvent):
    """Customer added a skip-verify member who has not accepted yet."""

    CHANGE_TYPE = "add_half_external_contact"
    state: str | None = Field(None, alias="State", max_length=MAX_STATE)
    welcome_code: str | None = Field(None, alias="WelcomeCode", max_length=MAX_WELCOME_CODE)


class DelExternalContact(ExternalContactEvent):
    """Member deleted the customer; ``source == "DELETE_BY_TRANSFER"`` after 在职继承."""

    CHANGE_TYPE = "del_external_contact"
    source: str | None = Field(None, alias="Source", max_length=MAX_WORD)


class DelFollowUser(ExternalContactEvent):
    """Customer deleted the member."""

    CHANGE_TYPE = "del_follow_user"


class TransferFail(ExternalContactEvent):
    """Transfer failed: ``fail_reason`` ``customer_refused`` / ``customer_limit_exceed``."""

    CHANGE_TYPE = "transfer_fail"
    fail_reason: str | None = Field(None, alias="FailReason", max_length=MAX_WORD)


class MsgAuditApproved(ExternalContactEvent):
    """Customer consented to 会话存档 (doc 92005)."""

    CHANGE_TYPE = "msg_audit_approved"
    welcome_code: str | None = Field(None, alias="WelcomeCode", max_length=MAX_WELCOME_CODE)


# -- change_external_chat (doc 92130 客户群事件) ---------------------------------------------------


# A MemChangeList entry: a member's UserID or a customer's external_userid.
_Member = Annotated[str, StringConstraints(max_length=max(MAX_USER_ID, MAX_EXTERNAL_USER_ID))]


class ExternalChatEvent(CallbackEvent):
    EVENT = "change_external_chat"
    IDENTITY_FIELDS = ("chat_id",)

    chat_id: str = Field(alias="ChatId", min_length=1, max_length=MAX_CHAT_ID)


class ExternalChatCreate(ExternalChatEvent):
    CHANGE_TYPE = "create"


class ExternalChatDismiss(ExternalChatEvent):
    CHANGE_TYPE = "dismiss"


class ExternalChatUpdate(ExternalChatEvent):
    """Group changed: ``update_detail`` add_member/del_member/change_owner/change_name/change_notice.

    ``join_scene`` (add_member: 0 invited, 3 QR), ``quit_scene`` (del_member: 0 left, 1 removed),
    ``last_mem_ver``/``cur_mem_ver`` = member-list version before/after (groupchat/get
    ``member_version``). ``mem_change_list`` accepts ``<Item>`` children or old "a,b" CDATA.
    """

    CHANGE_TYPE = "update"
    IDENTITY_FIELDS = (
        "chat_id",
        "update_detail",
        "mem_change_list",
        "last_mem_ver",
        "cur_mem_ver",
    )

    update_detail: str = Field(alias="UpdateDetail", min_length=1, max_length=MAX_WORD)
    join_scene: int | None = Field(None, alias="JoinScene")
    quit_scene: int | None = Field(None, alias="QuitScene")
    mem_change_cnt: int | None = Field(None, alias="MemChangeCnt")
    mem_change_list: list[_Member] = Field(default_factory=list, alias="MemChangeList",
                                           max_length=MAX_GROUP_MEMBERS)
    last_mem_ver: str | None = Field(None, alias="LastMemVer", max_length=MAX_MEMBER_VERSION)
    cur_mem_ver: str | None = Field(None, alias="CurMemVer", max_length=MAX_MEMBER_VERSION)

    _ints = field_validator("join_scene", "quit_scene", "mem_change_cnt", mode="before")(_blank_to_none)

    @field_validator("mem_change_list", mode="before")
    @classmethod
    def _split_legacy_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # old form: <MemChangeList><![CDATA[a,b]]></MemChangeList>
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


# -- change_external_tag (doc 92130 企业客户标签事件) -----------------------------------------------


class ExternalTagEvent(CallbackEvent):
    EVENT = "change_external_tag"
    IDENTITY_FIELDS = ("id", "tag_type", "strategy_id")

    strategy_id: int | None = Field(None, alias="StrategyId")

    _ints = field_validator("strategy_id", mode="before")(_blank_to_none)


class _TagChange(ExternalTagEvent):
    """``id`` = tag or tag-group id, ``tag_type`` = ``tag`` / ``tag_group``."""

    id: str = Field(alias="Id", min_length=1, max_length=MAX_TAG_ID)
    tag_type: str = Field(alias="TagType", min_length=1, max_length=MAX_WORD)


class ExternalTagCreate(_TagChange):
    CHANGE_TYPE = "create"


class ExternalTagUpdate(_TagChange):
    CHANGE_TYPE = "update"


class ExternalTagDelete(_TagChange):
    CHANGE_TYPE = "delete"


class ExternalTagShuffle(ExternalTagEvent):
    """Tags reordered; ``id`` = tag group (absent: whole library (?))."""

    CHANGE_TYPE = "shuffle"
    IDENTITY_FIELDS = ("id", "strategy_id")

    id: str | None = Field(None, alias="Id", max_length=MAX_TAG_ID)


# -- everything else --------------------------------------------------------------------------


class GenericEvent(CallbackEvent):
    """Any callback without a model (unknown Event/ChangeType, messages). ``fields`` = raw XML."""

    KIND = "generic"

    to_user_name: str = Field("", alias="ToUserName")
    create_time: int = Field(0, alias="CreateTime")
    msg_type: str = Field("", alias="MsgType")
    event: str = Field("", alias="Event")
    fields: dict[str, str | list[str]] = Field(default_factory=dict)

    @classmethod
    def from_fields(cls, fields: dict[str, str | list[str]]) -> "GenericEvent":
        def text(tag: str) -> str:
            value = fields.get(tag)
            return value if isinstance(value, str) else ""

        created = text("CreateTime").strip()
        change_type = fields.get("ChangeType")
        return cls(
            to_user_name=text("ToUserName"),
            from_user_name=text("FromUserName"),
            create_time=int(created) if created.isascii() and created.isdigit() else 0,
            msg_type=text("MsgType"),
            event=text("Event"),
            change_type=change_type if isinstance(change_type, str) else None,
            fields=dict(fields),
        )

    def _identity_payload(self) -> dict[str, Any]:
        return {"generic": self.fields}


_MODELS: tuple[type[CallbackEvent], ...] = (
    AddExternalContact,
    EditExternalContact,
    AddHalfExternalContact,
    DelExternalContact,
    DelFollowUser,
    TransferFail,
    MsgAuditApproved,
    ExternalChatCreate,
    ExternalChatUpdate,
    ExternalChatDismiss,
    ExternalTagCreate,
    ExternalTagUpdate,
    ExternalTagDelete,
    ExternalTagShuffle,
)
for _model in _MODELS:
    _model.KIND = f"{_model.EVENT}:{_model.CHANGE_TYPE}"
_BY_ROUTE: dict[tuple[str, str | None], type[CallbackEvent]] = {(m.EVENT, m.CHANGE_TYPE): m for m in _MODELS}
_BY_KIND: dict[str, type[CallbackEvent]] = {m.KIND: m for m in (*_MODELS, GenericEvent)}
del _model


def _invalid(kind: str, exc: ValidationError) -> "EventInvalid":
    errors = [err for err in exc.errors() if err["loc"]]
    long = sorted({str(err["loc"][0]) for err in errors if err["type"] in ("string_too_long", "too_long")})
    other = sorted({str(err["loc"][0]) for err in errors} - set(long))
    parts = [f"too long: {', '.join(long)}"] if long else []
    if other or not long:
        parts.append(f"missing or invalid {', '.join(other) or 'fields'}")
    return EventInvalid(f"{kind}: {'; '.join(parts)}")


def parse_event(plaintext: bytes) -> "CallbackEvent":
    """Decrypted callback XML -> the event model for its (Event, ChangeType), else GenericEvent."""
    fields = parse_xml(plaintext)
    event, change_type = fields.get("Event"), fields.get("ChangeType")
    model = None
    if isinstance(event, str) and isinstance(change_type, str):
        model = _BY_ROUTE.get((event.strip(), change_type.strip()))
    if model is None:
        return GenericEvent.from_fields(fields)
    try:
        return model.model_validate(fields, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _invalid(model.KIND, exc) from None


def event_from_dict(data: dict[str, Any]) -> "CallbackEvent":
    """Inverse of ``CallbackEvent.to_dict`` (SQS message bodies)."""
    data = dict(data)
    kind = data.pop("kind", None)
    model = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise EventInvalid(f"unknown event kind: {kind!r}")
    try:
        return model.model_validate(data, by_alias=False, by_name=True)
    except ValidationError as exc:
        raise _invalid(model.KIND, exc) from None
