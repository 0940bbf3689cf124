"""WeCom's server API as the sandbox serves it: paths, JSON shapes, limits and errcodes.

Every rule cites its source (wecom-api.md section, doc id, or errcode page 90313 via go-workwx
``errcodes/mod.go``); docs/sandbox.md lists them. Handlers run under ``World.lock`` and raise
``ApiFailure(errcode, errmsg)``; like WeCom, no API call fires a callback (doc 96361).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.state import (
    JS_TICKET_TTL_SECONDS,
    MEDIA_TTL_SECONDS,
    ApiFailure,
    Corp,
    GroupChat,
    MassMessage,
    Media,
    Relation,
    Tag,
    TagGroup,
    Transfer,
)

if TYPE_CHECKING:  # pragma: no cover
    from sandbox.app import Sandbox

Handler = Callable[["Api", Corp, dict[str, Any], dict[str, str]], dict[str, Any]]
ROUTES: dict[str, tuple[str, Handler]] = {}
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")


def route(path: str, method: str = "POST") -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ROUTES[path] = (method, fn)
        return fn
    return deco


def _require(body: dict[str, Any], name: str, errcode: int) -> Any:
    value = body.get(name)
    if value in (None, "", []):
        raise ApiFailure(errcode, f"missing {name}")
    return value


def _utf8_len(text: str) -> int:
    return len(text.encode())


def _check_len(value: Any, limit: int, name: str, errcode: int = 40058) -> None:
    if value is not None and len(str(value)) > limit:
        raise ApiFailure(errcode, f"invalid {name}: longer than {limit}")


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiFailure(40058, f"invalid {name}: not a list")
    return value


def _check_attachments(attachments: Any, limit: int = 9) -> list[dict[str, Any]]:
    items = _list(attachments, "attachments")
    if len(items) > limit:
        raise ApiFailure(41064, f"attachments exceed limit {limit}")  # errcode 41064
    for item in items:
        kind = item.get("msgtype") if isinstance(item, dict) else None
        if kind not in ATTACHMENT_TYPES or not isinstance(item.get(kind), dict):
            raise ApiFailure(41065, "invalid attachment type")  # errcode 41065
    return items


def _text(body: dict[str, Any], limit_bytes: int = 4000) -> dict[str, Any] | None:
    text = body.get("text")
    if text is None:
        return None
    if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
        raise ApiFailure(40058, "invalid text")
    if _utf8_len(text.get("content", "")) > limit_bytes:
        raise ApiFailure(40058, f"invalid text.content: longer than {limit_bytes} bytes")
    return text


def _cursor(value: Any) -> int:
    if not value:
        return 0
    try:
        return int(str(value).removeprefix("c"))
    except ValueError:
        raise ApiFailure(40058, "invalid cursor") from None


def _page(items: list[Any], cursor: Any, limit: int) -> tuple[list[Any], str]:
    start = _cursor(cursor)
    chunk = items[start:start + limit]
    nxt = f"c{start + limit}" if start + limit < len(items) else ""
    return chunk, nxt


class Api:
    """WeCom API handlers bound to one sandbox (clock, journal, ids)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    @property
    def now(self) -> int:
        return int(self.sb.clock())

    def dispatch(self, api: str, corp: Corp, body: dict[str, Any],
                 query: dict[str, str]) -> dict[str, Any]:
        return ROUTES[api][1](self, corp, body, query)

    # -- helpers -----------------------------------------------------------------------------
    def check_media(self, corp: Corp, attachments: list[dict[str, Any]], *, moments: bool = False) -> None:
        """Image attachments by media_id must name an image uploaded less than 3 days ago
        (errcode 40007: "媒体文件ID ... 有效期是3天", "类型应符合接口要求"). Moments (add_moment_task)
        take images, videos and a link's cover only by media_id (41006 without one: a link is
        {title, url, media_id}, doc 95094, SDKs' MomentTaskLink / MomentLink; which errcode real WeCom
        gives a link without one is not documented: 41006 as for an image), and only ids from
        media/upload_attachment with attachment_type 1 (SDKs: WxJava WxCpMediaService.uploadAttachment,
        go-workwx UploadAttachment "1：朋友圈；2:商品图册"); a link's cover is an image. Other video, file
        and mini-program media ids are not checked (yet)."""
        for item in attachments:
            kind = item["msgtype"]
            if kind != "image" and not (moments and kind in ("video", "link")):
                continue
            media_id = (item.get(kind) or {}).get("media_id")
            if media_id is None:
                if moments:
                    raise ApiFailure(41006, "media_id missing")  # errcode 41006 缺少media_id参数
                continue
            media = corp.media.get(media_id) if isinstance(media_id, str) else None
            wanted = "image" if kind == "link" else kind
            if media is None or media.kind != wanted or self.now >= media.created_at + MEDIA_TTL_SECONDS:
                raise ApiFailure(40007, "invalid media_id")
            if moments and media.attachment_type != UPLOAD_FOR_MOMENTS:
                raise ApiFailure(40007, "invalid media_id: Moments take media/upload_attachment's (attachment_type 1)")

    def staff(self, corp: Corp, userid: Any, *, errcode: int = 40003):
        member = corp.staff.get(userid) if isinstance(userid, str) else None
        if member is None:
            raise ApiFailure(errcode, f"invalid userid {userid!r}")
        return member

    def relation(self, corp: Corp, userid: str, ext: str) -> Relation:
        self.staff(corp, userid)
        if ext not in corp.customers:
            raise ApiFailure(40096, "invalid external userid")
        rel = corp.relations.get((ext, userid))
        # errcode 84061: staff removed the customer, or a skip-verify add not yet confirmed;
        # a customer who deleted the staff member still allows calls (one-sided relation).
        if rel is None or rel.status not in ("active", "lost"):
            raise ApiFailure(84061, "not external contact")
        return rel

    def use_way_slot(self, corp: Corp) -> None:
        if corp.ways_used() >= corp.settings.contact_way_quota:
            raise ApiFailure(41045, "contact way count reached limit")  # errcode 41045


# -- customers (wecom-api.md 3.5; doc 92571 / 92113 / 92114 / 92994) ------------------------------
@route("externalcontact/get_follow_user_list", "GET")
def get_follow_user_list(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return {"follow_user": [s.userid for s in corp.staff.values()
                            if s.customer_contact and not s.resigned]}


@route("externalcontact/get_unassigned_list")
def get_unassigned_list(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    """Customers of departed members not handed over yet (a customer whose resigned transfer is
    waiting or done is no longer listed): {page_size <= 1000, cursor} -> info[], is_last, next_cursor."""
    size = body.get("page_size", 1000)
    if not isinstance(size, int) or not 1 <= size <= 1000:
        raise ApiFailure(40058, "invalid page_size: 1..1000")
    moving = {(t.external_userid, t.handover_userid) for t in corp.transfers if t.status in (1, 2)}
    rows = sorted((r.userid, r.external_userid) for r in corp.relations.values()
                  if r.status in ("active", "lost") and r.userid in corp.staff and corp.staff[r.userid].resigned
                  and (r.external_userid, r.userid) not in moving)
    page, nxt = _page(rows, body.get("cursor"), size)
    return {"info": [{"handover_userid": u, "external_userid": e, "dimission_time": corp.staff[u].resigned_at}
                     for u, e in page], "is_last": not nxt, "next_cursor": nxt}


# -- members (doc 90196) -----------------------------------------------------------------------
@route("user/get", "GET")
def get_user(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    member = api.staff(corp, query.get("userid"), errcode=60111)  # 60111: userid not found
    return {"userid": member.userid, "name": member.name or member.userid,
            "status": 1 if member.activated else 4}


# -- web OAuth and the JS-SDK (doc 91023, doc 90506) --------------------------------------------
@route("auth/getuserinfo", "GET")
def get_user_info(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    """The staff member a page's OAuth code names. A code is single-use, dies 5 minutes after it
    was issued, and belongs to the corp it was issued for: anything else is 40029 invalid code."""
    code = query.get("code")
    if not code:
        raise ApiFailure(41008, "missing code")  # errcode 41008: 缺少oauth code
    issued = corp.oauth_codes.get(code)
    if issued is None or issued.used or api.sb.clock() >= issued.expires_at:
        raise ApiFailure(40029, "invalid code")
    issued.used = True
    return {"userid": issued.userid}


def _ticket(api: Api, corp: Corp, kind: str) -> dict:
    ticket = api.sb.world.new_id("tk", 40) + kind.replace("_", "")
    corp.js_tickets[ticket] = (kind, api.now + JS_TICKET_TTL_SECONDS)
    return {"ticket": ticket, "expires_in": JS_TICKET_TTL_SECONDS}


@route("get_jsapi_ticket", "GET")
def get_jsapi_ticket(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _ticket(api, corp, "jsapi")


@route("ticket/get", "GET")
def get_agent_ticket(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    if query.get("type") != "agent_config":
        raise ApiFailure(40058, "invalid type")
    return _ticket(api, corp, "agent_config")


@route("externalcontact/list", "GET")
def list_customers(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    userid = query.get("userid")
    if not userid:
        raise ApiFailure(41009, "missing userid")
    member = api.staff(corp, userid)
    if not member.customer_contact:
        raise ApiFailure(84074, "no external contact permission")
    ids = [r.external_userid for r in corp.relations_of_staff(userid)]
    if not ids:
        # Community-reported: a member without customers gets 84061, not an empty list.
        raise ApiFailure(84061, "not external contact")
    return {"external_userid": ids}


def _follow_user(api: Api, corp: Corp, rel: Relation, *, batch: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "userid": rel.userid, "remark": rel.remark, "description": rel.description,
        "createtime": rel.createtime, "remark_mobiles": [], "add_way": rel.add_way,
    }
    if rel.oper_userid:
        data["oper_userid"] = rel.oper_userid
    if rel.state:
        data["state"] = rel.state
    if batch:
        data["tag_id"] = list(rel.tags)
    else:
        tags = []
        for tag_id in rel.tags:
            tag = corp.tag(tag_id)
            if tag:
                tags.append({"group_name": corp.tag_groups[tag.group_id].name,
                             "tag_name": tag.name, "tag_id": tag.id, "type": 1})
        data["tags"] = tags
    return data


@route("externalcontact/get", "GET")
def get_customer(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    ext = query.get("external_userid")
    if not ext:
        raise ApiFailure(41035, "missing external userid")  # errcode 41035
    customer = corp.customers.get(ext)
    if customer is None:
        raise ApiFailure(40096, "invalid external userid")
    rels = corp.relations_of_customer(ext)
    if not rels:
        raise ApiFailure(84061, "not external contact")
    page, nxt = _page(sorted(rels, key=lambda r: r.createtime), query.get("cursor"), 500)
    return {"external_contact": customer.to_api(),
            "follow_user": [_follow_user(api, corp, r, batch=False) for r in page],
            "next_cursor": nxt}


@route("externalcontact/batch/get_by_user")
def batch_get_by_user(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    userids = _list(body.get("userid_list"), "userid_list")
    if not userids:
        raise ApiFailure(41009, "missing userid_list")
    if len(userids) > 100:  # doc 92994: userid_list <= 100
        raise ApiFailure(40058, "invalid userid_list: more than 100")
    limit = body.get("limit", 50)
    if not isinstance(limit, int) or not 1 <= limit <= 100:  # limit <= 100 (default 50)
        raise ApiFailure(40058, "invalid limit: 1..100")
    for userid in userids:
        api.staff(corp, userid)
    rels = [r for u in userids for r in sorted(corp.relations_of_staff(u), key=lambda r: r.createtime)]
    page, nxt = _page(rels, body.get("cursor"), limit)
    return {"external_contact_list": [
        {"external_contact": corp.customers[r.external_userid].to_api(),
         "follow_info": _follow_user(api, corp, r, batch=True)} for r in page],
        "next_cursor": nxt}


# -- channel codes 「联系我」 (wecom-api.md 3.2; doc 92228) ---------------------------------------
CONTACT_WAY_FIELDS = ("type", "scene", "style", "remark", "skip_verify", "state", "user", "party",
                      "is_temp", "expires_in", "chat_expires_in", "unionid", "conclusions")


def _validate_contact_way(api: Api, corp: Corp, way: dict[str, Any]) -> None:
    if way.get("type") is None:
        raise ApiFailure(41037, "missing type")
    if way.get("scene") is None:
        raise ApiFailure(41038, "missing scene")
    if way["type"] not in (1, 2):
        raise ApiFailure(41039, "invalid type")
    if way["scene"] not in (1, 2):
        raise ApiFailure(41040, "invalid scene")
    style = way.get("style")
    if style is not None and way["scene"] == 1 and style not in ((1, 2, 3) if way["type"] == 1 else (1, 2)):
        raise ApiFailure(41042, "invalid style")
    _check_len(way.get("remark"), 30, "remark")
    _check_len(way.get("state"), 30, "state")  # state <= 30 characters
    users = _list(way.get("user"), "user")
    parties = _list(way.get("party"), "party")
    if way["type"] == 1:
        if len(users) != 1 or parties:  # single: exactly one member, no party
            raise ApiFailure(40058, "invalid user: type 1 takes exactly one user")
    elif not users and not parties:
        raise ApiFailure(40058, "invalid user: empty")
    if len(users) > 100:
        raise ApiFailure(41041, "contact way user count exceeds limit")  # errcode 41041
    for userid in users:
        member = api.staff(corp, userid)
        if not member.activated:  # members must be activated (41054)
            raise ApiFailure(41054, f"user {userid} not activated")
        if not member.customer_contact:
            raise ApiFailure(84074, f"user {userid} has no external contact permission")
    if way.get("is_temp"):
        if way["type"] != 1:  # temp session: single member only
            raise ApiFailure(40058, "invalid is_temp: temporary ways are single-member")
        for name in ("expires_in", "chat_expires_in"):
            value = way.get(name)
            if value is not None and not 0 < int(value) <= 14 * 86400:  # max 14 days
                raise ApiFailure(40058, f"invalid {name}")
    elif way.get("conclusions"):
        raise ApiFailure(40058, "invalid conclusions: temporary ways only")


@route("externalcontact/add_contact_way")
def add_contact_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = {k: body[k] for k in CONTACT_WAY_FIELDS if k in body}
    way.setdefault("skip_verify", True)  # default true (doc 92228)
    way.setdefault("is_temp", False)
    _validate_contact_way(api, corp, way)
    if not way["is_temp"]:
        api.use_way_slot(corp)  # temp ways do not count against the 500,000
    config_id = api.sb.world.new_id("", 32)
    way.update(config_id=config_id, created_at=api.now, scans=0)
    if way["scene"] == 2:
        way["qr_code"] = f"{api.sb.public_url}/sandbox/qr/{corp.corp_id}/{config_id}"
    corp.contact_ways[config_id] = way
    out = {"config_id": config_id}
    if "qr_code" in way:
        out["qr_code"] = way["qr_code"]
    return out


def _way(corp: Corp, body: dict) -> dict[str, Any]:
    config_id = body.get("config_id")
    if not config_id:
        raise ApiFailure(41043, "missing config_id")
    way = corp.contact_ways.get(config_id)
    if way is None:
        raise ApiFailure(41044, "invalid config_id")
    return way


@route("externalcontact/get_contact_way")
def get_contact_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = _way(corp, body)
    shown = {k: v for k, v in way.items() if k not in ("created_at", "scans")}
    shown.setdefault("user", [])
    shown.setdefault("party", [])
    return {"contact_way": shown}


@route("externalcontact/update_contact_way")
def update_contact_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = _way(corp, body)
    updated = dict(way)
    for key in ("style", "remark", "skip_verify", "state", "user", "party", "expires_in",
                "chat_expires_in", "unionid", "conclusions"):
        if key in body:
            updated[key] = body[key]
    _validate_contact_way(api, corp, updated)
    corp.contact_ways[way["config_id"]] = updated
    return {}


@route("externalcontact/del_contact_way")
def del_contact_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = _way(corp, body)
    del corp.contact_ways[way["config_id"]]
    return {}


# -- welcome messages (wecom-api.md 3.3; doc 92137) -------------------------------------------
@route("externalcontact/send_welcome_msg")
def send_welcome_msg(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    code = body.get("welcome_code")
    if not code:
        raise ApiFailure(41049, "missing welcome_code")  # errcode 41049
    text = _text(body)
    attachments = _check_attachments(body.get("attachments"))
    if not (text and text.get("content")) and not attachments:
        raise ApiFailure(44004, "empty content")  # errcode 44004
    api.check_media(corp, attachments)
    wc = corp.welcome_codes.get(code)
    if wc is None:
        raise ApiFailure(41050, "invalid welcome_code")
    rel = corp.relations.get((wc.external_userid, wc.userid))
    if wc.used or (rel is not None and rel.chatted):
        raise ApiFailure(41051, "customer already started chat")  # single use; first app wins
    if api.sb.clock() - wc.issued_at > corp.settings.welcome_code_ttl:
        raise ApiFailure(41050, "invalid welcome_code: expired")  # 20 s after the event
    wc.used = True
    if rel is not None:
        rel.chatted = True
    api.sb.journal.record("welcome", corp_id=corp.corp_id, at=api.sb.clock(), userid=wc.userid,
                          external_userid=wc.external_userid, welcome_code=code,
                          text=(text or {}).get("content"), attachments=attachments)
    return {}


def _template_body(body: dict) -> dict[str, Any]:
    # doc 92366's limits for a template (not a welcome message's 4000): text 3000 bytes, link title 128
    # and desc 512, miniprogram title 64. Which errcode WeCom gives is not documented: 40058.
    text = _text(body, limit_bytes=3000)
    media = {k: body[k] for k in ("image", "link", "miniprogram", "file", "video") if body.get(k)}
    if len(media) > 1:
        raise ApiFailure(41064, "only one attachment allowed")
    for kind, field, limit in (("link", "title", 128), ("link", "desc", 512), ("miniprogram", "title", 64)):
        value = (media.get(kind) or {}).get(field) if isinstance(media.get(kind), dict) else None
        if isinstance(value, str) and _utf8_len(value) > limit:
            raise ApiFailure(40058, f"invalid {kind}.{field}: longer than {limit} bytes")
    if not (text and text.get("content")) and not media:
        raise ApiFailure(44004, "empty content")
    out = dict(media)
    if text:
        out["text"] = text
    return out


@route("externalcontact/group_welcome_template/add")
def add_group_welcome_template(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    if len(corp.group_welcome_templates) >= corp.settings.group_welcome_template_limit:
        raise ApiFailure(41055, "group welcome template count reached limit")  # max 100
    template = _template_body(body)
    template_id = api.sb.world.new_id("msg", 30)
    template["agentid"] = body.get("agentid")
    corp.group_welcome_templates[template_id] = template
    return {"template_id": template_id}


def _template(corp: Corp, body: dict) -> tuple[str, dict[str, Any]]:
    template_id = body.get("template_id")
    if not template_id or template_id not in corp.group_welcome_templates:
        raise ApiFailure(40058, "invalid template_id")
    return template_id, corp.group_welcome_templates[template_id]


@route("externalcontact/group_welcome_template/edit")
def edit_group_welcome_template(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    template_id, old = _template(corp, body)
    if old.get("agentid") != body.get("agentid"):  # apps edit only their own (41058)
        raise ApiFailure(41058, "no permission to edit this template")
    new = _template_body(body)
    new["agentid"] = old.get("agentid")
    corp.group_welcome_templates[template_id] = new
    return {}


@route("externalcontact/group_welcome_template/get")
def get_group_welcome_template(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    _, template = _template(corp, body)
    return {k: v for k, v in template.items() if k != "agentid"}


@route("externalcontact/group_welcome_template/del")
def del_group_welcome_template(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    template_id, old = _template(corp, body)
    if old.get("agentid") != body.get("agentid"):
        raise ApiFailure(41058, "no permission to delete this template")
    del corp.group_welcome_templates[template_id]
    return {}


# -- corp tags (wecom-api.md 3.6; doc 92117) ----------------------------------------------------
def _group_json(group: TagGroup, tags: list[Tag] | None = None) -> dict[str, Any]:
    return {"group_id": group.group_id, "group_name": group.name, "create_time": group.create_time,
            "order": group.order,
            "tag": [{"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order}
                    for t in (tags if tags is not None else group.tags.values())]}


@route("externalcontact/get_corp_tag_list")
def get_corp_tag_list(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    group_ids = _list(body.get("group_id"), "group_id")
    tag_ids = _list(body.get("tag_id"), "tag_id")
    if group_ids:  # group_id wins over tag_id
        groups = [_group_json(corp.tag_groups[g]) for g in group_ids if g in corp.tag_groups]
    elif tag_ids:
        groups = []
        for group in corp.tag_groups.values():
            tags = [t for t in group.tags.values() if t.id in tag_ids]
            if tags:
                groups.append(_group_json(group, tags))
    else:
        groups = [_group_json(g) for g in corp.tag_groups.values()]
    return {"tag_group": groups}


@route("externalcontact/add_corp_tag")
def add_corp_tag(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    tags = _list(body.get("tag"), "tag")
    if not tags:
        raise ApiFailure(41018, "missing tag name")
    for item in tags:
        name = item.get("name") if isinstance(item, dict) else None
        if not name:
            raise ApiFailure(41018, "missing tag name")
        _check_len(name, 30, "tag name", 40072)
    if corp.tag_count() + len(tags) > corp.settings.corp_tag_limit:
        raise ApiFailure(40126, "corp tag count reached limit 3000")  # errcode 40126
    group: TagGroup | None = None
    if body.get("group_id"):
        group = corp.tag_groups.get(body["group_id"])
        if group is None:
            raise ApiFailure(40068, "invalid tag group id")
    elif body.get("group_name"):
        _check_len(body["group_name"], 30, "group name", 40072)
        # An existing group name adds the tags to that group (doc 92117).
        group = next((g for g in corp.tag_groups.values() if g.name == body["group_name"]), None)
        if group is None:
            group = TagGroup(api.sb.world.new_id("et", 22), body["group_name"], api.now,
                             int(body.get("order") or 0))
            corp.tag_groups[group.group_id] = group
    else:
        raise ApiFailure(41018, "missing group_id or group_name")
    names = [t.name for t in group.tags.values()]
    created = []
    for item in tags:
        if item["name"] in names:
            raise ApiFailure(40071, f"tag name {item['name']!r} exists in the group")
        names.append(item["name"])
    for item in tags:
        tag = Tag(api.sb.world.new_id("et", 22), item["name"], group.group_id, api.now,
                  int(item.get("order") or 0))
        group.tags[tag.id] = tag
        created.append(tag)
    return {"tag_group": _group_json(group, created)}


@route("externalcontact/edit_corp_tag")
def edit_corp_tag(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    obj_id = body.get("id")
    if not obj_id:
        raise ApiFailure(40068, "missing id")
    if "name" in body:
        _check_len(body["name"], 30, "name", 40072)
    if obj_id in corp.tag_groups:
        group = corp.tag_groups[obj_id]
        group.name = body.get("name", group.name)
        group.order = int(body.get("order", group.order))
        return {}
    tag = corp.tag(obj_id)
    if tag is None:
        raise ApiFailure(40068, "invalid tag id")
    if "name" in body and any(t.name == body["name"] and t.id != tag.id
                              for t in corp.tag_groups[tag.group_id].tags.values()):
        raise ApiFailure(40071, "tag name exists in the group")
    tag.name = body.get("name", tag.name)
    tag.order = int(body.get("order", tag.order))
    return {}


@route("externalcontact/del_corp_tag")
def del_corp_tag(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    tag_ids = _list(body.get("tag_id"), "tag_id")
    group_ids = _list(body.get("group_id"), "group_id")
    if not tag_ids and not group_ids:
        raise ApiFailure(40068, "missing tag_id and group_id")
    for tag_id in tag_ids:
        if corp.tag(tag_id) is None:
            raise ApiFailure(40068, f"invalid tag id {tag_id}")
    for group_id in group_ids:
        if group_id not in corp.tag_groups:
            raise ApiFailure(40068, f"invalid group id {group_id}")
    gone = set(tag_ids)
    for group_id in group_ids:
        gone.update(corp.tag_groups.pop(group_id).tags)
    for tag_id in tag_ids:
        tag = corp.tag(tag_id)
        if tag:
            group = corp.tag_groups[tag.group_id]
            del group.tags[tag_id]
            if not group.tags:  # deleting a group's last tag deletes the group
                del corp.tag_groups[group.group_id]
    for rel in corp.relations.values():
        rel.tags = [t for t in rel.tags if t not in gone]
    return {}


@route("externalcontact/mark_tag")
def mark_tag(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    userid = body.get("userid")
    ext = body.get("external_userid")
    if not userid:
        raise ApiFailure(41009, "missing userid")
    if not ext:
        raise ApiFailure(41035, "missing external userid")
    add = _list(body.get("add_tag"), "add_tag")
    remove = _list(body.get("remove_tag"), "remove_tag")
    if not add and not remove:
        raise ApiFailure(40058, "invalid add_tag/remove_tag: both empty")
    rel = api.relation(corp, userid, ext)  # 84061 if gone
    for tag_id in add + remove:
        if corp.tag(tag_id) is None:
            raise ApiFailure(40068, f"invalid tag id {tag_id}")
    rel.tags = [t for t in rel.tags if t not in remove] + [t for t in add if t not in rel.tags]
    api.sb.journal.record("tag_mark", corp_id=corp.corp_id, at=api.sb.clock(), source="api",
                          userid=userid, external_userid=ext, add_tag=add, remove_tag=remove)
    return {}


# -- customer groups (wecom-api.md 3.7; doc 93414 / 92122) ---------------------------------------
@route("externalcontact/groupchat/list")
def groupchat_list(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    limit = body.get("limit")
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ApiFailure(40058, "invalid limit: 1..1000")
    owners = None
    if body.get("owner_filter"):
        owners = _list(body["owner_filter"].get("userid_list"), "userid_list")
        if len(owners) > 100:
            raise ApiFailure(40058, "invalid userid_list: more than 100")
    elif sum(1 for s in corp.staff.values() if s.customer_contact) > 1000:
        raise ApiFailure(81017, "too many members: use owner_filter")  # doc 93414
    status_filter = body.get("status_filter", 0)
    chats = [c for c in corp.chats.values() if c.customer_group
             and (owners is None or c.owner in owners)]

    def status(chat: GroupChat) -> int:
        owner = corp.staff.get(chat.owner)
        return 1 if owner is None or owner.resigned else 0

    if status_filter:
        chats = [c for c in chats if status(c) == status_filter]
    page, nxt = _page(chats, body.get("cursor"), limit)
    return {"group_chat_list": [{"chat_id": c.chat_id, "status": status(c)} for c in page],
            "next_cursor": nxt}


@route("externalcontact/groupchat/get")
def groupchat_get(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    chat = corp.chats.get(body.get("chat_id") or "")
    if chat is None:
        raise ApiFailure(40050, "chatid not exist")
    if not chat.customer_group:
        raise ApiFailure(90501, "not a customer group")
    need_name = bool(body.get("need_name"))
    members = []
    for m in chat.members.values():
        item = {k: v for k, v in m.items() if v is not None and k != "name"}
        if need_name and m.get("name"):
            item["name"] = m["name"]
        members.append(item)
    return {"group_chat": {"chat_id": chat.chat_id, "name": chat.name, "owner": chat.owner,
                           "create_time": chat.create_time, "notice": chat.notice,
                           "member_list": members,
                           "admin_list": [{"userid": u} for u in chat.admin_list],
                           "member_version": chat.member_version}}


def _transfer_groups(api: Api, corp: Corp, body: dict, *, onjob: bool) -> dict:
    chat_ids = _list(body.get("chat_id_list"), "chat_id_list")
    if not 1 <= len(chat_ids) <= 100:
        raise ApiFailure(40058, "invalid chat_id_list: 1..100")
    new_owner = api.staff(corp, body.get("new_owner"))
    if not new_owner.activated or not new_owner.customer_contact:
        raise ApiFailure(84074, "new owner has no external contact permission")
    failed = []
    for chat_id in chat_ids:
        chat = corp.chats.get(chat_id)
        old_owner = corp.staff.get(chat.owner) if chat else None
        if chat is None or not chat.customer_group:
            failed.append({"chat_id": chat_id, "errcode": 90501, "errmsg": "not a customer group"})
        elif not onjob and old_owner is not None and not old_owner.resigned:
            failed.append({"chat_id": chat_id, "errcode": 90500, "errmsg": "owner not resigned"})
        elif onjob and len([t for t in chat.transfers if api.now - t < 90 * 86400]) >= 2:
            failed.append({"chat_id": chat_id, "errcode": 40128, "errmsg": "transferred too often"})
        else:
            chat.owner = new_owner.userid
            chat.transfers.append(api.now)
            chat.version += 1
    api.sb.journal.record("group_transfer", corp_id=corp.corp_id, at=api.now, onjob=onjob,
                          new_owner=new_owner.userid, chat_id_list=chat_ids, failed=failed)
    return {"failed_chat_list": failed}


@route("externalcontact/groupchat/transfer")
def groupchat_transfer(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _transfer_groups(api, corp, body, onjob=False)


@route("externalcontact/groupchat/onjob_transfer")
def groupchat_onjob_transfer(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _transfer_groups(api, corp, body, onjob=True)


# -- group codes 「加入群聊」 (wecom-api.md 3.4; doc 92229 / 99547) --------------------------------
JOIN_WAY_FIELDS = ("scene", "remark", "auto_create_room", "room_base_name", "room_base_id",
                   "chat_id_list", "state", "mark_source")


def _validate_join_way(corp: Corp, way: dict[str, Any]) -> None:
    if way.get("scene") not in (1, 2):
        raise ApiFailure(41040, "invalid scene")
    chat_ids = _list(way.get("chat_id_list"), "chat_id_list")
    if not chat_ids:
        raise ApiFailure(40058, "invalid chat_id_list: empty")
    if len(chat_ids) > 5:
        raise ApiFailure(41091, "join way can hold at most 5 groups")  # errcode 41091
    for chat_id in chat_ids:
        chat = corp.chats.get(chat_id)
        if chat is None:
            raise ApiFailure(40050, f"chatid {chat_id} not exist")
        if not chat.customer_group:
            raise ApiFailure(90501, "not a customer group")
    _check_len(way.get("state"), 30, "state")
    _check_len(way.get("room_base_name"), 40, "room_base_name")
    if way.get("auto_create_room") not in (0, 1):
        raise ApiFailure(40058, "invalid auto_create_room")
    if way.get("remark"):
        way["remark"] = str(way["remark"])[:30]  # remark is cut at 30 (doc 99547)


@route("externalcontact/groupchat/add_join_way")
def add_join_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = {k: body[k] for k in JOIN_WAY_FIELDS if k in body}
    way.setdefault("auto_create_room", 1)  # default 1
    _validate_join_way(corp, way)
    api.use_way_slot(corp)  # shares the 500,000 with contact ways
    config_id = api.sb.world.new_id("", 32)
    way["config_id"] = config_id
    if way["scene"] == 2:
        way["qr_code"] = f"{api.sb.public_url}/sandbox/qr/{corp.corp_id}/{config_id}"
    way["room_seq"] = 1
    corp.join_ways[config_id] = way
    return {"config_id": config_id}


def _join_way(corp: Corp, body: dict) -> dict[str, Any]:
    config_id = body.get("config_id")
    if not config_id:
        raise ApiFailure(41043, "missing config_id")
    way = corp.join_ways.get(config_id)
    if way is None:
        raise ApiFailure(41044, "invalid config_id")
    return way


@route("externalcontact/groupchat/get_join_way")
def get_join_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = _join_way(corp, body)
    return {"join_way": {k: v for k, v in way.items() if k != "room_seq"}}


@route("externalcontact/groupchat/update_join_way")
def update_join_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    old = _join_way(corp, body)
    way = {k: body[k] for k in JOIN_WAY_FIELDS if k in body}  # full overwrite (doc 92229)
    way.setdefault("auto_create_room", 1)
    _validate_join_way(corp, way)
    way.update(config_id=old["config_id"], room_seq=old.get("room_seq", 1))
    if way["scene"] == 2:
        way["qr_code"] = old.get("qr_code") or (
            f"{api.sb.public_url}/sandbox/qr/{corp.corp_id}/{old['config_id']}")
    corp.join_ways[old["config_id"]] = way
    return {}


@route("externalcontact/groupchat/del_join_way")
def del_join_way(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    way = _join_way(corp, body)
    del corp.join_ways[way["config_id"]]
    return {}


# -- app messages 应用消息 (message/send, doc 90236) ----------------------------------------------------
@route("message/send")
def message_send(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    """A text message from the corp's app to staff members: `agentid` must be the corp's app
    (40056), and the token's app, if it is an agent app, that one (301002, crib section 5);
    `touser` "a|b" (unknown members come back in `invaliduser`, not as an error); text <= 2048 bytes."""
    try:
        agentid = int(body.get("agentid"))
    except (TypeError, ValueError):
        raise ApiFailure(40056, "invalid agentid") from None
    if str(agentid) != str(corp.agent_id):
        raise ApiFailure(40056, "invalid agentid")
    if body.get("msgtype") != "text":
        raise ApiFailure(40008, "invalid message type")  # the sandbox speaks text only
    text = _text(body, limit_bytes=2048)
    if not text or not text.get("content"):
        raise ApiFailure(44004, "empty content")
    users = [u for u in str(body.get("touser") or "").split("|") if u]
    if not users:
        raise ApiFailure(40058, "invalid touser")
    invalid = [u for u in users if u not in corp.staff or corp.staff[u].resigned]
    for userid in users:
        if userid not in invalid:
            api.sb.journal.record("app_message", corp_id=corp.corp_id, at=api.sb.clock(), userid=userid,
                                  agentid=agentid, text=text["content"])
    return {"invaliduser": "|".join(invalid), "msgid": api.sb.world.new_id("msg", 24)}


# -- broadcasts 企业群发 (wecom-api.md 3.8; doc 92135 / 96355) -------------------------------------
@route("externalcontact/add_msg_template")
def add_msg_template(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    chat_type = body.get("chat_type", "single")
    if chat_type not in ("single", "group"):
        raise ApiFailure(40058, "invalid chat_type")
    text = _text(body)
    attachments = _check_attachments(body.get("attachments"))
    if not (text and text.get("content")) and not attachments:
        raise ApiFailure(44004, "empty content")
    api.check_media(corp, attachments)
    sender = body.get("sender")
    if sender:
        api.staff(corp, sender)
    targets: dict[str, list[str]] = {}
    fail_list: list[str] = []
    if chat_type == "single":
        ext_ids = _list(body.get("external_userid"), "external_userid")
        if len(ext_ids) > 10_000:  # <= 10,000 customers
            raise ApiFailure(40058, "invalid external_userid: more than 10000")
        tag_filter = body.get("tag_filter") or {}
        if not ext_ids and not sender and not tag_filter:
            raise ApiFailure(41048, "no customer to send to")
        candidates = ext_ids
        if not candidates:  # sender's (or everyone's) customers
            rels = [r for r in corp.relations.values() if r.status == "active"
                    and (not sender or r.userid == sender)]
            candidates = sorted({r.external_userid for r in rels})
        for group in tag_filter.get("group_list", []) if isinstance(tag_filter, dict) else []:
            wanted = set(group.get("tag_list") or [])
            candidates = [e for e in candidates if any(
                wanted & set(r.tags) for r in corp.relations_of_customer(e, ("active",)))]
        for ext in candidates:
            rels = [r for r in corp.relations_of_customer(ext, ("active",))
                    if not sender or r.userid == sender]
            if not rels:
                fail_list.append(ext)
                continue
            # The task goes to the member who last interacted with the customer (doc 92135).
            rel = max(rels, key=lambda r: r.createtime)
            targets.setdefault(rel.userid, []).append(ext)
    else:
        if not sender:
            raise ApiFailure(41009, "missing sender: required for group broadcasts")
        chat_ids = _list(body.get("chat_id_list"), "chat_id_list")
        if len(chat_ids) > 2_000:  # <= 2,000 groups
            raise ApiFailure(40058, "invalid chat_id_list: more than 2000")
        chats = chat_ids or [c.chat_id for c in corp.chats.values() if c.owner == sender]
        for chat_id in chats:
            chat = corp.chats.get(chat_id)
            if chat is None or chat.owner != sender:
                fail_list.append(chat_id)
            else:
                targets.setdefault(sender, []).append(chat_id)
    if not targets:
        raise ApiFailure(41048, "no customer to send to")
    msgid = api.sb.world.new_id("msg", 30)
    corp.mass_messages[msgid] = MassMessage(
        msgid=msgid, chat_type=chat_type, creator=sender, create_time=api.now, create_type=0,
        text=text, attachments=attachments, targets=targets,
        task_status={u: 0 for u in targets},
        results={(u, t): (0, None) for u, ts in targets.items() for t in ts})
    return {"msgid": msgid, "fail_list": fail_list}


def _mass(corp: Corp, body: dict) -> MassMessage:
    msgid = body.get("msgid")
    if not msgid:
        raise ApiFailure(41046, "missing msgid")
    msg = corp.mass_messages.get(msgid)
    if msg is None:
        raise ApiFailure(41047, "invalid msgid")
    return msg


@route("externalcontact/get_groupmsg_list_v2")
def get_groupmsg_list_v2(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    chat_type = body.get("chat_type")
    if chat_type not in ("single", "group"):
        raise ApiFailure(40058, "invalid chat_type")
    start, end = body.get("start_time"), body.get("end_time")
    if not isinstance(start, int) or not isinstance(end, int) or end < start:
        raise ApiFailure(40058, "invalid start_time/end_time")
    if end - start > 31 * 86400:  # span <= 1 month
        raise ApiFailure(40058, "invalid time range: more than one month")
    limit = body.get("limit", 50)
    if not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ApiFailure(40058, "invalid limit: 1..100")
    filter_type = body.get("filter_type", 2)
    msgs = [m for m in corp.mass_messages.values() if m.chat_type == chat_type
            and start <= m.create_time <= end
            and (not body.get("creator") or m.creator == body["creator"])
            and (filter_type == 2 or m.create_type == filter_type)]
    page, nxt = _page(msgs, body.get("cursor"), limit)
    out = []
    for m in page:
        item: dict[str, Any] = {"msgid": m.msgid, "create_time": str(m.create_time),
                                "create_type": m.create_type, "attachments": m.attachments}
        if m.creator:
            item["creator"] = m.creator
        if m.text:
            item["text"] = m.text
        out.append(item)
    return {"group_msg_list": out, "next_cursor": nxt}


@route("externalcontact/get_groupmsg_task")
def get_groupmsg_task(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    msg = _mass(corp, body)
    limit = body.get("limit", 500)
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ApiFailure(40058, "invalid limit: 1..1000")
    users = sorted(msg.task_status)
    page, nxt = _page(users, body.get("cursor"), limit)
    return {"task_list": [{"userid": u, "status": msg.task_status[u],
                           **({"send_time": msg.task_time[u]} if u in msg.task_time else {})}
                          for u in page], "next_cursor": nxt}


@route("externalcontact/get_groupmsg_send_result")
def get_groupmsg_send_result(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    msg = _mass(corp, body)
    userid = body.get("userid")
    if not userid:
        raise ApiFailure(41009, "missing userid")
    limit = body.get("limit", 500)
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ApiFailure(40058, "invalid limit: 1..1000")
    key = "chat_id" if msg.chat_type == "group" else "external_userid"
    rows = [(t, s) for (u, t), s in sorted(msg.results.items()) if u == userid]
    page, nxt = _page(rows, body.get("cursor"), limit)
    return {"send_list": [{key: t, "userid": userid, "status": st,
                           **({"send_time": when} if when else {})} for t, (st, when) in page],
            "next_cursor": nxt}


@route("externalcontact/remind_groupmsg_send")
def remind_groupmsg_send(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    msg = _mass(corp, body)
    if msg.cancelled:
        raise ApiFailure(41093, "mass message cancelled")
    recent = [t for t in msg.reminders if api.sb.clock() - t < 86400]
    if len(recent) >= 3:  # 3 per 24 h
        raise ApiFailure(41094, "remind frequency limited")
    msg.reminders = recent + [api.sb.clock()]
    return {}


@route("externalcontact/cancel_groupmsg_send")
def cancel_groupmsg_send(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    msg = _mass(corp, body)
    msg.cancelled = True
    return {}


def quota_allows(api: Api, corp: Corp, target: str, *, group: bool) -> bool:
    """WeCom's receive quota: over-quota recipients are skipped silently (doc 92135)."""
    quota = corp.settings.mass_message_quota
    now = dt.datetime.fromtimestamp(api.sb.clock(), dt.timezone(dt.timedelta(hours=8)))
    if quota == "day":
        since, limit = now.replace(hour=0, minute=0, second=0, microsecond=0), 1
    elif quota == "week":
        since = (now - dt.timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0,
                                                                 microsecond=0)
        limit = 7
    else:
        since = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        limit = calendar.monthrange(now.year, now.month)[1] if quota == "month" else int(quota)
    key = "chat_id" if group else "external_userid"
    sent = [e for e in api.sb.journal.entries("mass_message", corp_id=corp.corp_id)
            if e.get(key) == target and e["at"] >= since.timestamp()]
    return len(sent) < limit


# -- Moments (wecom-api.md 3.9; doc 96351) ------------------------------------------------------
@route("externalcontact/add_moment_task")
def add_moment_task(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    text = body.get("text") or {}
    if len(text.get("content", "")) > 2000:
        raise ApiFailure(40058, "invalid text.content: more than 2000 characters")
    attachments = _check_attachments(body.get("attachments"))
    kinds = {a["msgtype"] for a in attachments}
    if not text.get("content") and not attachments:
        raise ApiFailure(41089, "text and attachments both empty")  # errcode 41089
    if kinds - {"image", "video", "link"} or len(kinds) > 1 or (
            kinds & {"video", "link"} and len(attachments) > 1):
        raise ApiFailure(41064, "attachments: 9 images, or 1 video, or 1 link")
    for item in attachments:
        # link.title "最多64个字节" (doc 95094 as the SDKs quote it: WxJava, PHP, Perl): UTF-8 bytes. Which
        # errcode WeCom gives is not documented: 40058 (invalid parameter) as for the text's length.
        # link.url: the doc names no limit here (other link messages: 2048 bytes), so none is enforced.
        if item["msgtype"] == "link" and _utf8_len(str(item["link"].get("title") or "")) > 64:
            raise ApiFailure(40058, "invalid link title size: more than 64 bytes")
    api.check_media(corp, attachments, moments=True)
    vr = body.get("visible_range") or {}
    senders = (vr.get("sender_list") or {}).get("user_list") or []
    if len(senders) > 100_000:
        raise ApiFailure(40058, "invalid user_list")
    tag_list = (vr.get("external_contact_list") or {}).get("tag_list") or []
    jobid = api.sb.world.new_id("job", 30)
    valid = [u for u in senders if u in corp.staff] or [s.userid for s in corp.staff.values()
                                                        if s.customer_contact]
    moment_id = api.sb.world.new_id("mom", 30)
    corp.moment_tasks[jobid] = {
        "status": 3, "type": "add_moment_task",
        "result": {"errcode": 0, "errmsg": "ok", "moment_id": moment_id,
                   "invalid_sender_list": {"user_list": [u for u in senders if u not in corp.staff],
                                           "department_list": []},
                   "invalid_external_contact_list": {
                       "tag_list": [t for t in tag_list if corp.tag(t) is None]}}}
    for userid in valid:
        api.sb.journal.record("moment", corp_id=corp.corp_id, at=api.sb.clock(), userid=userid,
                              moment_id=moment_id, text=text.get("content"),
                              attachments=attachments, tag_list=tag_list)
    return {"jobid": jobid}


@route("externalcontact/get_moment_task_result", "GET")
def get_moment_task_result(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    task = corp.moment_tasks.get(query.get("jobid", ""))
    if task is None:
        raise ApiFailure(40058, "invalid jobid")
    return dict(task)


# -- handover 继承 (wecom-api.md 3.10; doc 96325 / 96331) -----------------------------------------
def _transfer(api: Api, corp: Corp, body: dict, *, resigned: bool) -> dict:
    handover = api.staff(corp, body.get("handover_userid"))
    takeover = api.staff(corp, body.get("takeover_userid"))
    if resigned and not handover.resigned:
        raise ApiFailure(40097, "handover user not resigned")  # errcode 40097
    if not resigned and handover.resigned:  # a departed member is out of the directory
        raise ApiFailure(40003, f"invalid userid {handover.userid!r}")
    if not takeover.customer_contact or takeover.resigned:
        raise ApiFailure(84074, "takeover user has no external contact permission")
    ext_ids = _list(body.get("external_userid"), "external_userid")
    if not 1 <= len(ext_ids) <= 100:  # <= 100 per call
        raise ApiFailure(40058, "invalid external_userid: 1..100")
    msg = body.get("transfer_success_msg")
    _check_len(msg, 200, "transfer_success_msg")
    out = []
    now = api.sb.clock()
    for ext in ext_ids:
        rel = corp.relations.get((ext, handover.userid))
        if ext not in corp.customers:
            out.append({"external_userid": ext, "errcode": 40096})
        elif rel is None or rel.status not in ("active", "lost"):
            out.append({"external_userid": ext, "errcode": 84061})
        elif not resigned and len([t for t in corp.transfer_log.get(ext, [])
                                   if now - t < 90 * 86400]) >= 2:
            out.append({"external_userid": ext, "errcode": 40128})  # 2 per 90 days
        elif any(t.external_userid == ext and t.status == 2 for t in corp.transfers):
            out.append({"external_userid": ext, "errcode": 40058})
        else:
            corp.transfers.append(Transfer(handover.userid, takeover.userid, ext, now, resigned,
                                           message=msg))
            if not resigned:
                corp.transfer_log.setdefault(ext, []).append(now)
            out.append({"external_userid": ext, "errcode": 0})  # 0 = started
    api.sb.journal.record("transfer_call", corp_id=corp.corp_id, at=now, resigned=resigned,
                          handover_userid=handover.userid, takeover_userid=takeover.userid, message=msg,
                          external_userid=ext_ids, errcodes={o["external_userid"]: o["errcode"] for o in out})
    return {"customer": out}


@route("externalcontact/transfer_customer")
def transfer_customer(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _transfer(api, corp, body, resigned=False)


@route("externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _transfer(api, corp, body, resigned=True)


def _transfer_result(api: Api, corp: Corp, body: dict, *, resigned: bool) -> dict:
    handover, takeover = body.get("handover_userid"), body.get("takeover_userid")
    if not handover or not takeover:
        raise ApiFailure(41009, "missing handover_userid/takeover_userid")
    rows = [t for t in corp.transfers if t.handover_userid == handover
            and t.takeover_userid == takeover and t.resigned == resigned]
    page, nxt = _page(rows, body.get("cursor"), 1000)
    return {"customer": [{"external_userid": t.external_userid, "status": t.status,
                          **({"takeover_time": t.takeover_time} if t.takeover_time else {})}
                         for t in page], "next_cursor": nxt}


@route("externalcontact/transfer_result")
def transfer_result(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _transfer_result(api, corp, body, resigned=False)


@route("externalcontact/resigned/transfer_result")
def resigned_transfer_result(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _transfer_result(api, corp, body, resigned=True)


# -- temporary media (doc 90389 media/upload; limits: doc 90313 "上传的媒体文件限制") -----------------
MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024,
                   "file": 20 * 1024 * 1024}
MEDIA_SIZE_ERRCODE = {"image": 40009, "video": 40011}  # else 40006 不合法的文件大小
MEDIA_MIN_BYTES = 6  # "所有文件size必须大于5个字节"
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPG, PNG


@route("media/upload", method="MULTIPART")
def upload_media(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    return _store_media(api, corp, query.get("type"), body)


# media/upload_attachment (doc 95098; WxJava WxCpMediaService.uploadAttachment, go-workwx
# UploadAttachment): media_type image | video | file, attachment_type 1 Moments / 2 product album; a
# media id valid 3 days; add_moment_task takes only these (attachment_type 1).
ATTACHMENT_MEDIA_TYPES = ("image", "video", "file")
UPLOAD_FOR_MOMENTS, UPLOAD_ATTACHMENT_TYPES = 1, (1, 2)


@route("media/upload_attachment", method="MULTIPART")
def upload_attachment(api: Api, corp: Corp, body: dict, query: dict) -> dict:
    kind = query.get("media_type")
    if kind not in ATTACHMENT_MEDIA_TYPES:
        raise ApiFailure(40004, "invalid media_type")
    try:
        attachment_type = int(query.get("attachment_type", ""))
    except ValueError:
        attachment_type = 0
    if attachment_type not in UPLOAD_ATTACHMENT_TYPES:
        raise ApiFailure(40058, "invalid attachment_type")
    return _store_media(api, corp, kind, body, attachment_type=attachment_type)


def _store_media(api: Api, corp: Corp, kind: Any, body: dict, *, attachment_type: int | None = None) -> dict:
    """The rules both uploads share (doc 90313): the part "media", sizes, JPG / PNG images."""
    if kind not in MEDIA_MAX_BYTES:
        raise ApiFailure(40004, "invalid media type")  # errcode 40004 不合法的媒体文件类型
    part = body.get("media")
    if part is None:
        raise ApiFailure(41005, "media data missing")  # errcode 41005 缺少多媒体文件数据
    content: bytes = part["content"]
    if len(content) < MEDIA_MIN_BYTES:
        raise ApiFailure(40006, "invalid file size")
    if len(content) > MEDIA_MAX_BYTES[kind]:
        raise ApiFailure(MEDIA_SIZE_ERRCODE.get(kind, 40006), f"invalid {kind} size")
    if kind == "image" and not content.startswith(_IMAGE_MAGIC):
        raise ApiFailure(40005, "invalid file type: images are JPG or PNG")  # errcode 40005
    media = Media(media_id=api.sb.world.new_id("3m", 64), kind=kind, filename=part["filename"],
                  size=len(content), created_at=api.now, attachment_type=attachment_type)
    corp.media[media.media_id] = media
    return {"type": kind, "media_id": media.media_id, "created_at": str(media.created_at)}
