"""The chat toolbar's logic: staff sessions from WeCom's web OAuth, the JS-SDK signature for the
page's own URL, and what a staff member may see of a customer or a group.

Sessions. The page has no API key: WeCom's OAuth redirect gives it a ``code``, which
``auth/getuserinfo`` turns into the staff member's userid (single-use, 5 minutes: doc 91023). The
session token that follows is ``base64url(claims).base64url(HMAC-SHA256(key, claims))`` with claims
``{c: corp, u: userid, e: expiry}``; the key is per corp, derived from the corp's contact secret
(sealed at rest with KMS, platform/sealing.py) with a label naming its use and the corp, so it
never leaves the server, a token of one corp never opens another, and rotating the secret ends
every session. A token lives ``SESSION_SECONDS``.

Visibility. A staff member sees a customer only through their own relation with them (active,
pending, or lost: the customer deleted them but the chat remains); anyone else's customer and an id
that is no customer at all get the same 404, so the answer tells nothing. A group is shown to the
staff members in it (owner, admin or a joined member).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field

from chalicelib.broadcasts.items import HISTORY_DAYS
from chalicelib.broadcasts.service import Received
from chalicelib.customers.items import TimelineEntry
from chalicelib.customers.service import TagRef
from chalicelib.groups.items import MemberItem
from chalicelib.platform.model import Model
from chalicelib.tags import service as tag_rules

SESSION_SECONDS = 1800
SESSION_LABEL = b"scrm/toolbar-session/v1/"
VISIBLE = ("active", "pending", "lost")
HISTORY_KINDS = ("lost", "removed", "transferred")  # the timeline's churn and handover entries
MAX_URL = 2048


def now() -> float:
    return time.time()


# -- errors (routes.py maps them) ---------------------------------------------------------------------
class SessionInvalid(Exception):
    """No session token, or one forged, expired or of another corp."""


class CodeInvalid(Exception):
    """The OAuth code is unknown to WeCom, already used or expired."""


class NotStaff(Exception):
    """The code names someone who is not a member of the corp (WeCom gave an openid)."""


class UrlNotAllowed(ValueError):
    """A signature was asked for a URL that is not this corp's toolbar page on this deployment."""


class AgentRequired(Exception):
    """The corp was registered without its app's agent_id: wx.agentConfig cannot be signed for it."""


class NotVisible(Exception):
    """No such customer or group for this staff member (the same answer whether it exists or not)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"no {what} of yours with this id")


# -- models -------------------------------------------------------------------------------------------
class SessionStart(Model):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=512, description="the `code` WeCom's OAuth redirect gave the page")


class Session(Model):
    token: str = Field(description="send as `Authorization: Bearer <token>` to the toolbar's other routes")
    staff_id: str
    expires_at: int


class ConfigQuery(Model):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=MAX_URL, description="the page's full URL (location.href)")


class JsConfig(Model):
    """What wx.config (corp ticket) and wx.agentConfig (the app's ticket) need (doc 90506)."""

    corp_id: str
    agent_id: str
    url: str = Field(description="the URL signed: the one given, without its fragment")
    timestamp: int
    nonce_str: str
    signature: str
    agent_nonce_str: str
    agent_signature: str


class Added(Model):
    staff_id: str
    status: str
    channel: str | None = Field(None, description="the channel code's state; null: added through none")
    channel_name: str | None = None
    added_at: int | None = None


class CustomerGroup(Model):
    group_id: str
    name: str
    owner: str | None
    member_count: int | None


class ToolbarCustomer(Model):
    customer_id: str
    name: str | None
    avatar: str | None = None
    added: Added = Field(description="how and when this staff member's relation began")
    tags: list[TagRef] = Field(description="the tags on this staff member's relation")
    timeline: list[TimelineEntry] = Field(description="newest first")
    history: list[TimelineEntry] = Field(description="churn and handover entries of the timeline, newest first")
    tag_library: list[tag_rules.TagGroupView] = Field(description="the corp's tags, to add by name")
    groups: list[CustomerGroup] = Field(description="the corp's groups the customer is in (whoever's), by id")
    broadcasts: list[Received] = Field(description=f"broadcasts that planned a message to the customer in the "
                                                   f"last {HISTORY_DAYS} days, newest first")


class ToolbarTagChange(Model):
    """tags.RelationTagChange without `staff_id`: the session names the staff member."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=tag_rules.ADD_OR_REMOVE)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100, description=tag_rules.DISJOINT)


class ToolbarGroup(Model):
    group_id: str
    name: str
    owner: str | None
    member_count: int | None
    capacity: int = Field(description="members a customer group holds (WeCom: 500 with staff invites)")
    codes: list[str] = Field(description="the group codes whose pool holds this group")
    members: list[MemberItem]


GROUP_CAPACITY = 500


def _staff_in(found: Any) -> set[str]:
    return {found.owner, *found.admins} | {m.member_id for m in found.members if m.member_type != 2}


# -- sessions -----------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _corp(corp_id: str) -> Any:
    from chalicelib.corps import registry

    corp = registry.runtime(corp_id)
    if corp is None:
        raise NotVisible("corp")
    return corp


def _key(corp_id: str) -> bytes:
    secret = _corp(corp_id).secrets.contact_secret.get_secret_value().encode()
    return hmac.new(secret, SESSION_LABEL + corp_id.encode(), hashlib.sha256).digest()


def start_session(corp_id: str, req: SessionStart) -> Session:
    from chalicelib.corps import registry
    from chalicelib.wecom import errors

    key = _key(corp_id)  # an unknown corp: NotVisible before WeCom is called
    try:
        who = registry.wecom_client(corp_id).get_user_info(req.code)
    except errors.InvalidCode as exc:
        raise CodeInvalid(str(exc)) from exc
    if not who.userid:
        raise NotStaff("the code names no member of this corp")
    expires_at = int(now()) + SESSION_SECONDS
    claims = _b64(json.dumps({"c": corp_id, "u": who.userid, "e": expires_at}, separators=(",", ":")).encode())
    mac = _b64(hmac.new(key, claims.encode(), hashlib.sha256).digest())
    return Session(token=f"{claims}.{mac}", staff_id=who.userid, expires_at=expires_at)


def staff_of(corp_id: str, authorization: str | None) -> str:
    """The staff member a session token names, or SessionInvalid."""
    scheme, _, token = (authorization or "").partition(" ")
    claims_text, _, mac = token.partition(".")
    if scheme.lower() != "bearer" or not claims_text or not mac or len(token) > 1024:
        raise SessionInvalid("send 'Authorization: Bearer <session token>'")
    expected = _b64(hmac.new(_key(corp_id), claims_text.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        raise SessionInvalid("the session token is not valid here")
    claims = json.loads(_unb64(claims_text))  # ours: the MAC matched
    if claims.get("c") != corp_id or not isinstance(claims.get("u"), str):
        raise SessionInvalid("the session token is not valid here")
    if now() >= claims.get("e", 0):
        raise SessionInvalid("the session expired: open the page again")
    return claims["u"]


# -- the JS-SDK signature --------------------------------------------------------------------------
def page_url(corp_id: str, url: str, *, base_url: str) -> str:
    """``url`` without its fragment, if it is this corp's toolbar page on this deployment: the same
    scheme, host and port as the deployment's public base URL, no user info, and a path that is
    exactly ``<base path>/toolbar/<corp_id>`` (any query, e.g. the OAuth ``code`` and ``state``).
    Anything else raises UrlNotAllowed: WeCom would accept a signature for any page of the app's
    trusted domain, so signing others' URLs would lend them the app's JS-SDK."""
    page = url.split("#", 1)[0]
    try:
        got, own = urlsplit(page), urlsplit(base_url)
        port_ok = got.port == own.port
    except ValueError:
        raise UrlNotAllowed("not a URL") from None
    if (got.scheme, got.hostname, got.username, got.password) != (own.scheme, own.hostname, None, None) \
            or not port_ok or got.path != f"{own.path.rstrip('/')}/toolbar/{corp_id}" or "@" in got.netloc:
        raise UrlNotAllowed("only this corp's toolbar page on this deployment is signed")
    return page


def js_config(corp_id: str, url: str, *, base_url: str) -> JsConfig:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps import registry
    from chalicelib.wecom.jssdk import js_signature

    page = page_url(corp_id, url, base_url=base_url)
    corp = corp_items.get_corp(corp_id)
    if corp is None or not corp.agent_id:
        raise AgentRequired("the toolbar's JS-SDK (wx.agentConfig) needs the corp's app: register the corp with its "
                            "agent_id (POST /api/v1/corps)")
    client = registry.wecom_client(corp_id)
    timestamp, nonces = int(now()), (secrets.token_hex(8), secrets.token_hex(8))
    signatures = [js_signature(ticket=client.js_ticket(kind), noncestr=nonce, timestamp=timestamp, url=page)
                  for kind, nonce in zip(("jsapi", "agent_config"), nonces, strict=True)]
    return JsConfig(corp_id=corp_id, agent_id=corp.agent_id, url=page, timestamp=timestamp,
                    nonce_str=nonces[0], signature=signatures[0], agent_nonce_str=nonces[1],
                    agent_signature=signatures[1])


# -- what a staff member sees ------------------------------------------------------------------------
def _own_relation(corp_id: str, staff_id: str, customer_id: str) -> Any:
    from chalicelib.customers import items as customer_items

    rel = customer_items.get_relation(corp_id, customer_id, staff_id)
    if rel is None or rel.status not in VISIBLE:
        raise NotVisible("customer")
    return rel


def customer(corp_id: str, staff_id: str, customer_id: str) -> ToolbarCustomer:
    """One request's worth: the relation is read first, and nothing else unless it is visible."""
    from chalicelib.broadcasts import service as broadcasts
    from chalicelib.channel_codes import service as channel_codes
    from chalicelib.customers import service as customers

    rel = _own_relation(corp_id, staff_id, customer_id)
    story = customers.detail(corp_id, customer_id)
    own = next(r for r in story.relations if r.staff_id == staff_id)
    code = channel_codes.lookup(corp_id, rel.state) if rel.state else None
    timeline = sorted(story.timeline, key=lambda e: e.at, reverse=True)
    return ToolbarCustomer(
        customer_id=customer_id,
        name=story.profile.name if story.profile else None,
        avatar=story.profile.avatar if story.profile else None,
        added=Added(staff_id=staff_id, status=rel.status, channel=rel.state, channel_name=code.name if code else None,
                    added_at=rel.added_at),
        tags=own.tag_details,
        timeline=timeline,
        history=[e for e in timeline if e.kind in HISTORY_KINDS],
        tag_library=tag_rules.library(corp_id),
        groups=_groups_of(corp_id, customer_id),
        broadcasts=broadcasts.received(corp_id, customer_id),
    )


MAX_GROUPS = 100


def _groups_of(corp_id: str, customer_id: str) -> list[CustomerGroup]:
    from chalicelib.groups import service as groups

    return [CustomerGroup(group_id=g.group_id, name=g.name, owner=g.owner, member_count=g.member_count)
            for g in groups.member_of(corp_id, customer_id, limit=MAX_GROUPS)]


def change_tags(corp_id: str, change: Any) -> Any:
    """mark_tag on the session's own relation (``change``: a tags.CustomerTagChange whose staff_id
    is the session's), through the tags service: WeCom, then the mirror and a `tags_changed`
    timeline entry."""
    from chalicelib.tags import service as tags

    _own_relation(corp_id, change.staff_id, change.customer_id)
    return tags.change_customer_tags(corp_id, change)


def group(corp_id: str, staff_id: str, group_id: str) -> ToolbarGroup:
    """The stored group, if the staff member is in it. A group known only from its create callback
    (owner and members never read) is read from WeCom once (groupchat/get) to decide; an id we
    never stored costs WeCom nothing."""
    from chalicelib.corps import registry
    from chalicelib.groups import service as groups

    try:
        found = groups.detail(corp_id, group_id)
        if found.members_read_at is None and staff_id not in _staff_in(found):
            groups.refresh_members(corp_id, group_id, client=registry.wecom_client(corp_id))
            found = groups.detail(corp_id, group_id)
    except groups.GroupNotFound:
        raise NotVisible("group") from None
    if staff_id not in _staff_in(found):
        raise NotVisible("group")
    return ToolbarGroup(group_id=found.group_id, name=found.name, owner=found.owner, member_count=found.member_count,
                        capacity=GROUP_CAPACITY, codes=found.codes, members=found.members)
