"""One error tree for everything the WeCom API client raises.

Decided by ``errcode`` only, never by ``errmsg`` (WeCom rewrites its messages and appends a
``hint`` and the caller's IP). Codes and meanings: wecom-api.md section 5, which copies WeCom's
errcode page (doc 90313) via go-workwx ``errcodes/mod.go``::

    WeComError
    ├── ApiError(errcode, errmsg, api)          WeCom answered with errcode != 0
    │   ├── TokenInvalid          40014 42001   (the client refreshes once itself)
    │   ├── AuthError             40001 40013 48002 60011 60020 84074 301002   configuration
    │   ├── FrequencyLimited      45009 (retry_after 60 s), 45033 (retry_after 1 s)
    │   ├── SystemBusy            -1 6000
    │   ├── InvalidArgument       40003 40050 40058 40068 40071 40096 41xxx ...
    │   │   ├── MemberNotActivated    41054
    │   │   ├── WelcomeCodeExpired    41050
    │   │   └── WelcomeAlreadySent    41051 41096
    │   └── NotFound
    │       └── NoRelation        84061
    └── WeComUnavailable          HTTP 5xx, connection refused/reset, unreadable body
        └── WeComTimeout          no answer in time; ``maybe_executed`` for non-idempotent calls

``retryable`` says whether the *same* request may succeed later (queue consumers defer those);
the client's own in-process retries are narrower (see client.py).
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "FrequencyLimited",
    "InvalidArgument",
    "MemberNotActivated",
    "NoRelation",
    "NotFound",
    "SystemBusy",
    "TokenInvalid",
    "WeComError",
    "WeComTimeout",
    "WeComUnavailable",
    "WelcomeAlreadySent",
    "WelcomeCodeExpired",
    "describe",
    "error_code",
    "explain",
    "from_errcode",
]


class WeComError(Exception):
    """Base of every error the WeCom client raises."""

    retryable: bool = False


class ApiError(WeComError):
    """WeCom answered HTTP 200 with a non-zero ``errcode``."""

    retryable = False

    def __init__(self, errcode: int, errmsg: str = "", api: str = "") -> None:
        self.errcode = int(errcode)
        self.errmsg = errmsg
        self.api = api
        super().__init__(f"{api or 'wecom'}: errcode {self.errcode}: {errmsg}")


class TokenInvalid(ApiError):
    """40014 invalid / 42001 expired access_token. The client drops the cached token and retries
    once; seeing this means the fresh token failed too."""

    retryable = True


class AuthError(ApiError):
    """Configuration: wrong secret or corp id, API not granted to the app, IP not trusted."""


class FrequencyLimited(ApiError):
    """45009 (frequency block: wait out the window, 60 s for the per-minute rule) or 45033
    (too many concurrent calls: short sleep). Raised locally too (``local=True``) when our own
    pacing would have to wait longer than the client may sleep; WeCom was not called then."""

    retryable = True
    DEFAULT_RETRY_AFTER = {45009: 60.0, 45033: 1.0}

    def __init__(self, errcode: int = 45009, errmsg: str = "", api: str = "", *,
                 retry_after: float | None = None, local: bool = False) -> None:
        super().__init__(errcode, errmsg, api)
        self.retry_after = float(
            retry_after if retry_after is not None else self.DEFAULT_RETRY_AFTER.get(self.errcode, 60.0)
        )
        self.local = local


class SystemBusy(ApiError):
    """-1 system busy, 6000 data version conflict: retry with backoff (at most 3 times)."""

    retryable = True


class InvalidArgument(ApiError):
    """The request is wrong for WeCom (bad id, too long, too many items, missing parameter)."""


class MemberNotActivated(InvalidArgument):
    """41054: the staff member on a channel code has not activated WeCom."""


class WelcomeCodeExpired(InvalidArgument):
    """41050: welcome_code invalid or older than 20 s."""


class WelcomeAlreadySent(InvalidArgument):
    """41051 (the customer is already chatting / another app sent the welcome) or 41096
    (a welcome is being sent for this code)."""


class NotFound(ApiError):
    """The object does not exist (any more)."""


class NoRelation(NotFound):
    """84061: no relation between this staff member and customer (removed by the staff member,
    or a skip-verify add the staff member has not confirmed). Mark lost; do not retry."""


class InvalidCode(InvalidArgument):
    """40029: a web OAuth code that is unknown, already used or older than 5 minutes (doc 91023:
    "code只能使用一次，5分钟未被使用自动过期"). The staff member must open the page again."""


class WeComUnavailable(WeComError):
    """No usable WeCom answer: HTTP 5xx, connection refused/reset, a body that is not JSON."""

    retryable = True

    def __init__(self, message: str, *, api: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.api = api
        self.status_code = status_code


class WeComTimeout(WeComUnavailable):
    """No answer in time. ``maybe_executed`` is True when the request had been sent, so WeCom may
    have acted on it: a non-idempotent call (welcome, broadcast) must not be repeated blindly."""

    def __init__(self, message: str, *, api: str = "", maybe_executed: bool) -> None:
        super().__init__(message, api=api)
        self.maybe_executed = maybe_executed


_AUTH = {40001, 40013, 48002, 60011, 60020, 84074, 301002}
_TOKEN = {40014, 42001}
_BUSY = {-1, 6000}
_INVALID = {40003, 40050, 40058, 40068, 40071, 40096, 40097, 40098, 40128, 44004, 81017}
_SPECIFIC: dict[int, type[ApiError]] = {
    41050: WelcomeCodeExpired,
    41051: WelcomeAlreadySent,
    41096: WelcomeAlreadySent,
    41054: MemberNotActivated,
    40029: InvalidCode,
    84061: NoRelation,
}


def error_class(errcode: int) -> type[ApiError]:
    """The ApiError subclass for an errcode (by code only)."""
    errcode = int(errcode)
    if errcode in _SPECIFIC:
        return _SPECIFIC[errcode]
    if errcode in _TOKEN:
        return TokenInvalid
    if errcode in _AUTH:
        return AuthError
    if errcode in (45009, 45033):
        return FrequencyLimited
    if errcode in _BUSY:
        return SystemBusy
    if errcode in _INVALID or 41000 <= errcode < 42000:
        return InvalidArgument
    return ApiError


def from_errcode(errcode: int, errmsg: str = "", api: str = "") -> ApiError:
    """Build the right ApiError for a WeCom answer."""
    cls = error_class(errcode)
    return cls(int(errcode), errmsg, api)


# Plain explanations of the errcodes operators meet most, for API errors, bulk results and failed
# sync jobs: the one table (wecom-api.md section 5). WeCom's own errmsg is shown beside it.
EXPLANATIONS: dict[int, str] = {
    40001: "invalid secret: check the corp's contact secret (PATCH /corps/{corp_id})",
    40003: "unknown member: the userid is not a member of the corp (or outside the app's visible range)",
    40013: "invalid corp id",
    40096: "unknown customer: the external_userid is not one of the corp's customers",
    41054: "member not activated: the staff member has not activated WeCom yet (joined but never logged in)",
    45009: "WeCom's frequency limit was hit: wait for its window to pass",
    48002: "API not granted to the app: add it under 客户联系 > 可调用接口的应用 in WeCom's admin console",
    60011: "no privilege to access the member: widen the app's visible range",
    60020: ("server IP not trusted: WeCom accepts calls only from the app's trusted IPs (企业可信IP); "
            "send this service's calls through a fixed egress IP (NAT gateway / Elastic IP) and list that IP "
            "in the app's settings; WeCom's errmsg names the IP it saw"),
    84061: "no relation between the customer and the staff member (removed, or a skip-verify add "
           "not yet accepted)",
    84074: "no customer-contact permission: give the member 客户联系 in WeCom's admin console",
    301002: "no permission for this app (the token's app is not the agentid in the request)",
}


def explain(errcode: int | None) -> str | None:
    """A plain explanation of a WeCom errcode, when it is one operators meet often."""
    return EXPLANATIONS.get(errcode) if errcode is not None else None


def error_code(exc: WeComError) -> str:
    """The stable code an API answer or a per-item result reports for a WeCom failure."""
    if isinstance(exc, FrequencyLimited):
        return "wecom_rate_limited"
    if isinstance(exc, ApiError):
        return "wecom_error"
    return "wecom_unavailable"


def describe(exc: WeComError) -> dict[str, object]:
    """What WeCom answered, for people: errcode, errmsg, the API and the explanation (ApiError), or
    the API and HTTP status for no usable answer."""
    if isinstance(exc, ApiError):
        return {"errcode": exc.errcode, "errmsg": exc.errmsg, "api": exc.api or None,
                "explanation": explain(exc.errcode)}
    return {"api": getattr(exc, "api", None) or None, "status_code": getattr(exc, "status_code", None)}
