"""The WeCom server-API client: token cache, pacing, retries, typed errors, typed methods.

    client = WeComClient(corp_id=..., secret=..., base_url=settings.wecom_api_base,
                         token_cache=DynamoTokenCache(get_table()),
                         rate_limiter=DynamoRateLimiter(get_table()))
    client.send_welcome_msg(WelcomeMessage(welcome_code=code, text=Text(content="Hi")))

Cheap to import: httpx is imported when the first request is made, pydantic models when a typed
method is first used. Build one client per (corp, app) per Lambda instance and reuse it: it keeps
the access token in memory, so a warm call costs no AWS request.

Token (wecom-api.md 3.1, doc 91039): shared by every instance through ``token_cache``; refreshed
5 minutes before expiry by the one instance holding a short conditional-write lease (the others
keep using the still-valid old token or wait and re-read), so ``gettoken`` is called once per token
lifetime however many instances run. On 40014/42001 the failed token is invalidated (only if it is
still the cached one) and the call retried once.

Retries (section 5): only system failures: -1, 6000, 45033, HTTP 5xx and connection errors, with
exponential backoff and full jitter, at most ``max_retries`` times, and only for calls marked
``retry_safe``. A request that was never sent (connection refused, connect timeout) is retried
whatever the call. A non-idempotent call that timed out after sending raises
``WeComTimeout(maybe_executed=True)`` and is never repeated here. 45009 (frequency block) is never
retried in-process: ``FrequencyLimited.retry_after`` tells the queue consumer how long to defer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.platform.tokens import CachedToken
from chalicelib.wecom import errors

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from chalicelib.wecom import models as m

__all__ = [
    "CachedToken",
    "InMemoryRateLimiter",
    "InMemoryTokenCache",
    "RateLimiter",
    "TokenCache",
    "WeComClient",
]

REFRESH_MARGIN_SECONDS = 300.0  # refresh a token this long before it expires
MIN_USABLE_SECONDS = 30.0  # an old token with at least this much left is used during a refresh
LEASE_SECONDS = 8.0  # how long a refresh lease is held before another instance may take over
LEASE_POLL_SECONDS = 0.1
LEASE_MAX_POLLS = 90  # wait up to ~9 s: longer than a lease, so a dead holder is taken over
MAX_PACING_WAIT_SECONDS = 5.0
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0

_RETRY_CODES = {-1, 6000, 45033}


# -- token cache ---------------------------------------------------------------------------------

class TokenCache(Protocol):
    """Shared access-token storage (DynamoDB in production: store.tokens.DynamoTokenCache)."""

    def get(self, corp_id: str, app: str) -> CachedToken | None:
        """The cached token (consistent read), or None."""

    def acquire_lease(self, corp_id: str, app: str, *, holder: str, now: float,
                      lease_seconds: float, fresh_until: float) -> bool:
        """Take the refresh lease, atomically, iff no other live lease exists and the cached token
        (if any) expires before ``fresh_until`` (i.e. still needs refreshing)."""

    def store(self, corp_id: str, app: str, *, access_token: str, expires_at: float,
              holder: str) -> None:
        """Save a fresh token and release ``holder``'s lease."""

    def release_lease(self, corp_id: str, app: str, *, holder: str) -> None:
        """Give the lease back after a failed refresh (no-op if not held by ``holder``)."""

    def invalidate(self, corp_id: str, app: str, *, access_token: str) -> bool:
        """Forget the token iff it is still ``access_token`` (WeCom rejected it)."""


class InMemoryTokenCache:
    """TokenCache for one process (unit tests, local tools). Same semantics as the DynamoDB one."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], CachedToken] = {}
        self._lock = threading.Lock()

    def get(self, corp_id: str, app: str) -> CachedToken | None:
        with self._lock:
            return self._items.get((corp_id, app))

    def acquire_lease(self, corp_id: str, app: str, *, holder: str, now: float,
                      lease_seconds: float, fresh_until: float) -> bool:
        with self._lock:
            item = self._items.get((corp_id, app)) or CachedToken(None)
            if item.lease_holder and item.lease_until > now:
                return False
            if item.access_token and item.expires_at > fresh_until:
                return False
            self._items[(corp_id, app)] = CachedToken(
                item.access_token, item.expires_at, holder, now + lease_seconds
            )
            return True

    def store(self, corp_id: str, app: str, *, access_token: str, expires_at: float,
              holder: str) -> None:
        with self._lock:
            self._items[(corp_id, app)] = CachedToken(access_token, expires_at)

    def release_lease(self, corp_id: str, app: str, *, holder: str) -> None:
        with self._lock:
            item = self._items.get((corp_id, app))
            if item and item.lease_holder == holder:
                self._items[(corp_id, app)] = CachedToken(item.access_token, item.expires_at)

    def invalidate(self, corp_id: str, app: str, *, access_token: str) -> bool:
        with self._lock:
            item = self._items.get((corp_id, app))
            if not item or item.access_token != access_token:
                return False
            self._items[(corp_id, app)] = CachedToken(None, 0.0, item.lease_holder, item.lease_until)
            return True


# -- pacing --------------------------------------------------------------------------------------
class RateLimiter(Protocol):
    """Per corp, per API pacing (DynamoDB in production: store.rate_limits.DynamoRateLimiter)."""

    def acquire(self, corp_id: str, api: str, now: float) -> float:
        """Take one call slot now and return 0.0, or take nothing and return how many seconds to
        wait before asking again."""


class InMemoryRateLimiter:
    """RateLimiter for one process: ``per_second`` calls per API per 1-second window."""

    def __init__(self, per_second: int = 150) -> None:
        self.per_second = per_second
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def acquire(self, corp_id: str, api: str, now: float) -> float:
        window = int(now)
        with self._lock:
            key = (corp_id, api, window)
            if self._counts.get(key, 0) >= self.per_second:
                return max(0.001, window + 1 - now)
            self._counts[key] = self._counts.get(key, 0) + 1
            return 0.0


# -- transport outcomes --------------------------------------------------------------------------
class _NotSent(Exception):
    """The request never reached WeCom (safe to repeat, whatever the call)."""


class _MaybeSent(Exception):
    """The request may have reached WeCom (timeout or broken connection after sending)."""

    def __init__(self, message: str, *, timeout: bool):
        super().__init__(message)
        self.timeout = timeout


class _Status(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


def _models():
    from chalicelib.wecom import models

    return models


class WeComClient:
    """One WeCom app (``app`` names its secret: "contact", "agent-1000002", ...) of one corp."""

    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        base_url: str,
        token_cache: TokenCache,
        app: str = "contact",
        rate_limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 3,
        max_pacing_wait: float = MAX_PACING_WAIT_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.app = app
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._cache = token_cache
        self._limiter = rate_limiter
        self._transport = transport
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self.max_retries = max_retries
        self.max_pacing_wait = max_pacing_wait
        self._rng = rng or random.Random()
        self._holder = uuid.uuid4().hex
        self._memos: dict[str, CachedToken] = {}  # token and tickets, by cache slot
        self._fetched_at = 0.0
        self._http_client: Any = None
        self._lock = threading.RLock()  # a ticket refresh may refresh the token inside it

    def __repr__(self) -> str:  # never show the secret or the token
        return f"WeComClient(corp_id={self.corp_id!r}, app={self.app!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        if self._http_client is not None:
            self._http_client.close()
            self._http_client = None

    # -- HTTP ------------------------------------------------------------------------------------
    def _http(self) -> Any:
        if self._http_client is None:
            import httpx

            # httpx logs every request URL at INFO; ours carry corpsecret / access_token.
            httpx_logger = logging.getLogger("httpx")
            if httpx_logger.getEffectiveLevel() < logging.WARNING:
                httpx_logger.setLevel(logging.WARNING)
            self._http_client = httpx.Client(
                transport=self._transport,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 2.0)),
                headers={"User-Agent": "scrm-wecom-client"},
            )
        return self._http_client

    def _send(self, method: str, api: str, *, params: dict[str, Any],
              json: Any = None, files: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}/{api}"
        try:
            resp = self._http().request(method, url, params=params, json=json, files=files)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NotSent(type(exc).__name__) from exc
        except httpx.TimeoutException as exc:
            raise _MaybeSent(type(exc).__name__, timeout=True) from exc
        except httpx.TransportError as exc:
            raise _MaybeSent(type(exc).__name__, timeout=False) from exc
        if resp.status_code >= 500:
            raise _Status(resp.status_code)
        if resp.status_code != 200:
            raise errors.WeComUnavailable(f"HTTP {resp.status_code}", api=api,
                                          status_code=resp.status_code)
        try:
            data = resp.json()
        except ValueError as exc:
            raise errors.WeComUnavailable("answer is not JSON", api=api, status_code=200) from exc
        if not isinstance(data, dict):
            raise errors.WeComUnavailable("answer is not a JSON object", api=api, status_code=200)
        return data

    def _backoff(self, attempt: int, floor: float = 0.0) -> None:
        delay = self._rng.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))
        self._sleep(max(floor, delay))

    def _pace(self, api: str) -> None:
        if self._limiter is None:
            return
        waited = 0.0
        while True:
            wait = self._limiter.acquire(self.corp_id, api, self._clock())
            if wait <= 0:
                return
            if waited + wait > self.max_pacing_wait:
                raise errors.FrequencyLimited(45009, "paced locally: budget for this API used up",
                                              api, retry_after=wait, local=True)
            self._sleep(wait)
            waited += wait

    # -- token -----------------------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid access token: process memory, else the shared cache, else ``gettoken``."""
        return self._shared(self.app, self._fetch_token, api="gettoken")

    def js_ticket(self, kind: str) -> str:
        """A valid JS-SDK ticket, ``kind`` "jsapi" (the corp's, wx.config) or "agent_config" (the
        app's, wx.agentConfig): cached like the access token (doc 90506: valid 7200 s, fetched at
        most 400 times an hour per corp, so never per page view), under a name derived from the
        token's, so a rotated secret also gets new tickets."""
        from chalicelib.wecom.jssdk import TICKET_KINDS

        if kind not in TICKET_KINDS:
            raise ValueError(f"unknown JS-SDK ticket kind {kind!r}")
        api, params = TICKET_KINDS[kind]

        def fetch() -> tuple[str, float]:
            fetched_at = self._clock()
            data = self.call(api, method="GET", params=params, retry_safe=True)
            ticket = _models().TicketResponse.model_validate(data)
            return ticket.ticket, fetched_at + ticket.expires_in

        return self._shared(f"{self.app}/ticket-{kind}", fetch, api=api)

    def _shared(self, slot: str, fetch: Callable[[], tuple[str, float]], *, api: str) -> str:
        """A value WeCom issues for a limited time (token, ticket) kept in process memory and the
        shared cache under ``slot``; refreshed by the one instance holding the lease."""
        memo = self._memos.get(slot)
        if memo and memo.access_token and memo.expires_at - REFRESH_MARGIN_SECONDS > self._clock():
            return memo.access_token
        with self._lock:  # one refresh per client even if threads share it
            for _ in range(LEASE_MAX_POLLS):
                now = self._clock()
                cached = self._cache.get(self.corp_id, slot)
                if cached and cached.access_token and cached.expires_at - REFRESH_MARGIN_SECONDS > now:
                    self._memos[slot] = cached
                    return cached.access_token
                if self._cache.acquire_lease(self.corp_id, slot, holder=self._holder, now=now,
                                             lease_seconds=LEASE_SECONDS,
                                             fresh_until=now + REFRESH_MARGIN_SECONDS):
                    return self._refresh(slot, fetch)
                if cached and cached.access_token and cached.expires_at - MIN_USABLE_SECONDS > now:
                    return cached.access_token  # another instance is refreshing; old one still works
                self._sleep(LEASE_POLL_SECONDS)
        raise errors.WeComUnavailable(f"{api}: refresh by another instance did not finish", api=api)

    def _refresh(self, slot: str, fetch: Callable[[], tuple[str, float]]) -> str:
        try:
            value, expires_at = fetch()
        except BaseException:
            self._cache.release_lease(self.corp_id, slot, holder=self._holder)
            raise
        self._cache.store(self.corp_id, slot, access_token=value, expires_at=expires_at, holder=self._holder)
        self._memos[slot] = CachedToken(value, expires_at)
        return value

    def _fetch_token(self) -> tuple[str, float]:
        token = self.get_token()
        return token.access_token, self._fetched_at + token.expires_in

    def get_token(self) -> m.TokenResponse:
        """GET gettoken (doc 91039). Prefer ``access_token()``: this always calls WeCom."""
        self._fetched_at = self._clock()
        params = {"corpid": self.corp_id, "corpsecret": self._secret}
        data = self._call_raw("gettoken", method="GET", params=params, json=None, retry_safe=True)
        return _models().TokenResponse.model_validate(data)

    def _invalidate(self, token: str) -> None:
        self._memos.pop(self.app, None)
        self._cache.invalidate(self.corp_id, self.app, access_token=token)

    # -- calls -----------------------------------------------------------------------------------
    def call(self, api_path: str, *, method: str = "POST", json: Any = None,
             params: dict[str, Any] | None = None, retry_safe: bool,
             files: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call ``api_path`` (relative to base_url, e.g. "externalcontact/get") with the access
        token; return the decoded JSON answer (errcode 0) or raise a ``WeComError``."""
        api = api_path.strip("/")
        refreshed = False
        while True:
            token = self.access_token()
            try:
                return self._call_raw(api, method=method, params={**(params or {}),
                                      "access_token": token}, json=json, retry_safe=retry_safe, files=files)
            except errors.TokenInvalid:
                if refreshed:
                    raise
                refreshed = True
                self._invalidate(token)

    def _call_raw(self, api: str, *, method: str, params: dict[str, Any], json: Any,
                  retry_safe: bool, files: dict[str, Any] | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            if api != "gettoken":
                self._pace(api)
            try:
                data = self._send(method, api, params=params, json=json, files=files)
            except _NotSent as exc:
                if attempt < self.max_retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                if "Timeout" in str(exc):
                    raise errors.WeComTimeout(f"{api}: {exc}", api=api, maybe_executed=False) from exc
                raise errors.WeComUnavailable(f"{api}: {exc}", api=api) from exc
            except _MaybeSent as exc:
                if retry_safe and attempt < self.max_retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                if exc.timeout:
                    raise errors.WeComTimeout(f"{api}: {exc}", api=api, maybe_executed=True) from exc
                raise errors.WeComUnavailable(f"{api}: {exc}", api=api) from exc
            except _Status as exc:
                if retry_safe and attempt < self.max_retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise errors.WeComUnavailable(f"{api}: HTTP {exc.status}", api=api,
                                              status_code=exc.status) from exc
            errcode = data.get("errcode", 0)
            try:
                errcode = int(errcode)
            except (TypeError, ValueError):
                raise errors.WeComUnavailable(f"{api}: errcode {errcode!r}", api=api) from None
            if errcode == 0:
                return data
            if errcode in _RETRY_CODES and retry_safe and attempt < self.max_retries:
                self._backoff(attempt, floor=0.5 if errcode == 45033 else 0.0)
                attempt += 1
                continue
            raise errors.from_errcode(errcode, str(data.get("errmsg", "")), api)

    def _typed(self, api: str, response: Any, *, retry_safe: bool, body: Any = None,
               method: str = "POST", params: dict[str, Any] | None = None) -> Any:
        if body is not None and hasattr(body, "body"):
            body = body.body()
        data = self.call(api, method=method, json=body if method == "POST" else None,
                         params=params, retry_safe=retry_safe)
        return response.model_validate(data)

    # -- customers (wecom-api.md 3.5) -------------------------------------------------------------
    def get_follow_user_list(self) -> m.FollowUserListResponse:
        return self._typed("externalcontact/get_follow_user_list",
                           _models().FollowUserListResponse, method="GET", retry_safe=True)

    def list_external_contacts(self, userid: str) -> m.ExternalContactListResponse:
        """ec/list: external_userids of one staff member."""
        return self._typed("externalcontact/list", _models().ExternalContactListResponse,
                           method="GET", params={"userid": userid}, retry_safe=True)

    def get_unassigned_list(self, *, cursor: str | None = None, page_size: int = 1000) -> m.UnassignedListResponse:
        """Departed members' customers awaiting assignment, one page (follow `next_cursor`)."""
        request = _models().UnassignedListRequest(page_size=page_size, cursor=cursor or None)
        return self._typed("externalcontact/get_unassigned_list", _models().UnassignedListResponse,
                           body=request, retry_safe=True)

    def get_external_contact(self, external_userid: str,
                             cursor: str | None = None) -> m.GetExternalContactResponse:
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        return self._typed("externalcontact/get", _models().GetExternalContactResponse,
                           method="GET", params=params, retry_safe=True)

    def batch_get_by_user(self, userid_list: list[str], *, cursor: str | None = None,
                          limit: int = 100) -> m.BatchGetByUserResponse:
        mm = _models()
        req = mm.BatchGetByUserRequest(userid_list=userid_list, cursor=cursor or None, limit=limit)
        return self._typed("externalcontact/batch/get_by_user", mm.BatchGetByUserResponse,
                           body=req, retry_safe=True)

    # -- web OAuth (doc 91023) -------------------------------------------------------------------
    def get_user_info(self, code: str) -> m.UserInfoResponse:
        """auth/getuserinfo: who opened a page, from the ``code`` WeCom's OAuth redirect gave it.
        A code is single-use and dies after 5 minutes (40029: ``InvalidCode``), so a call that may
        have reached WeCom is not repeated (a repeat would be refused as a reused code)."""
        return self._typed("auth/getuserinfo", _models().UserInfoResponse, method="GET",
                           params={"code": code}, retry_safe=False)

    # -- members --------------------------------------------------------------------------------
    def get_user(self, userid: str) -> m.User:
        """user/get (doc 90196): one member; only `name` is relied on."""
        return self._typed("user/get", _models().User, method="GET", params={"userid": userid},
                           retry_safe=True)

    # -- channel codes (3.2) ----------------------------------------------------------------------
    def add_contact_way(self, way: m.ContactWay) -> m.AddContactWayResponse:
        """Not retried after a timeout: a second add would create a second config_id (and a lost
        config_id can never be deleted; 500,000 per corp)."""
        return self._typed("externalcontact/add_contact_way", _models().AddContactWayResponse,
                           body=way, retry_safe=False)

    def get_contact_way(self, config_id: str) -> m.GetContactWayResponse:
        return self._typed("externalcontact/get_contact_way", _models().GetContactWayResponse,
                           body={"config_id": config_id}, retry_safe=True)

    def update_contact_way(self, way: m.ContactWay) -> m.Ok:
        if not way.config_id:
            raise ValueError("update_contact_way needs config_id")
        return self._typed("externalcontact/update_contact_way", _models().Ok, body=way,
                           retry_safe=True)

    def del_contact_way(self, config_id: str) -> m.Ok:
        return self._typed("externalcontact/del_contact_way", _models().Ok,
                           body={"config_id": config_id}, retry_safe=True)

    # -- welcome messages (3.3) -------------------------------------------------------------------
    def send_welcome_msg(self, message: m.WelcomeMessage) -> m.Ok:
        """Single-use code valid 20 s: never retried once it may have reached WeCom."""
        return self._typed("externalcontact/send_welcome_msg", _models().Ok, body=message,
                           retry_safe=False)

    def add_group_welcome_template(self, template: m.GroupWelcomeTemplate
                                   ) -> m.AddGroupWelcomeTemplateResponse:
        return self._typed("externalcontact/group_welcome_template/add",
                           _models().AddGroupWelcomeTemplateResponse, body=template,
                           retry_safe=False)

    def edit_group_welcome_template(self, template: m.GroupWelcomeTemplate) -> m.Ok:
        return self._typed("externalcontact/group_welcome_template/edit", _models().Ok,
                           body=template, retry_safe=True)

    def get_group_welcome_template(self, template_id: str) -> m.GetGroupWelcomeTemplateResponse:
        return self._typed("externalcontact/group_welcome_template/get",
                           _models().GetGroupWelcomeTemplateResponse,
                           body={"template_id": template_id}, retry_safe=True)

    def del_group_welcome_template(self, template_id: str, agentid: int | None = None) -> m.Ok:
        body: dict[str, Any] = {"template_id": template_id}
        if agentid is not None:
            body["agentid"] = agentid
        return self._typed("externalcontact/group_welcome_template/del", _models().Ok, body=body,
                           retry_safe=True)

    # -- tags (3.6) -------------------------------------------------------------------------------
    def get_corp_tag_list(self, *, tag_id: list[str] | None = None,
                          group_id: list[str] | None = None) -> m.CorpTagListResponse:
        body: dict[str, Any] = {}
        if tag_id:
            body["tag_id"] = tag_id
        if group_id:
            body["group_id"] = group_id
        return self._typed("externalcontact/get_corp_tag_list", _models().CorpTagListResponse,
                           body=body, retry_safe=True)

    def add_corp_tag(self, request: m.AddCorpTagRequest) -> m.AddCorpTagResponse:
        return self._typed("externalcontact/add_corp_tag", _models().AddCorpTagResponse,
                           body=request, retry_safe=False)

    def edit_corp_tag(self, request: m.EditCorpTagRequest) -> m.Ok:
        return self._typed("externalcontact/edit_corp_tag", _models().Ok, body=request,
                           retry_safe=True)

    def del_corp_tag(self, *, tag_id: list[str] | None = None, group_id: list[str] | None = None,
                     agentid: int | None = None) -> m.Ok:
        body: dict[str, Any] = {"tag_id": tag_id or [], "group_id": group_id or []}
        if agentid is not None:
            body["agentid"] = agentid
        return self._typed("externalcontact/del_corp_tag", _models().Ok, body=body,
                           retry_safe=True)

    def mark_tag(self, request: m.MarkTagRequest) -> m.Ok:
        """Adding/removing a set of tags is idempotent, so it is retried. Fires no callback."""
        return self._typed("externalcontact/mark_tag", _models().Ok, body=request, retry_safe=True)

    # -- groups (3.7) -----------------------------------------------------------------------------
    def list_groupchats(self, request: m.GroupChatListRequest) -> m.GroupChatListResponse:
        return self._typed("externalcontact/groupchat/list", _models().GroupChatListResponse,
                           body=request, retry_safe=True)

    def get_groupchat(self, chat_id: str, *, need_name: bool = False) -> m.GetGroupChatResponse:
        return self._typed("externalcontact/groupchat/get", _models().GetGroupChatResponse,
                           body={"chat_id": chat_id, "need_name": int(need_name)}, retry_safe=True)

    # -- group codes (3.4) ------------------------------------------------------------------------
    def add_join_way(self, way: m.JoinWay) -> m.AddJoinWayResponse:
        return self._typed("externalcontact/groupchat/add_join_way", _models().AddJoinWayResponse,
                           body=way, retry_safe=False)

    def get_join_way(self, config_id: str) -> m.GetJoinWayResponse:
        return self._typed("externalcontact/groupchat/get_join_way", _models().GetJoinWayResponse,
                           body={"config_id": config_id}, retry_safe=True)

    def update_join_way(self, way: m.JoinWay) -> m.Ok:
        """Full overwrite (doc 92229): send every field, not only the changed ones."""
        if not way.config_id:
            raise ValueError("update_join_way needs config_id")
        return self._typed("externalcontact/groupchat/update_join_way", _models().Ok, body=way,
                           retry_safe=True)

    def del_join_way(self, config_id: str) -> m.Ok:
        return self._typed("externalcontact/groupchat/del_join_way", _models().Ok,
                           body={"config_id": config_id}, retry_safe=True)

    # -- app messages (message/send) -------------------------------------------------------------
    def send_app_message(self, message: m.AppTextMessage) -> m.AppMessageResponse:
        """Not retried once it may have reached WeCom: a retry would message the staff twice."""
        return self._typed("message/send", _models().AppMessageResponse, body=message, retry_safe=False)

    # -- broadcasts (3.8) -------------------------------------------------------------------------
    def add_msg_template(self, template: m.MsgTemplate) -> m.AddMsgTemplateResponse:
        """Creates a task per staff member; never retried once it may have reached WeCom."""
        return self._typed("externalcontact/add_msg_template", _models().AddMsgTemplateResponse,
                           body=template, retry_safe=False)

    def get_groupmsg_list_v2(self, request: m.GroupMsgListRequest) -> m.GroupMsgListResponse:
        return self._typed("externalcontact/get_groupmsg_list_v2", _models().GroupMsgListResponse,
                           body=request, retry_safe=True)

    def get_groupmsg_task(self, msgid: str, *, limit: int = 1000,
                          cursor: str | None = None) -> m.GroupMsgTaskResponse:
        body: dict[str, Any] = {"msgid": msgid, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        return self._typed("externalcontact/get_groupmsg_task", _models().GroupMsgTaskResponse,
                           body=body, retry_safe=True)

    def get_groupmsg_send_result(self, msgid: str, userid: str, *, limit: int = 1000,
                                 cursor: str | None = None) -> m.GroupMsgSendResultResponse:
        body: dict[str, Any] = {"msgid": msgid, "userid": userid, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        return self._typed("externalcontact/get_groupmsg_send_result",
                           _models().GroupMsgSendResultResponse, body=body, retry_safe=True)

    def remind_groupmsg_send(self, msgid: str) -> m.Ok:
        """At most 3 reminders per 24 h (41094), so not retried blindly."""
        return self._typed("externalcontact/remind_groupmsg_send", _models().Ok,
                           body={"msgid": msgid}, retry_safe=False)

    def cancel_groupmsg_send(self, msgid: str) -> m.Ok:
        return self._typed("externalcontact/cancel_groupmsg_send", _models().Ok,
                           body={"msgid": msgid}, retry_safe=True)

    # -- temporary media (doc 90389) ---------------------------------------------------------------
    def upload_media(self, kind: str, filename: str, content: bytes) -> str:
        """POST media/upload (multipart, the file in part "media") -> a media_id valid for 3 days
        (upload close to sending). Checked first as WeCom checks it (``MediaFile``: ValueError, no
        call). Retry-safe: a repeated upload only leaves an unused media id behind."""
        return self._upload("media/upload", {"type": kind}, kind, filename, content)

    def upload_attachment(self, kind: str, filename: str, content: bytes, attachment_type: int = 1) -> str:
        """POST media/upload_attachment?media_type=image|video|file&attachment_type=1 (Moments; 2 a
        product album), the file in part "media" as media/upload takes it -> a media_id valid for 3
        days: the only images and videos add_moment_task takes (doc 95098). Same checks and retry
        rule as upload_media."""
        if kind not in ("image", "video", "file") or attachment_type not in (1, 2):
            raise ValueError(f"upload_attachment takes an image, video or file for attachment_type 1 or 2, "
                             f"not {kind!r} / {attachment_type!r}")
        return self._upload("media/upload_attachment", {"media_type": kind, "attachment_type": attachment_type},
                            kind, filename, content)

    def _upload(self, api: str, params: dict[str, Any], kind: str, filename: str, content: bytes) -> str:
        media = _models().MediaFile(kind=kind, filename=filename, content=content)
        data = self.call(api, params=params, retry_safe=True,
                         files={"media": (media.filename, media.content, media.content_type)})
        return _models().MediaUploadResponse.model_validate(data).media_id

    # -- Moments (3.9) ----------------------------------------------------------------------------
    def add_moment_task(self, task: m.MomentTask) -> m.AddMomentTaskResponse:
        return self._typed("externalcontact/add_moment_task", _models().AddMomentTaskResponse,
                           body=task, retry_safe=False)

    def get_moment_task_result(self, jobid: str) -> m.MomentTaskResultResponse:
        return self._typed("externalcontact/get_moment_task_result",
                           _models().MomentTaskResultResponse, method="GET",
                           params={"jobid": jobid}, retry_safe=True)

    # -- handover (3.10) --------------------------------------------------------------------------
    def transfer_customer(self, request: m.TransferCustomerRequest
                          ) -> m.TransferCustomerResponse:
        """On-job handover; each customer may be moved twice per 90 days, so never retried."""
        return self._typed("externalcontact/transfer_customer",
                           _models().TransferCustomerResponse, body=request, retry_safe=False)

    def resigned_transfer_customer(self, request: m.TransferCustomerRequest
                                   ) -> m.TransferCustomerResponse:
        return self._typed("externalcontact/resigned/transfer_customer",
                           _models().TransferCustomerResponse, body=request, retry_safe=False)

    def transfer_result(self, request: m.TransferResultRequest, *,
                        resigned: bool = False) -> m.TransferResultResponse:
        api = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
        return self._typed(api, _models().TransferResultResponse, body=request, retry_safe=True)

    def groupchat_transfer(self, request: m.GroupChatTransferRequest, *,
                           onjob: bool = False) -> m.GroupChatTransferResponse:
        api = "externalcontact/groupchat/onjob_transfer" if onjob else "externalcontact/groupchat/transfer"
        return self._typed(api, _models().GroupChatTransferResponse, body=request,
                           retry_safe=False)
