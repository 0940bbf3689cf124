"""/toolbar/{corp_id}: the staff chat-toolbar page and the few routes it calls (issue #15).

No API key: the page proves who the staff member is with WeCom's OAuth code and then carries a
short-lived session token (chalicelib/toolbar/service.py says how it is signed). The page's files
are served like the console's: only files in static/, by exact name, nothing read at import time.
"""

from __future__ import annotations

import os
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.core import Call, HttpError, Lazy, endpoint, register_error, validation_details

bp = Blueprint(__name__)

SVC = "chalicelib.toolbar.service"
register_error(f"{SVC}:SessionInvalid", 401, "session_invalid")
register_error(f"{SVC}:CodeInvalid", 401, "oauth_code_invalid")
register_error(f"{SVC}:NotStaff", 403, "not_staff")
register_error(f"{SVC}:UrlNotAllowed", 400, "url_not_allowed")
register_error(f"{SVC}:NotVisible", 404, "not_found")
register_error(f"{SVC}:AgentRequired", 409, "agent_required")
SESSION_ERRORS = (f"{SVC}:SessionInvalid", f"{SVC}:NotVisible")

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
# WeCom's JS-SDK scripts (doc 90514): in the sandbox, its stand-in wx instead.
WECOM_JSSDK = ("https://res.wx.qq.com/open/js/jweixin-1.2.0.js", "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def _security(script_origins: str = "", connect_origins: str = "") -> dict[str, str]:
    """Everything from this origin, but the JS-SDK's scripts (and, for the sandbox's stand-in, its calls)."""
    return {"Content-Security-Policy": f"default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
                                       f"script-src 'self' {script_origins}; connect-src 'self' {connect_origins}; "
                                       "object-src 'none'; base-uri 'none'", **HEADERS}


def _file(name: str, replace: dict[str, str] | None = None, security: dict[str, str] | None = None) -> Response:
    if name.startswith(".") or os.path.splitext(name)[1] not in TYPES or name not in os.listdir(STATIC):
        return Response(body="not found", status_code=404, headers={"Content-Type": "text/plain"})
    with open(os.path.join(STATIC, name), encoding="utf-8") as f:
        body = f.read()
    for placeholder, value in (replace or {}).items():
        body = body.replace(placeholder, value)
    return Response(body=body, status_code=200,
                    headers={"Content-Type": TYPES[os.path.splitext(name)[1]], **(security or _security())})


def _wecom_web() -> tuple[str, tuple[str, ...], str]:
    """WeCom's web side for this deployment: the OAuth host, the JS-SDK scripts, and an origin the
    page may call (none for WeCom). WECOM_API_BASE pointing elsewhere than WeCom (the sandbox):
    its host for both, and its stand-in wx, which asks the sandbox to check the signature."""
    from urllib.parse import urlsplit

    from chalicelib.platform.settings import WECOM_PRODUCTION_API_BASE, get_settings

    base = get_settings().wecom_api_base
    if base == WECOM_PRODUCTION_API_BASE:
        return "https://open.weixin.qq.com", WECOM_JSSDK, ""
    host = base.removesuffix("/cgi-bin")
    parts = urlsplit(host)
    return host, (f"{host}/sandbox/jssdk.js",), f"{parts.scheme}://{parts.netloc}"


@bp.route("/toolbar/{corp_id}", methods=["GET"])
def toolbar_page(corp_id: str) -> Response:
    import html
    from urllib.parse import urlsplit

    from chalicelib.corps import items as corp_items

    corp = corp_items.get_corp(corp_id)
    if corp is None:
        return Response(body="not found", status_code=404, headers={"Content-Type": "text/plain"})
    oauth, scripts, calls = _wecom_web()
    origins = " ".join(sorted({"{0.scheme}://{0.netloc}".format(urlsplit(s)) for s in scripts}))
    tags = "\n  ".join(f'<script src="{html.escape(s)}"></script>' for s in scripts)
    return _file("index.html", {"{{CORP_ID}}": html.escape(corp_id), "{{AGENT_ID}}": html.escape(corp.agent_id or ""),
                                "{{OAUTH_BASE}}": html.escape(oauth), "{{JSSDK}}": tags},
                 security=_security(origins, calls))


@bp.route("/toolbar-assets/{name}", methods=["GET"])
def toolbar_asset(name: str) -> Response:
    return _file(name)


def _staff(call: Call) -> str:
    from chalicelib.toolbar import service as toolbar

    return toolbar.staff_of(call.params["corp_id"], bp.current_request.headers.get("authorization"))


@endpoint(bp, "POST", "/toolbar/{corp_id}/session", auth="public", summary="Toolbar: exchange WeCom's OAuth "
          "code for a staff session", body=Lazy(f"{SVC}:SessionStart"), response=Lazy(f"{SVC}:Session"),
          errors=(f"{SVC}:CodeInvalid", f"{SVC}:NotStaff", f"{SVC}:NotVisible", "wecom"))
def toolbar_session(call: Call) -> Any:
    from chalicelib.toolbar import service as toolbar

    return toolbar.start_session(call.params["corp_id"], call.body)


@endpoint(bp, "GET", "/toolbar/{corp_id}/config", auth="public", summary="Toolbar: wx.config / wx.agentConfig "
          "signatures for the page's own URL", query=Lazy(f"{SVC}:ConfigQuery"), response=Lazy(f"{SVC}:JsConfig"),
          errors=(*SESSION_ERRORS, f"{SVC}:UrlNotAllowed", f"{SVC}:AgentRequired", "wecom"))
def toolbar_config(call: Call) -> Any:
    from chalicelib.toolbar import service as toolbar

    _staff(call)
    return toolbar.js_config(call.params["corp_id"], call.query.url, base_url=call.base_url)


@endpoint(bp, "GET", "/toolbar/{corp_id}/customers/{customer_id}", auth="public",
          summary="Toolbar: the customer in the chat, if the staff member has a relation with them",
          response=Lazy(f"{SVC}:ToolbarCustomer"), errors=SESSION_ERRORS)
def toolbar_customer(call: Call) -> Any:
    from chalicelib.toolbar import service as toolbar

    return toolbar.customer(call.params["corp_id"], _staff(call), call.params["customer_id"])


@endpoint(bp, "POST", "/toolbar/{corp_id}/customers/{customer_id}/tags", auth="public",
          summary="Toolbar: add / remove tags on the staff member's relation with the customer",
          body=Lazy(f"{SVC}:ToolbarTagChange"), response=Lazy("chalicelib.tags.service:TagChangeResult"),
          errors=(*SESSION_ERRORS, "chalicelib.tags.service:UnknownTags", (409, "no_relation"), "wecom"))
def toolbar_tag_customer(call: Call) -> Any:
    from pydantic import ValidationError

    from chalicelib.tags import service as tags
    from chalicelib.toolbar import service as toolbar

    staff_id = _staff(call)
    try:
        change = tags.CustomerTagChange(customer_id=call.params["customer_id"], staff_id=staff_id,
                                        **call.body.model_dump())
    except ValidationError as exc:
        raise HttpError(400, "validation_error", "the request body is invalid", validation_details(exc)) from exc
    result = toolbar.change_tags(call.params["corp_id"], change)
    if result.status == "no_relation":
        raise HttpError(409, "no_relation", "WeCom has no relation of yours with this customer (any more)")
    return result


@endpoint(bp, "GET", "/toolbar/{corp_id}/groups/{group_id}", auth="public",
          summary="Toolbar: the group chat, if the staff member is in it", response=Lazy(f"{SVC}:ToolbarGroup"),
          errors=SESSION_ERRORS)
def toolbar_group(call: Call) -> Any:
    from chalicelib.toolbar import service as toolbar

    return toolbar.group(call.params["corp_id"], _staff(call), call.params["group_id"])
