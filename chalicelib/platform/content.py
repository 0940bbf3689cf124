"""Message content as operators write it: text with placeholders plus attachments.

Shared by welcome messages now and broadcasts / SOP calendars later. WeCom's limits are checked
when the operator saves the content, not when a customer is waiting for the message.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.platform.model import Model

MAX_ATTACHMENTS = 9  # send_welcome_msg / add_msg_template (doc 92137, 92135)
MAX_TEXT_BYTES = 4000
PLACEHOLDER_CUSTOMER_NAME = "{customer_name}"
_NAME_BEFORE_PUNCTUATION = re.compile(r"[ \t]*\{customer_name\}(?=[ \t]*[,.!?;:，。！？；：、])")
_NAME_AND_BLANKS = re.compile(r"\{customer_name\}[ \t]*")


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
    """Text (may contain {customer_name}) and up to 9 attachments; at least one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}},
        {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}}]})
    text: str | None = Field(None, description=f"may contain {{customer_name}}; at most {MAX_TEXT_BYTES} bytes (UTF-8)")
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

    def render_text(self, *, customer_name: str | None) -> str | None:
        if not self.text:
            return None
        if customer_name:
            return self.text.replace(PLACEHOLDER_CUSTOMER_NAME, customer_name).strip() or None
        # A customer whose name cannot be read (a half add, WeCom busy) is greeted without one, and
        # without the gap it leaves: "Hi {customer_name}, welcome" -> "Hi, welcome".
        text = _NAME_BEFORE_PUNCTUATION.sub("", self.text)
        return _NAME_AND_BLANKS.sub("", text).strip() or None

    def wecom_attachments(self) -> list[dict]:
        out = []
        for a in self.attachments:
            payload = a.model_dump(exclude={"type"}, exclude_none=True)
            out.append({"msgtype": a.type, a.type: payload})
        return out
