"""Typed requests and responses of the WeCom customer-contact API (field names as WeCom spells them).

Limits that WeCom enforces are repeated here as pydantic constraints where they are certain
(wecom-api.md section 3; doc ids beside each model), so a request that WeCom would reject with
40058/41xxx fails before it costs a call. Responses keep unknown fields (``extra="allow"``):
WeCom adds fields without notice.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.platform.model import Model


class _Request(Model):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class _Response(Model):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    errcode: int = 0
    errmsg: str = "ok"


def _utf8_max(value: str | None, limit: int, what: str) -> str | None:
    if value is not None and len(value.encode()) > limit:
        raise ValueError(f"{what} is longer than {limit} bytes")
    return value


# -- token (doc 91039) --------------------------------------------------------------------------
class TokenResponse(_Response):
    access_token: str
    expires_in: int = 7200


class UserInfoResponse(_Response):
    """auth/getuserinfo (doc 91023): a corp member has ``userid``; anyone else ``openid``
    (and ``external_userid`` when they are a customer)."""

    userid: str | None = None
    user_ticket: str | None = None
    openid: str | None = None
    external_userid: str | None = None


class TicketResponse(_Response):
    """get_jsapi_ticket / ticket/get?type=agent_config (doc 90506): valid ``expires_in`` seconds."""

    ticket: str
    expires_in: int = 7200


# -- attachments shared by welcome messages, broadcasts, Moments --------------------------------
class Text(Model):
    model_config = ConfigDict(extra="allow")
    content: str


class Image(Model):
    model_config = ConfigDict(extra="allow")
    media_id: str | None = None
    pic_url: str | None = None


class Link(Model):
    model_config = ConfigDict(extra="allow")
    title: str
    picurl: str | None = None
    desc: str | None = None
    url: str
    media_id: str | None = None  # Moments only


class MiniProgram(Model):
    model_config = ConfigDict(extra="allow")
    title: str
    pic_media_id: str
    appid: str
    page: str


class Media(Model):
    model_config = ConfigDict(extra="allow")
    media_id: str


class Attachment(Model):
    """One attachment: ``msgtype`` names which of the payload fields is set."""

    model_config = ConfigDict(extra="allow")
    msgtype: Literal["image", "link", "miniprogram", "video", "file"]
    image: Image | None = None
    link: Link | None = None
    miniprogram: MiniProgram | None = None
    video: Media | None = None
    file: Media | None = None


# -- temporary media (doc 90389 media/upload; limits doc 90313 "上传的媒体文件限制") ------------------
MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024,
                   "file": 20 * 1024 * 1024}
MEDIA_TTL_SECONDS = 3 * 86400  # a media_id is valid for 3 days: upload close to sending
_IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


class MediaFile(Model):
    """A file for media/upload, checked as WeCom checks it (40004/40005/40006/40009/40011)."""

    kind: Literal["image", "voice", "video", "file"]
    filename: str = Field(min_length=1, max_length=255)
    content: bytes = Field(min_length=6)  # "所有文件size必须大于5个字节"

    @model_validator(mode="after")
    def _within_limits(self) -> MediaFile:
        if len(self.content) > MEDIA_MAX_BYTES[self.kind]:
            raise ValueError(f"a {self.kind} is at most {MEDIA_MAX_BYTES[self.kind]} bytes")
        if self.kind == "image" and self.content_type is None:
            raise ValueError("an image is a JPG or a PNG")
        return self

    @property
    def content_type(self) -> str | None:
        if self.kind != "image":
            return "application/octet-stream"
        return next((t for magic, t in _IMAGE_TYPES.items() if self.content.startswith(magic)), None)


class MediaUploadResponse(_Response):
    type: str
    media_id: str
    created_at: int  # WeCom sends it as a string of seconds


# -- members (doc 90196) ----------------------------------------------------------------------------
class User(_Response):
    """user/get: a member. `name` is 1-64 UTF-8 characters (doc 90195)."""

    userid: str
    name: str = ""


# -- 「联系我」 contact ways = channel codes (doc 92228) ----------------------------------------
class Conclusions(Model):
    model_config = ConfigDict(extra="allow")
    text: Text | None = None
    image: Image | None = None
    link: Link | None = None
    miniprogram: MiniProgram | None = None


class ContactWay(_Request):
    """Body of add_contact_way / update_contact_way (update: config_id + the fields to change)."""

    config_id: str | None = None
    type: Literal[1, 2] | None = None  # 1 single member, 2 several
    scene: Literal[1, 2] | None = None  # 1 mini-program, 2 QR code
    style: int | None = None
    remark: str | None = Field(default=None, max_length=30)
    skip_verify: bool | None = None
    state: str | None = Field(default=None, max_length=30)
    user: list[str] | None = None
    party: list[int] | None = None
    is_temp: bool | None = None
    expires_in: int | None = Field(default=None, gt=0, le=14 * 86400)
    chat_expires_in: int | None = Field(default=None, gt=0, le=14 * 86400)
    unionid: str | None = None
    conclusions: Conclusions | None = None


class AddContactWayResponse(_Response):
    config_id: str
    qr_code: str | None = None


class ContactWayInfo(ContactWay):
    qr_code: str | None = None


class GetContactWayResponse(_Response):
    contact_way: ContactWayInfo


# -- welcome messages (doc 92137) ---------------------------------------------------------------
class _TextAndAttachments(_Request):
    """Text (<= 4000 bytes) plus up to 9 attachments: welcome messages and broadcasts alike."""

    text: Text | None = None
    attachments: list[Attachment] | None = Field(default=None, max_length=9)

    @field_validator("text")
    @classmethod
    def _text_len(cls, v: Text | None) -> Text | None:
        if v is not None:
            _utf8_max(v.content, 4000, "text.content")
        return v


class WelcomeMessage(_TextAndAttachments):
    welcome_code: str


class _GroupWelcomeContent(Model):
    """A group welcome (doc 92366): text + one of image/link/miniprogram/file/video."""

    text: Text | None = None
    image: Image | None = None
    link: Link | None = None
    miniprogram: MiniProgram | None = None
    file: Media | None = None
    video: Media | None = None


class GroupWelcomeTemplate(_GroupWelcomeContent, _Request):
    """group_welcome_template/add|edit."""

    template_id: str | None = None
    agentid: int | None = None
    notify: Literal[0, 1] | None = None


class AddGroupWelcomeTemplateResponse(_Response):
    template_id: str


class GetGroupWelcomeTemplateResponse(_GroupWelcomeContent, _Response):
    pass


# -- customers (doc 92113 / 92114 / 92994) -------------------------------------------------------
class FollowUserListResponse(_Response):
    follow_user: list[str] = Field(default_factory=list)


class UnassignedListRequest(_Request):
    page_size: int = Field(1000, ge=1, le=1000)
    cursor: str | None = None


class UnassignedCustomer(Model):
    model_config = ConfigDict(extra="allow")
    handover_userid: str
    external_userid: str
    dimission_time: int | None = None


class UnassignedListResponse(_Response):
    """get_unassigned_list: departed members' customers awaiting assignment (wecom-api.md 3.5)."""

    info: list[UnassignedCustomer] = Field(default_factory=list)
    is_last: bool = True
    next_cursor: str = ""


class ExternalContactListResponse(_Response):
    external_userid: list[str] = Field(default_factory=list)


class ExternalContact(Model):
    model_config = ConfigDict(extra="allow")
    external_userid: str
    name: str = ""
    avatar: str | None = None
    type: int = 1  # 1 WeChat, 2 WeCom
    gender: int = 0
    unionid: str | None = None


class FollowUserTag(Model):
    model_config = ConfigDict(extra="allow")
    group_name: str | None = None
    tag_name: str | None = None
    tag_id: str | None = None
    type: int = 1  # 1 corp tag, 2 personal, 3 rule-group


class _Follow(Model):
    """A relation as WeCom describes it, from the staff member's side."""

    model_config = ConfigDict(extra="allow")
    userid: str
    remark: str = ""
    description: str = ""
    createtime: int = 0
    remark_mobiles: list[str] = Field(default_factory=list)
    add_way: int = 0
    oper_userid: str | None = None
    state: str | None = None


class FollowUser(_Follow):
    """externalcontact/get's `follow_user`: tags with names."""

    tags: list[FollowUserTag] = Field(default_factory=list)


class GetExternalContactResponse(_Response):
    external_contact: ExternalContact
    follow_user: list[FollowUser] = Field(default_factory=list)
    next_cursor: str = ""


class BatchGetByUserRequest(_Request):
    userid_list: list[str] = Field(min_length=1, max_length=100)
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=1, le=100)


class FollowInfo(_Follow):
    """batch/get_by_user's `follow_info`: tag ids only."""

    tag_id: list[str] = Field(default_factory=list)


class BatchContact(Model):
    model_config = ConfigDict(extra="allow")
    external_contact: ExternalContact
    follow_info: FollowInfo


class BatchGetByUserResponse(_Response):
    external_contact_list: list[BatchContact] = Field(default_factory=list)
    next_cursor: str = ""


# -- corp tags (doc 92117) -----------------------------------------------------------------------
class CorpTag(Model):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    name: str
    create_time: int | None = None
    order: int | None = None
    deleted: bool | None = None


class CorpTagGroup(Model):
    model_config = ConfigDict(extra="allow")
    group_id: str | None = None
    group_name: str
    create_time: int | None = None
    order: int | None = None
    deleted: bool | None = None
    tag: list[CorpTag] = Field(default_factory=list)


class CorpTagListResponse(_Response):
    tag_group: list[CorpTagGroup] = Field(default_factory=list)


class NewTag(Model):
    name: str = Field(min_length=1, max_length=30)
    order: int | None = None


class AddCorpTagRequest(_Request):
    group_id: str | None = None
    group_name: str | None = None
    order: int | None = None
    tag: list[NewTag] = Field(min_length=1)
    agentid: int | None = None


class AddCorpTagResponse(_Response):
    tag_group: CorpTagGroup


class EditCorpTagRequest(_Request):
    id: str
    name: str | None = None
    order: int | None = None
    agentid: int | None = None


class MarkTagRequest(_Request):
    userid: str
    external_userid: str
    add_tag: list[str] = Field(default_factory=list)
    remove_tag: list[str] = Field(default_factory=list)


# -- customer groups (doc 93414 / 92122) ---------------------------------------------------------
class OwnerFilter(Model):
    userid_list: list[str] = Field(max_length=100)


class GroupChatListRequest(_Request):
    status_filter: Literal[0, 1, 2, 3] | None = None
    owner_filter: OwnerFilter | None = None
    cursor: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class GroupChatListItem(Model):
    model_config = ConfigDict(extra="allow")
    chat_id: str
    status: int = 0


class GroupChatListResponse(_Response):
    group_chat_list: list[GroupChatListItem] = Field(default_factory=list)
    next_cursor: str = ""


class GroupMember(Model):
    model_config = ConfigDict(extra="allow")
    userid: str
    type: int  # 1 staff member, 2 external
    join_time: int = 0
    join_scene: int = 0
    invitor: dict[str, Any] | None = None
    group_nickname: str | None = None
    name: str | None = None
    unionid: str | None = None
    state: str | None = None


class GroupChat(Model):
    model_config = ConfigDict(extra="allow")
    chat_id: str
    name: str = ""
    owner: str = ""
    create_time: int = 0
    notice: str = ""
    member_list: list[GroupMember] = Field(default_factory=list)
    admin_list: list[dict[str, Any]] = Field(default_factory=list)
    member_version: str | None = None


class GetGroupChatResponse(_Response):
    group_chat: GroupChat


# -- 「加入群聊」 join ways = group codes (doc 92229 / 99547) ---------------------------------------
class JoinWay(_Request):
    config_id: str | None = None
    scene: Literal[1, 2] | None = None
    remark: str | None = None
    auto_create_room: Literal[0, 1] | None = None
    room_base_name: str | None = Field(default=None, max_length=40)
    room_base_id: int | None = None
    chat_id_list: list[str] | None = Field(default=None, max_length=5)
    state: str | None = Field(default=None, max_length=30)
    mark_source: bool | None = None


class AddJoinWayResponse(_Response):
    config_id: str


class JoinWayInfo(JoinWay):
    qr_code: str | None = None


class GetJoinWayResponse(_Response):
    join_way: JoinWayInfo


# -- broadcasts 企业群发 (doc 92135 / 96355) -----------------------------------------------------
class TagFilterGroup(Model):
    tag_list: list[str]


class TagFilter(Model):
    group_list: list[TagFilterGroup]


class MsgTemplate(_TextAndAttachments):
    chat_type: Literal["single", "group"] | None = None
    external_userid: list[str] | None = Field(default=None, max_length=10_000)
    chat_id_list: list[str] | None = Field(default=None, max_length=2_000)
    tag_filter: TagFilter | None = None
    sender: str | None = None
    allow_select: bool | None = None


class AddMsgTemplateResponse(_Response):
    msgid: str = ""
    fail_list: list[str] = Field(default_factory=list)


class GroupMsgListRequest(_Request):
    chat_type: Literal["single", "group"]
    start_time: int
    end_time: int
    creator: str | None = None
    filter_type: Literal[0, 1, 2] | None = None
    limit: int | None = Field(default=None, ge=1, le=100)
    cursor: str | None = None


class GroupMsg(Model):
    model_config = ConfigDict(extra="allow")
    msgid: str
    creator: str | None = None
    create_time: int | str = 0
    create_type: int = 0
    text: Text | None = None
    attachments: list[Attachment] = Field(default_factory=list)


class GroupMsgListResponse(_Response):
    group_msg_list: list[GroupMsg] = Field(default_factory=list)
    next_cursor: str = ""


class GroupMsgTask(Model):
    model_config = ConfigDict(extra="allow")
    userid: str
    status: int  # 0 not sent, 2 sent
    send_time: int | None = None


class GroupMsgTaskResponse(_Response):
    task_list: list[GroupMsgTask] = Field(default_factory=list)
    next_cursor: str = ""


class GroupMsgSendResult(Model):
    model_config = ConfigDict(extra="allow")
    external_userid: str | None = None
    chat_id: str | None = None
    userid: str
    status: int  # 0 unsent, 1 sent, 2 not a friend, 3 over the receive quota
    send_time: int | None = None


class GroupMsgSendResultResponse(_Response):
    send_list: list[GroupMsgSendResult] = Field(default_factory=list)
    next_cursor: str = ""


# -- Moments (doc 96351) -------------------------------------------------------------------------
class MomentVisibleRange(Model):
    model_config = ConfigDict(extra="allow")
    sender_list: dict[str, list[Any]] | None = None
    external_contact_list: dict[str, list[str]] | None = None


class MomentTask(_Request):
    text: Text | None = None
    attachments: list[Attachment] | None = Field(default=None, max_length=9)
    visible_range: MomentVisibleRange | None = None

    @field_validator("text")
    @classmethod
    def _text_len(cls, v: Text | None) -> Text | None:
        if v is not None and len(v.content) > 2000:
            raise ValueError("Moments text is longer than 2000 characters")
        return v


class AddMomentTaskResponse(_Response):
    jobid: str


class MomentTaskResultResponse(_Response):
    status: int = 0
    type: str | None = None
    result: dict[str, Any] | None = None


# -- handover 继承 (doc 96325 / 96331) ------------------------------------------------------------
class TransferCustomerRequest(_Request):
    handover_userid: str
    takeover_userid: str
    external_userid: list[str] = Field(min_length=1, max_length=100)
    transfer_success_msg: str | None = Field(default=None, max_length=200)


class TransferItem(Model):
    model_config = ConfigDict(extra="allow")
    external_userid: str
    errcode: int


class TransferCustomerResponse(_Response):
    customer: list[TransferItem] = Field(default_factory=list)


class TransferResultRequest(_Request):
    handover_userid: str
    takeover_userid: str
    cursor: str | None = None


class TransferResultItem(Model):
    model_config = ConfigDict(extra="allow")
    external_userid: str
    status: int  # 1 done, 2 waiting, 3 refused, 4 takeover full, 5 none
    takeover_time: int | None = None


class TransferResultResponse(_Response):
    customer: list[TransferResultItem] = Field(default_factory=list)
    next_cursor: str = ""


class GroupChatTransferRequest(_Request):
    chat_id_list: list[str] = Field(min_length=1, max_length=100)
    new_owner: str


class FailedChat(Model):
    model_config = ConfigDict(extra="allow")
    chat_id: str
    errcode: int
    errmsg: str = ""


class GroupChatTransferResponse(_Response):
    failed_chat_list: list[FailedChat] = Field(default_factory=list)


class Ok(_Response):
    """An answer with nothing but errcode/errmsg."""


# -- app messages 应用消息 (message/send, doc 90236) ---------------------------------------------
class AppTextMessage(_Request):
    """A text message from the corp's app (agentid) to staff members ("a|b")."""

    touser: str = Field(min_length=1)
    msgtype: Literal["text"] = "text"
    agentid: int
    text: Text

    @field_validator("text")
    @classmethod
    def _text_len(cls, v: Text) -> Text:
        _utf8_max(v.content, 2048, "text.content")
        return v


class AppMessageResponse(_Response):
    invaliduser: str = ""
    msgid: str = ""

