"""Message content as operators write it: text with placeholders plus attachments.

Shared by welcome messages now and broadcasts / SOP calendars later. WeCom's limits are checked
when the operator saves the content, not when a customer is waiting for the message: content the
API accepts (``SendableContent``) uses only the known placeholders and stays within WeCom's text
limit whatever names fill them in. ``MessageContent`` alone is the stored shape and stays lenient,
so content saved before a rule was added can still be read (and is refused by WeCom's own limits
at send time, recorded as a miss with its reason).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from chalicelib.platform.model import Model

MAX_ATTACHMENTS = 9  # send_welcome_msg / add_msg_template (doc 92137, 92135)
MAX_TEXT_BYTES = 4000
PLACEHOLDER_CUSTOMER_NAME = "{customer_name}"
PLACEHOLDER_STAFF_NAME = "{staff_name}"
PLACEHOLDERS = (PLACEHOLDER_CUSTOMER_NAME, PLACEHOLDER_STAFF_NAME)
# The longest name a placeholder can become: WeCom's member name is "1~64 utf8 characters" (doc 90195,
# user/create `name`), the longest documented name of a person in WeCom; a WeChat nickname (the
# name of most customers) is shorter. 64 characters of up to 4 bytes each.
MAX_NAME_CHARS = 64
MAX_NAME_BYTES = MAX_NAME_CHARS * 4
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_KNOWN = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


def _drop(text: str, placeholder: str) -> str:
    p = re.escape(placeholder)
    text = re.sub(rf"[ \t]*{p}(?=[ \t]*[,.!?;:，。！？；：、])", "", text)
    return re.sub(rf"{p}[ \t]*", "", text)


def _max_bytes(value: str | None, limit: int, what: str) -> str | None:
    if value is not None and len(value.encode()) > limit:
        raise ValueError(f"{what} is longer than {limit} bytes (UTF-8)")
    return value


class ImageAttachment(Model):
    # `type` is required: attachments are told apart by it (a default would let it be left out).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["media_id"], "properties": {"media_id": {"type": "string"}}},
        {"required": ["pic_url"], "properties": {"pic_url": {"type": "string"}}}]})
    type: Literal["image"]
    media_id: str | None = Field(None, min_length=1, max_length=256)
    pic_url: str | None = Field(None, max_length=2048, pattern=r"^https?://")

    @model_validator(mode="after")
    def _one_source(self) -> ImageAttachment:
        if bool(self.media_id) == bool(self.pic_url):
            raise ValueError("an image needs exactly one of media_id or pic_url")
        return self


class LinkAttachment(Model):
    model_config = ConfigDict(extra="forbid")
    type: Literal["link"]
    title: str = Field(min_length=1)
    url: str = Field(max_length=2048, pattern=r"^https?://")
    picurl: str | None = Field(None, max_length=2048, pattern=r"^https?://")
    desc: str | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        return _max_bytes(v, 128, "link title") or v

    @field_validator("desc")
    @classmethod
    def _desc(cls, v: str | None) -> str | None:
        return _max_bytes(v, 512, "link desc")


class MiniProgramAttachment(Model):
    model_config = ConfigDict(extra="forbid")
    type: Literal["miniprogram"]
    title: str = Field(min_length=1)
    pic_media_id: str = Field(min_length=1)
    appid: str = Field(min_length=1, max_length=64)
    page: str = Field(min_length=1, max_length=512)

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        return _max_bytes(v, 64, "mini-program title") or v


Attachment = Annotated[ImageAttachment | LinkAttachment | MiniProgramAttachment, Field(discriminator="type")]


class MessageContent(Model):
    """Text (may contain {customer_name}, {staff_name}) and up to 9 attachments; at least one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}},
        {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}}]})
    text: str | None = Field(None, description=f"may contain {{customer_name}} and {{staff_name}} (any other "
                                               f"{{...}} is refused as an unknown placeholder); at most "
                                               f"{MAX_TEXT_BYTES} bytes (UTF-8) with the longest names filled in")
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return _max_bytes(v, MAX_TEXT_BYTES, "text")

    @model_validator(mode="after")
    def _not_empty(self) -> MessageContent:
        if not self.text and not self.attachments:
            raise ValueError("a message needs text or at least one attachment")
        return self

    @property
    def needs_customer_name(self) -> bool:
        return bool(self.text and PLACEHOLDER_CUSTOMER_NAME in self.text)

    @property
    def needs_staff_name(self) -> bool:
        return bool(self.text and PLACEHOLDER_STAFF_NAME in self.text)

    def render_text(self, *, customer_name: str | None, staff_name: str | None = None) -> str | None:
        """The text with its placeholders filled in. A name that cannot be read (a half add, WeCom
        busy, a staff member not in the directory) leaves no trace, nor the gap it leaves:
        "Hi {customer_name}, welcome" -> "Hi, welcome"."""
        if not self.text:
            return None
        names = {PLACEHOLDER_CUSTOMER_NAME: customer_name, PLACEHOLDER_STAFF_NAME: staff_name}
        text = self.text
        for placeholder, name in names.items():
            if not name:
                text = _drop(text, placeholder)
        # One pass, so a name that looks like a placeholder stays as it is; a name longer than the
        # documented maximum is cut to it, so what was accepted stays within WeCom's limit.
        text = _KNOWN.sub(lambda m: (names[m.group()] or "")[:MAX_NAME_CHARS], text)
        return text.strip() or None

    def wecom_attachments(self) -> list[dict]:
        out = []
        for a in self.attachments:
            payload = a.model_dump(exclude={"type"}, exclude_none=True)
            out.append({"msgtype": a.type, a.type: payload})
        return out


def _sendable(content: MessageContent) -> MessageContent:
    """Accept-time rules: only known placeholders, and the text within WeCom's limit once every
    placeholder is filled in with the longest possible name (so the send can never fail on it)."""
    text = content.text or ""
    unknown = sorted({p for p in _PLACEHOLDER.findall(text) if p not in PLACEHOLDERS})
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}: only {' and '.join(PLACEHOLDERS)} "
                         "are filled in")
    longest = "\U00020000" * MAX_NAME_CHARS  # a 4-byte character: the most bytes a name can take
    rendered = content.render_text(customer_name=longest, staff_name=longest) or ""
    if len(rendered.encode()) > MAX_TEXT_BYTES:
        raise ValueError(f"text is longer than {MAX_TEXT_BYTES} bytes (UTF-8) once each placeholder is "
                         f"filled in with a name of up to {MAX_NAME_CHARS} characters ({MAX_NAME_BYTES} bytes)")
    return content


SendableContent = Annotated[MessageContent, AfterValidator(_sendable)]
"""Content as the API accepts it: MessageContent that can always be sent (see ``_sendable``)."""
