"""The sandbox: one ``handle(request) -> response`` serving WeCom's API and the control API.

    sb = Sandbox(clock=Clock(1_700_000_000, frozen=True))
    corp = sb.register_corp("wwtest", secrets={"contact": "s3cret"}, callback_url=...)
    transport = httpx.MockTransport(sb.handle)            # in-process, no socket
    server = serve(8700, sandbox=sb)                        # or over HTTP (sandbox/server.py)

Paths: ``.../cgi-bin/<api>`` is WeCom (any prefix before /cgi-bin, so a base URL like
``http://127.0.0.1:8700/cgi-bin`` works); ``/sandbox/...`` is the control API (docs/sandbox.md).
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import httpx

from sandbox.api import ROUTES, Api
from sandbox.clock import Clock
from sandbox.faults import Faults
from sandbox.journal import Journal
from sandbox.simulator import Deliver, Simulator
from sandbox.state import (
    OAUTH_CODE_TTL_SECONDS,
    ApiFailure,
    App,
    Corp,
    CorpSettings,
    IssuedToken,
    OAuthCode,
    SimulationError,
    Staff,
    World,
)

_AES_ALPHABET = string.ascii_letters + string.digits


class _UnknownApi(Exception):
    pass


def _multipart(request: httpx.Request) -> dict[str, Any]:
    """The parts of a multipart/form-data body: {name: {"filename", "content_type", "content"}};
    {} when the body is not multipart (WeCom then finds no media: 41005)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.content)
    parts: dict[str, Any] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[name] = {"filename": part.get_filename() or "", "content_type": part.get_content_type(),
                           "content": part.get_payload(decode=True) or b""}
    return parts


def new_aes_key() -> str:
    return "".join(secrets.choice(_AES_ALPHABET) for _ in range(43))


def _json(status: int, data: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(data, ensure_ascii=False).encode(),
                          headers={"Content-Type": "application/json; charset=UTF-8"})


class Sandbox:
    def __init__(self, *, clock: Clock | None = None, sleep: Callable[[float], None] = time.sleep,
                 deliver: Deliver | None = None, public_url: str = "http://127.0.0.1:8700",
                 seed: int = 0) -> None:
        self.world = World()
        self.clock = clock or Clock()
        self.sleep = sleep
        self.journal = Journal()
        self.faults = Faults(seed=seed)
        self.api = Api(self)
        self.simulator = Simulator(self, deliver=deliver)
        self.public_url = public_url.rstrip("/")
        self._requests: list[dict[str, Any]] = []
        self.files: dict[str, tuple[bytes, str, int]] = {}  # GET /sandbox/files/{name}: content, type, status
        self.file_requests: list[dict[str, Any]] = []

    # -- setup (Python API; the control endpoints call these) ---------------------------------------
    def register_corp(self, corp_id: str | None = None, *, name: str = "Sandbox corp",
                      secrets: dict[str, str] | None = None, callback_token: str | None = None,
                      encoding_aes_key: str | None = None, callback_url: str | None = None,
                      agent_id: str = "1000002", settings: dict[str, Any] | None = None,
                      staff: list[dict[str, Any]] | None = None,
                      apps_without_customer_contact: list[str] | None = None) -> Corp:
        import secrets as _secrets

        corp_id = corp_id or self.world.new_id("ww", 18)
        apps = {app: App(app, secret, customer_contact=app not in (apps_without_customer_contact or []))
                for app, secret in (secrets or {"contact": _secrets.token_urlsafe(32)}).items()}
        corp = Corp(corp_id=corp_id, name=name, apps=apps,
                    callback_token=callback_token or _secrets.token_hex(16),  # WeCom: 3-32 letters or digits
                    encoding_aes_key=encoding_aes_key or new_aes_key(),
                    callback_url=callback_url, agent_id=agent_id,
                    settings=CorpSettings(**(settings or {})))
        with self.world.lock:
            self.world.corps[corp_id] = corp
            for member in staff or []:
                self.add_staff(corp_id, **member)
        return corp

    def add_staff(self, corp_id: str, userid: str, *, name: str = "", activated: bool = True,
                  customer_contact: bool = True, resigned: bool = False) -> Staff:
        with self.world.lock:
            member = Staff(userid, name or userid, activated, customer_contact, resigned)
            self.world.corp(corp_id).staff[userid] = member
            return member

    def resign_staff(self, corp_id: str, userid: str) -> Staff:
        """The member leaves the corp: gone from the follow-user list, their customers listed by
        get_unassigned_list until handed over (resigned/transfer_customer)."""
        with self.world.lock:
            member = self.world.corp(corp_id).staff[userid]
            member.resigned, member.resigned_at = True, int(self.clock())
            return member

    def update_corp(self, corp_id: str, *, callback_url: str | None = None,
                    settings: dict[str, Any] | None = None) -> Corp:
        with self.world.lock:
            corp = self.world.corp(corp_id)
            if callback_url is not None:
                corp.callback_url = callback_url or None
            for key, value in (settings or {}).items():
                if not hasattr(corp.settings, key):
                    raise ValueError(f"unknown setting {key}")
                setattr(corp.settings, key, value)
            return corp

    def issue_oauth_code(self, corp_id: str, userid: str) -> str:
        """The code WeCom's OAuth redirect hands a page the staff member ``userid`` opened."""
        with self.world.lock:
            corp = self.world.corp(corp_id)
            if userid not in corp.staff or corp.staff[userid].resigned:
                raise SimulationError(f"{userid} is not a member of {corp_id}")
            code = secrets.token_urlsafe(24)
            corp.oauth_codes[code] = OAuthCode(code, userid, self.clock() + OAUTH_CODE_TTL_SECONDS)
            return code

    def js_ticket_valid(self, corp_id: str, kind: str, ticket: str) -> bool:
        """Whether WeCom would accept a wx.config ("jsapi") / wx.agentConfig ("agent_config")
        signed with ``ticket`` now (the browser's stand-in wx checks signatures with it)."""
        with self.world.lock:
            issued = self.world.corp(corp_id).js_tickets.get(ticket)
            return issued is not None and issued[0] == kind and self.clock() < issued[1]

    def open_toolbar(self, corp_id: str, userid: str, *, external_userid: str | None = None,
                     chat_id: str | None = None) -> dict[str, str | None]:
        """The WeCom client of a browser test: ``userid`` is signed in and opens the chat toolbar
        in a chat with ``external_userid`` (or in the group ``chat_id``)."""
        with self.world.lock:
            corp = self.world.corp(corp_id)
            if userid not in corp.staff:
                raise SimulationError(f"{userid} is not a member of {corp_id}")
            corp.client = {"userid": userid, "external_userid": external_userid, "chat_id": chat_id}
            return dict(corp.client)

    def check_js_signature(self, corp_id: str, *, kind: str, url: str, noncestr: str, timestamp: str,
                           signature: str, agentid: str | None = None) -> str | None:
        """Why WeCom's client would refuse wx.config ("jsapi") / wx.agentConfig ("agent_config")
        with this signature on this page, or None: it must be the JS-SDK signature (doc 90506) of
        ``url`` with a live ticket of that kind, and wx.agentConfig must name the corp's app."""
        import hashlib

        page = url.split("#", 1)[0]
        with self.world.lock:
            corp = self.world.corp(corp_id)
            if kind == "agent_config" and str(agentid or "") != corp.agent_id:
                return "invalid agentid"
            for ticket, (issued_kind, expires_at) in corp.js_tickets.items():
                text = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"
                if issued_kind == kind and self.clock() < expires_at and \
                        secrets.compare_digest(hashlib.sha1(text.encode()).hexdigest(), signature):
                    return None
        return "invalid signature"

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        """GET /connect/oauth2/authorize (WeCom's open.weixin.qq.com, doc 91022): redirects to
        ``redirect_uri`` with ``code`` and ``state``. In WeCom the signed-in staff member is the
        one the code names; here the query's ``userid``, else the one ``open_toolbar`` signed in."""
        params = request.url.params
        try:
            corp_id = params.get("appid", "")
            userid = params.get("userid") or self.world.corp(corp_id).client.get("userid") or ""
            code = self.issue_oauth_code(corp_id, userid)
        except (KeyError, SimulationError) as exc:
            return _json(400, {"error": "bad_request", "message": str(exc)})
        target = httpx.URL(params.get("redirect_uri", "")).copy_merge_params(
            {"code": code, "state": params.get("state", "")})
        return httpx.Response(302, headers={"Location": str(target)})

    def serve_file(self, name: str, content: bytes, content_type: str = "image/png", status: int = 200) -> str:
        """A file on the web (an operator's image URL): its URL, served at GET /sandbox/files/{name}
        (`status` other than 200: a server answering that, without the file)."""
        self.files[name] = (content, content_type, status)
        return f"{self.public_url}/sandbox/files/{name}"

    def reset(self) -> None:
        with self.world.lock:
            self.world.corps.clear()
            self.world.tokens.clear()
        self.journal.clear()
        self.faults.clear()
        self._requests.clear()
        self.files.clear()
        self.file_requests.clear()

    def requests(self, api: str | None = None, corp_id: str | None = None) -> list[dict[str, Any]]:
        """Every WeCom API request the sandbox saw (faulted ones included)."""
        return [r for r in list(self._requests)
                if (api is None or r["api"] == api) and (corp_id is None or r["corp_id"] == corp_id)]

    # -- the one entry point ------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/sandbox/files/") and request.method == "GET":
            name = path.removeprefix("/sandbox/files/")
            content, content_type, status = self.files.get(name, (b"", "", 404))
            self.file_requests.append({"name": name, "status": status, "at": self.clock()})
            if status != 200:
                return httpx.Response(status, content=b"no file", headers={"Content-Type": "text/plain"})
            return httpx.Response(200, content=content, headers={"Content-Type": content_type})
        if path == "/connect/oauth2/authorize" and request.method == "GET":
            return self._authorize(request)
        if path == "/sandbox/jssdk.js" and request.method == "GET":
            from pathlib import Path

            script = (Path(__file__).parent / "jssdk.js").read_text().replace("{{SANDBOX}}", self.public_url)
            return httpx.Response(200, content=script.encode(), headers={"Content-Type": "text/javascript"})
        if path.startswith("/sandbox/") or path == "/sandbox":
            response = self._control(request, path.removeprefix("/sandbox").strip("/"))
            response.headers["Access-Control-Allow-Origin"] = "*"  # the stand-in wx asks from the page's origin
            return response
        if "/cgi-bin/" not in path:
            return _json(404, {"errcode": 404, "errmsg": "not found"})
        api = path.split("/cgi-bin/", 1)[1].strip("/")
        query = dict(request.url.params)
        corp_id = self._corp_of(query)
        entry = {"api": api, "method": request.method, "at": self.clock(), "corp_id": corp_id,
                 "fault": None, "errcode": None}
        self._requests.append(entry)
        fault = self.faults.take(api, corp_id)
        if fault is not None:
            entry["fault"] = fault.kind
            if fault.kind == "errcode":
                if fault.errcode in (40014, 42001):
                    self._revoke(query.get("access_token"))
                entry["errcode"] = fault.errcode
                return _json(200, self._fail(ApiFailure(fault.errcode, "sandbox fault")))
            if fault.kind == "http":
                return httpx.Response(fault.status, content=f"<html><body><h1>{fault.status} "
                                      "Bad Gateway</h1></body></html>".encode(),
                                      headers={"Content-Type": "text/html"})
            if fault.kind == "connect_error":
                raise httpx.ConnectError("connection refused (sandbox fault)", request=request)
            if fault.kind == "timeout":
                if fault.execute:
                    self._execute(api, request, query, entry)
                raise httpx.ReadTimeout("no answer (sandbox fault)", request=request)
            if fault.kind == "slow":
                read_timeout = (request.extensions.get("timeout") or {}).get("read")
                if read_timeout is not None and fault.delay >= read_timeout:
                    self.sleep(read_timeout)
                    self._execute(api, request, query, entry)
                    raise httpx.ReadTimeout("answer too slow (sandbox fault)", request=request)
                self.sleep(fault.delay)
        return self._execute(api, request, query, entry)

    # -- WeCom API --------------------------------------------------------------------------------
    def _corp_of(self, query: dict[str, str]) -> str | None:
        if "corpid" in query:
            return query["corpid"]
        token = self.world.tokens.get(query.get("access_token", ""))
        return token.corp_id if token else None

    def _revoke(self, token: str | None) -> None:
        issued = self.world.tokens.get(token or "")
        if issued:
            issued.revoked = True

    @staticmethod
    def _fail(failure: ApiFailure) -> dict[str, Any]:
        # WeCom's errmsg carries a hint and the caller's IP: never match on it (errors.py).
        hint = secrets.token_hex(8)
        return {"errcode": failure.errcode,
                "errmsg": f"{failure.errmsg}, hint: [{hint}], from ip: 127.0.0.1, more info at "
                          f"https://open.work.weixin.qq.com/devtool/query?e={failure.errcode}"}

    def _execute(self, api: str, request: httpx.Request, query: dict[str, str],
                 entry: dict[str, Any]) -> httpx.Response:
        try:
            data = self._run_api(api, request, query)
        except ApiFailure as failure:
            entry["errcode"] = failure.errcode
            return _json(200, self._fail(failure))
        except _UnknownApi:
            entry["errcode"] = 404
            return _json(404, {"errcode": 404, "errmsg": f"sandbox does not implement {api}"})
        entry["errcode"] = 0
        return _json(200, {"errcode": 0, "errmsg": "ok", **data})

    def _run_api(self, api: str, request: httpx.Request, query: dict[str, str]) -> dict[str, Any]:
        if api == "gettoken":
            return self._gettoken(query)
        if api not in ROUTES:
            raise _UnknownApi(api)
        token = query.get("access_token")
        if not token:
            raise ApiFailure(41001, "access_token missing")  # must be in the URL, not the body
        with self.world.lock:
            issued = self.world.tokens.get(token)
            if issued is None or issued.revoked:
                raise ApiFailure(40014, "invalid access_token")
            if self.clock() >= issued.expires_at:
                raise ApiFailure(42001, "access_token expired")
            corp = self.world.corp(issued.corp_id)
            if not corp.apps[issued.app].customer_contact:
                raise ApiFailure(48002, "api forbidden")  # app not in 可调用接口的应用
            method, _ = ROUTES[api]
            body: dict[str, Any] = {}
            if method == "MULTIPART":  # media/upload: the file parts by name
                if request.method != "POST":
                    raise ApiFailure(40058, "invalid request: POST required")
                body = _multipart(request)
            elif method == "POST":
                if request.method != "POST":
                    raise ApiFailure(40058, "invalid request: POST required")  # errcode page 40058
                try:
                    body = json.loads(request.content or b"{}")
                except ValueError:
                    raise ApiFailure(40058, "invalid json") from None
                if not isinstance(body, dict):
                    raise ApiFailure(40058, "invalid json: not an object")
            return self.api.dispatch(api, corp, body, query)

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        corp_id, secret = query.get("corpid"), query.get("corpsecret")
        if not corp_id:
            raise ApiFailure(41002, "corpid missing")
        if not secret:
            raise ApiFailure(41004, "corpsecret missing")
        with self.world.lock:
            corp = self.world.corps.get(corp_id)
            if corp is None:
                raise ApiFailure(40013, "invalid corpid")
            # bytes: compare_digest refuses str with non-ASCII characters, and any secret is just wrong
            app = next((a for a in corp.apps.values()
                        if secrets.compare_digest(a.secret.encode(), secret.encode())), None)
            if app is None:
                raise ApiFailure(40001, "invalid credential")  # wrong secret
            token = secrets.token_urlsafe(96)[:128]
            ttl = corp.settings.token_ttl
            self.world.tokens[token] = IssuedToken(token, corp_id, app.name, self.clock() + ttl)
        return {"access_token": token, "expires_in": ttl}

    # -- control API ----------------------------------------------------------------------------
    def _control(self, request: httpx.Request, path: str) -> httpx.Response:
        try:
            body = json.loads(request.content or b"{}") if request.method in ("POST", "PATCH") else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            return _json(200, self._control_route(request.method, path.split("/"), body,
                                                  dict(request.url.params)))
        except SimulationError as exc:
            return _json(409, {"error": "simulation_refused", "message": str(exc)})
        except KeyError as exc:
            return _json(404, {"error": "not_found", "message": f"unknown {exc}"})
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": "bad_request", "message": str(exc)})

    def _control_route(self, method: str, parts: list[str], body: dict[str, Any],
                       params: dict[str, str]) -> Any:
        head = parts[0] if parts else ""
        if head in ("", "health") and method == "GET":
            return {"ok": True, "now": self.clock()}
        if head == "reset" and method == "POST":
            self.reset()
            return {"ok": True}
        if head == "clock":
            if len(parts) > 1 and parts[1] == "advance" and method == "POST":
                return {"now": self.clock.advance(float(body.get("seconds", 0)))}
            return {"now": self.clock(), "frozen": self.clock.frozen}
        if head == "faults":
            if method == "POST":
                return self.faults.add(**body).to_dict()
            if method == "DELETE":
                if len(parts) > 1:
                    self.faults.remove(int(parts[1]))
                else:
                    self.faults.clear()
                return {"ok": True}
            return {"faults": self.faults.to_list()}
        if head == "journal":
            filters = {k: v for k, v in params.items() if k != "kind"}
            return {"entries": self.journal.entries(params.get("kind"), **filters)}
        if head == "requests":
            items = self.requests(params.get("api"), params.get("corp_id"))
            return {"count": len(items), "requests": items}
        if head == "qr" and len(parts) >= 3:
            corp = self.world.corp(parts[1])
            way = corp.contact_ways.get(parts[2]) or corp.join_ways[parts[2]]
            kind = "contact_way" if parts[2] in corp.contact_ways else "join_way"
            return {"corp_id": corp.corp_id, "config_id": parts[2], "kind": kind,
                    "state": way.get("state")}
        if head == "corps":
            return self._control_corps(method, parts[1:], body, params)
        raise KeyError("/sandbox/" + "/".join(parts))

    def _control_corps(self, method: str, parts: list[str], body: dict[str, Any],
                       params: dict[str, str] | None = None) -> Any:
        params = params or {}
        if not parts or not parts[0]:
            if method == "POST":
                return self.register_corp(**body).public()
            return {"corps": [c.public(with_secrets=False) for c in self.world.corps.values()]}
        corp_id = parts[0]
        corp = self.world.corp(corp_id)
        rest = parts[1:]
        if not rest:
            if method in ("POST", "PATCH"):
                return self.update_corp(corp_id, **body).public()
            return corp.public()
        if rest[0] == "client":  # the browser test's WeCom client (open_toolbar)
            return self.open_toolbar(corp_id, **body) if method == "POST" else dict(corp.client)
        if rest[0] == "jssdk" and rest[1:] == ["check"]:
            reason = self.check_js_signature(corp_id, kind="agent_config", url=params.get("url", ""),
                                             noncestr=params.get("noncestr", ""), timestamp=params.get("timestamp", ""),
                                             signature=params.get("signature", ""), agentid=params.get("agentid"))
            return {"ok": reason is None, "reason": reason}
        if rest[0] == "staff" and method == "POST":
            return vars(self.add_staff(corp_id, **body))
        if rest[0] == "state":
            return self.dump(corp_id)
        if rest[0] == "simulate" and len(rest) == 2 and method == "POST":
            if rest[1] not in Simulator.ACTIONS:
                raise KeyError(f"simulator action {rest[1]}")
            return getattr(self.simulator, rest[1])(corp_id, **body)
        raise KeyError("/sandbox/corps/" + "/".join(parts))

    def dump(self, corp_id: str) -> dict[str, Any]:
        """The corp's state as JSON (debugging; includes what WeCom would not show)."""
        with self.world.lock:
            corp = self.world.corp(corp_id)
            return {
                "relations": [vars(r) for r in corp.relations.values()],
                "customers": [vars(c) for c in corp.customers.values()],
                "contact_ways": list(corp.contact_ways.values()),
                "join_ways": list(corp.join_ways.values()),
                "tag_groups": [{"group_id": g.group_id, "name": g.name,
                                "tags": [vars(t) for t in g.tags.values()]}
                               for g in corp.tag_groups.values()],
                "chats": [{"chat_id": c.chat_id, "name": c.name, "owner": c.owner,
                           "members": list(c.members)} for c in corp.chats.values()],
                "mass_messages": [{"msgid": m.msgid, "chat_type": m.chat_type,
                                   "targets": m.targets, "task_status": m.task_status,
                                   "cancelled": m.cancelled} for m in corp.mass_messages.values()],
                "welcome_codes": [vars(w) for w in corp.welcome_codes.values()],
            }


_default: Sandbox | None = None


def default_sandbox() -> Sandbox:
    global _default
    if _default is None:
        _default = Sandbox()
    return _default


def handle(request: httpx.Request) -> httpx.Response:
    """The module-level handler over the default sandbox (``httpx.MockTransport(handle)``)."""
    return default_sandbox().handle(request)
