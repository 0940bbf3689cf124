"""The sandbox's in-memory WeCom: corps, apps, staff, customers, relations and everything the API
creates. Rules live in sandbox/api.py (API calls) and sandbox/simulator.py (people's actions).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

TOKEN_TTL_SECONDS = 7200  # doc 91039
WELCOME_CODE_TTL_SECONDS = 20  # doc 92137 / errcode 41050
CONTACT_WAY_QUOTA = 500_000  # 「联系我」+「加入群聊」 via API, shared (WxJava Javadoc; doc 99547)
CORP_TAG_LIMIT = 3_000  # errcode 40126
GROUP_WELCOME_TEMPLATE_LIMIT = 100  # errcode 41055
GROUP_SCAN_JOIN_CAP = 200  # joins by scanning beyond this need a manual invite (vendor blogs)
MEDIA_TTL_SECONDS = 3 * 86400  # a temporary media_id lives 3 days (doc 90389)
OAUTH_CODE_TTL_SECONDS = 300  # doc 91023: "code只能使用一次，5分钟未被使用自动过期"
JS_TICKET_TTL_SECONDS = 7200  # doc 90506: jsapi_ticket / agent_config ticket expires_in


class ApiFailure(Exception):
    """A WeCom errcode answer."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class SimulationError(Exception):
    """A simulated person cannot do that (HTTP 409 on the control API)."""


@dataclass
class App:
    name: str
    secret: str
    agentid: int | None = None
    customer_contact: bool = True  # listed in 客户联系「可调用接口的应用」 (else 48002)


@dataclass
class Staff:
    userid: str
    name: str = ""
    activated: bool = True  # 41054 on contact ways otherwise
    customer_contact: bool = True  # has the 客户联系 permission (84074 otherwise)
    resigned: bool = False
    resigned_at: int = 0  # dimission_time in get_unassigned_list


@dataclass
class Customer:
    external_userid: str
    name: str
    type: int = 1  # 1 WeChat, 2 WeCom
    gender: int = 0
    unionid: str | None = None
    avatar: str = ""

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"external_userid": self.external_userid, "name": self.name,
                                "avatar": self.avatar, "type": self.type, "gender": self.gender}
        if self.unionid:
            data["unionid"] = self.unionid
        return data


@dataclass
class Relation:
    userid: str
    external_userid: str
    createtime: int
    add_way: int = 1  # 1 scanned a QR code, 2 searched a phone number, ...
    state: str | None = None
    status: str = "active"  # active | half (skip-verify, not confirmed) | lost (customer deleted staff)
    remark: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    oper_userid: str | None = None
    chatted: bool = False  # a welcome or a message already went: a new welcome code is refused


@dataclass
class WelcomeCode:
    code: str
    userid: str
    external_userid: str
    issued_at: float
    used: bool = False


@dataclass
class Tag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0


@dataclass
class TagGroup:
    group_id: str
    name: str
    create_time: int
    order: int = 0
    tags: dict[str, Tag] = field(default_factory=dict)


@dataclass
class GroupChat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    admin_list: list[str] = field(default_factory=list)
    version: int = 1
    customer_group: bool = True
    transfers: list[float] = field(default_factory=list)

    @property
    def member_version(self) -> str:
        return hashlib.md5(f"{self.chat_id}:{self.version}".encode()).hexdigest()


@dataclass
class MassMessage:
    msgid: str
    chat_type: str
    creator: str | None
    create_time: int
    create_type: int  # 0 corp, 1 personal
    text: dict[str, Any] | None
    attachments: list[dict[str, Any]]
    targets: dict[str, list[str]]  # userid -> external_userids or chat_ids it must send to
    task_status: dict[str, int] = field(default_factory=dict)  # userid -> 0 unsent / 2 sent
    task_time: dict[str, int] = field(default_factory=dict)
    results: dict[tuple[str, str], tuple[int, int | None]] = field(default_factory=dict)
    cancelled: bool = False
    reminders: list[float] = field(default_factory=list)


@dataclass
class Transfer:
    handover_userid: str
    takeover_userid: str
    external_userid: str
    started_at: float
    resigned: bool
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover full, 5 none
    takeover_time: int | None = None
    message: str | None = None


@dataclass
class Media:
    """A temporary media file (media/upload, or media/upload_attachment with its attachment_type):
    only what the rules need, not its bytes."""

    media_id: str
    kind: str  # image | voice | video | file
    filename: str
    size: int
    created_at: int
    attachment_type: int | None = None  # upload_attachment's: 1 Moments, 2 product album; None: media/upload


@dataclass
class CorpSettings:
    group_join_cap: int = GROUP_SCAN_JOIN_CAP
    contact_way_quota: int = CONTACT_WAY_QUOTA
    corp_tag_limit: int = CORP_TAG_LIMIT
    welcome_code_ttl: float = WELCOME_CODE_TTL_SECONDS
    token_ttl: int = TOKEN_TTL_SECONDS
    group_welcome_template_limit: int = GROUP_WELCOME_TEMPLATE_LIMIT
    # WeCom receive quota: "month" = days-in-month per customer/group per month (doc 92135,
    # current default), "week" = 7 per week, "day" = 1 per day, or an int = per natural month.
    mass_message_quota: str | int = "month"
    # skip_verify channel codes: True posts add_half_external_contact until the staff member
    # confirms (84061 on the relation meanwhile); False posts add_external_contact at once.
    skip_verify_half: bool = False
    # customer relations a takeover may hold: a handover to one already at it ends as status 4
    # (takeover full) with transfer_fail FailReason=customer_limit_exceed (wecom-api.md 3.10, section 4)
    takeover_customer_limit: int = 50_000
    callback_retries: int = 3  # doc 96466: re-sent 3 times after a failure / 5 s timeout
    callback_timeout: float = 5.0


@dataclass
class Corp:
    corp_id: str
    name: str
    apps: dict[str, App]
    callback_token: str
    encoding_aes_key: str
    callback_url: str | None = None
    agent_id: str = "1000002"
    settings: CorpSettings = field(default_factory=CorpSettings)
    staff: dict[str, Staff] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)  # (ext, userid)
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    welcome_codes: dict[str, WelcomeCode] = field(default_factory=dict)
    tag_groups: dict[str, TagGroup] = field(default_factory=dict)
    chats: dict[str, GroupChat] = field(default_factory=dict)
    mass_messages: dict[str, MassMessage] = field(default_factory=dict)
    group_welcome_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    moment_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)  # temporary media by media_id
    transfers: list[Transfer] = field(default_factory=list)
    transfer_log: dict[str, list[float]] = field(default_factory=dict)  # ext -> on-job transfer times
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)
    js_tickets: dict[str, tuple[str, float]] = field(default_factory=dict)  # ticket -> (kind, expires_at)
    # the WeCom client of a browser test: who is signed in, and the chat the toolbar is opened in
    client: dict[str, str | None] = field(default_factory=dict)

    # -- lookups ---------------------------------------------------------------------------------
    def tag(self, tag_id: str) -> Tag | None:
        for group in self.tag_groups.values():
            if tag_id in group.tags:
                return group.tags[tag_id]
        return None

    def tag_count(self) -> int:
        return sum(len(g.tags) for g in self.tag_groups.values())

    def relations_of_staff(self, userid: str, statuses=("active", "lost")) -> list[Relation]:
        return [r for r in self.relations.values() if r.userid == userid and r.status in statuses]

    def relations_of_customer(self, ext: str, statuses=("active", "lost")) -> list[Relation]:
        return [r for r in self.relations.values() if r.external_userid == ext and r.status in statuses]

    def ways_used(self) -> int:
        return len(self.contact_ways) + len(self.join_ways)

    def public(self, *, with_secrets: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "corp_id": self.corp_id,
            "name": self.name,
            "callback_url": self.callback_url,
            "agent_id": self.agent_id,
            "staff": [vars(s) for s in self.staff.values()],
            "settings": vars(self.settings),
        }
        if with_secrets:
            data["secrets"] = {name: app.secret for name, app in self.apps.items()}
            data["callback_token"] = self.callback_token
            data["encoding_aes_key"] = self.encoding_aes_key
        return data


@dataclass
class OAuthCode:
    """A web OAuth code WeCom's redirect gave a page: one staff member, used once, 5 minutes."""

    code: str
    userid: str
    expires_at: float
    used: bool = False


@dataclass
class IssuedToken:
    token: str
    corp_id: str
    app: str
    expires_at: float
    revoked: bool = False


class World:
    """All corps and tokens. ``lock`` guards every mutation (handlers take it)."""

    def __init__(self) -> None:
        self.corps: dict[str, Corp] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.lock = threading.RLock()
        self._ids = itertools.count(1)

    def new_id(self, prefix: str, length: int = 32) -> str:
        n = next(self._ids)
        digest = hashlib.sha1(f"{prefix}:{n}".encode()).hexdigest()
        return (prefix + digest)[:length] if length else prefix + digest

    def corp(self, corp_id: str) -> Corp:
        corp = self.corps.get(corp_id)
        if corp is None:
            raise KeyError(corp_id)
        return corp
