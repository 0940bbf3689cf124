"""The API's spine: one decorator per endpoint does auth, request parsing, error mapping and
registers the endpoint for the OpenAPI document, so every route behaves the same way.

Errors are JSON `{"error": {"code": "...", "message": "...", "details": ...}}` with a stable
`code`; clients branch on the code, never on the message.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from chalice import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.platform import caches
from chalicelib.platform.model import Model

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 256 * 1024


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def not_found(what: str) -> HttpError:
    return HttpError(404, "not_found", f"{what} not found")


def invalid(message: str, details: Any = None) -> HttpError:
    return HttpError(400, "invalid_request", message, details)


def conflict(code: str, message: str) -> HttpError:
    return HttpError(409, code, message)


class ErrorBody(Model):
    code: str = Field(description="stable and machine-readable: branch on this, never on `message`")
    message: str = Field(description="for people; its wording may change")
    details: Any = Field(None, description="structured context when there is any, e.g. the fields of a "
                                           "`validation_error` or WeCom's `errcode`")


class ErrorResponse(Model):
    error: ErrorBody


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return Response(
        body=body.model_dump_json(), status_code=status, headers={"Content-Type": "application/json"}
    )


# -- auth ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    is_admin: bool
    corp_id: str | None = None

    def require_corp(self) -> str:
        if self.corp_id is None:
            raise HttpError(403, "corp_key_required", "this endpoint needs a corp-scoped API key")
        return self.corp_id

    def may_see(self, corp_id: str) -> bool:
        return self.is_admin or self.corp_id == corp_id


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return f"scrm_{pysecrets.token_urlsafe(32)}"


_admin_key_cache: list[str] = []


def admin_key() -> str | None:
    """SCRM_ADMIN_KEY from the environment, else the SSM parameter named by
    SCRM_ADMIN_KEY_PARAMETER (AWS), read once per instance."""
    if _admin_key_cache:
        return _admin_key_cache[0]
    from chalicelib.platform.settings import get_settings

    settings = get_settings()
    value = settings.admin_key
    if value is None and settings.admin_key_parameter:
        from chalicelib.platform import aws

        value = aws.client("ssm").get_parameter(
            Name=settings.admin_key_parameter, WithDecryption=True
        )["Parameter"]["Value"]
    if value:
        _admin_key_cache.append(value)
    return value


caches.register("api:admin_key", _admin_key_cache.clear)


def authenticate(headers: dict[str, str]) -> Principal:
    auth = headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpError(401, "unauthenticated", "send 'Authorization: Bearer <API key>'")
    token = token.strip()
    admin = admin_key()
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Principal(is_admin=True)
    from chalicelib.corps import items as corp_items

    found = corp_items.get_api_key(hash_api_key(token))
    if found is None:
        raise HttpError(401, "unauthenticated", "unknown API key")
    return Principal(is_admin=False, corp_id=found.corp_id)


# -- pagination ----------------------------------------------------------------------------------
T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class PageQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = None


class Page(Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


# -- lazy references ------------------------------------------------------------------------------
class Lazy:
    """A model or exception named by "module:Name", imported on first use. Routes must be
    registered when app.py is imported, but their capabilities' models need not be built then:
    a cold callback Lambda never loads the operator API's modules."""

    def __init__(self, ref: str, *, page: bool = False):
        self.module, _, self.name = ref.partition(":")
        self.page = page
        self._value: Any = None

    def get(self) -> Any:
        if self._value is None:
            import importlib

            value = getattr(importlib.import_module(self.module), self.name)
            self._value = Page[value] if self.page else value
        return self._value

    def loaded(self) -> Any:
        """The object if its module is imported already, else None (it cannot have been raised)."""
        import sys

        return self.get() if self.module in sys.modules else None


def resolve(ref: Any) -> Any:
    return ref.get() if isinstance(ref, Lazy) else ref


# -- endpoints -----------------------------------------------------------------------------------
@dataclass
class EndpointSpec:
    method: str
    path: str
    summary: str
    auth: str  # "public" | "admin" | "corp" | "any"
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    path_params: list[str] = field(default_factory=list)
    errors: tuple[Any, ...] = ()  # see endpoint(errors=...)
    view: Callable[[Call], Any] | None = None  # the view function (the OpenAPI document reads its errors)


ENDPOINTS: list[EndpointSpec] = []
WECOM = "wecom"  # in endpoint(errors=...): the route calls WeCom (its errors: map_exception)
# Ids in paths (corps, channel-code states, tags, customers, jobs) are WeCom's or ours: short and
# plain. Anything else is refused before it can reach a DynamoDB key (whose size is limited).
_PATH_PARAM = re.compile(r"[A-Za-z0-9_\-.@]{1,128}")


@dataclass
class Call:
    """What a view function receives: who calls, and the parsed inputs."""

    principal: Principal
    params: dict[str, str]
    body: Any = None
    query: Any = None
    base_url: str = ""


def public_base_url(request: Any) -> str:
    """Where this API is reachable: SCRM_PUBLIC_BASE_URL when set (a custom domain), else what
    the request itself came to (API Gateway's host, https, and its stage prefix)."""
    import os

    from chalicelib.platform.settings import PUBLIC_BASE_URL, get_settings

    if os.environ.get(PUBLIC_BASE_URL):
        return get_settings().public_base_url
    headers = request.headers or {}
    host = headers.get("host")
    if not host:
        return get_settings().public_base_url
    proto = headers.get("x-forwarded-proto", "http")
    context = request.context or {}
    full, resource_path = context.get("path") or "", request.path or ""
    prefix = full[: len(full) - len(resource_path)] if resource_path and full.endswith(resource_path) else ""
    return f"{proto}://{host}{prefix}".rstrip("/")


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def endpoint(
    bp: Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    auth: str = "corp",
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    errors: tuple[Any, ...] = (),
) -> Callable[[Callable[[Call], Any]], Callable[..., Response]]:
    """Register `fn(call) -> model | None` as a Chalice route with the API's shared behaviour.

    The OpenAPI document lists the errors a route can answer without being told: those of this
    decorator (`shared_errors`) and those its view raises (chalicelib/api/openapi.py reads them
    from the code). `errors` adds what that reading cannot see: exception types mapped by
    `register_error` (or "module:Name"), `WECOM` for a route that calls WeCom by a path it cannot
    follow, or `(status, code)` for an HttpError raised indirectly."""

    def decorate(fn: Callable[[Call], Any]) -> Callable[..., Response]:
        spec = EndpointSpec(method, path, summary, auth, body, query, response, status,
                            errors=tuple(errors), view=fn)
        spec.path_params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        ENDPOINTS.append(spec)

        @functools.wraps(fn)
        def view(**params: str) -> Response:
            request = bp.current_request
            try:
                principal = Principal(is_admin=False)
                if auth != "public":
                    principal = authenticate(request.headers)
                    if auth == "admin" and not principal.is_admin:
                        raise HttpError(403, "admin_key_required", "this endpoint needs the admin key")
                    if auth == "corp":
                        principal.require_corp()
                if any(not _PATH_PARAM.fullmatch(v or "") for v in params.values()):
                    raise not_found("resource")  # no id of ours looks like this (or is this long)
                call = Call(principal=principal, params=params, base_url=public_base_url(request))
                if body is not None:
                    call.body = _parse_body(request.raw_body, resolve(body))
                if query is not None:
                    call.query = _parse_query(request.query_params or {}, resolve(query))
                result = fn(call)
                if result is None and status == 204:
                    return Response(body="", status_code=204)
                return Response(
                    body=json.dumps(_dump(result), ensure_ascii=False),
                    status_code=status,
                    headers={"Content-Type": "application/json"},
                )
            except HttpError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.details)
            except Exception as exc:  # mapped once, here; unknown errors stay 500 and are logged
                mapped = map_exception(exc)
                if mapped is None:
                    logger.exception("unhandled error in %s %s", method, path)
                    return error_response(500, "internal_error", "internal error")
                return error_response(mapped.status, mapped.code, mapped.message, mapped.details)

        view.__name__ = fn.__name__
        return bp.route(path, methods=[method], content_types=["*/*"])(view)

    return decorate


_ERROR_MAP: list[tuple[Any, int, str, Callable[[Exception], Any] | None]] = []


def register_error(exc_type: type[Exception] | str, status: int, code: str,
                   details: Callable[[Exception], Any] | None = None) -> None:
    """A capability's exception (a class, or "module:Name" to stay lazy) -> HTTP status and
    stable code, declared once by its API module. A FieldError's `details` name its field unless
    `details` says otherwise."""
    _ERROR_MAP.append((Lazy(exc_type) if isinstance(exc_type, str) else exc_type, status, code, details))


def map_exception(exc: Exception) -> HttpError | None:
    """Errors from lower layers, mapped to HTTP once (never by message text)."""
    from chalicelib.platform.errors import FieldError
    from chalicelib.store import InvalidCursor

    if isinstance(exc, InvalidCursor):
        return invalid(str(exc))
    for ref, status, code, details in _ERROR_MAP:
        exc_type = ref.loaded() if isinstance(ref, Lazy) else ref
        if exc_type is not None and isinstance(exc, exc_type):
            if details is None and isinstance(exc, FieldError):
                details = type(exc).details  # its own: a FieldError may name several fields
            return HttpError(status, code, str(exc) or code, details(exc) if details else None)
    try:
        from chalicelib.wecom import errors as wecom_errors
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, wecom_errors.WeComError):
        return None
    # WeCom's answer for people: errcode, errmsg and a plain explanation of the common errcodes.
    details = wecom_errors.describe(exc)
    code = wecom_errors.error_code(exc)
    if isinstance(exc, wecom_errors.FrequencyLimited):
        return HttpError(429, code, "WeCom's frequency limit was hit; retry later",
                         {"retry_after": getattr(exc, "retry_after", None), **details})
    if isinstance(exc, wecom_errors.ApiError):
        status = 400 if isinstance(exc, wecom_errors.InvalidArgument) else 502
        explanation = details["explanation"]
        return HttpError(status, code, f"WeCom refused the call: errcode {exc.errcode}"
                         + (f": {explanation}" if explanation else ""), details)
    return HttpError(502, code, "WeCom could not be reached; retry later", details)


# -- errors, described (for the OpenAPI document; request handling does not use these) ------------
def registered_errors() -> list[tuple[type[BaseException], int, str]]:
    """register_error's entries, (exception type, status, code), in the order map_exception tries them."""
    return [(resolve(ref), status, code) for ref, status, code, _ in _ERROR_MAP]


def describe_error(exc_type: type[BaseException]) -> tuple[int, str] | None:
    """(status, code) that map_exception answers for an exception of this type, the same way
    (the store's InvalidCursor, then register_error's entries, first match); None for the WeCom
    client's errors (map them with an instance) and for anything that ends as a 500."""
    from chalicelib.store import InvalidCursor

    if issubclass(exc_type, InvalidCursor):
        return 400, "invalid_request"
    for registered, status, code in registered_errors():
        if issubclass(exc_type, registered):
            return status, code
    return None


def shared_errors(spec: EndpointSpec) -> list[tuple[int, str, str]]:
    """What endpoint()'s own handling can answer for this route, as (status, code, when): the
    API key, the ids in the path, the body, the query, and unexpected failures."""
    errors: list[tuple[int, str, str]] = []
    if spec.auth != "public":
        errors.append((401, "unauthenticated", "no `Authorization: Bearer <API key>` header, or an unknown key"))
    if spec.auth == "admin":
        errors.append((403, "admin_key_required", "this endpoint needs the admin key"))
    if spec.auth == "corp":
        errors.append((403, "corp_key_required", "this endpoint needs a corp-scoped API key, not the admin key"))
    if spec.path_params:
        names = " / ".join(f"`{p}`" for p in spec.path_params)
        errors.append((404, "not_found", f"no such {names} (or not visible to this key)"))
    if spec.body is not None:
        errors.append((400, "invalid_request", "the body is missing or is not JSON"))
        errors.append((400, "validation_error", "the body does not match its schema; `details` lists "
                                                "`{field, message}` for each problem"))
        errors.append((413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes"))
    if spec.query is not None:
        errors.append((400, "validation_error", "a query parameter is invalid; `details` lists "
                                                "`{field, message}` for each problem"))
        if "cursor" in getattr(resolve(spec.query), "model_fields", {}):
            errors.append((400, "invalid_request", "`cursor` is not one that this listing gave out"))
    errors.append((500, "internal_error", "an unexpected failure (logged); retry later"))
    return errors


# Where a field's type is a union (`Id | SkipJsonSchema[None]`: optional, and absent from the JSON
# Schema), pydantic names each member in the error's location ("segment_id.constrained-str") and adds
# "Input should be None" for the None member: neither is a field the client sent.
_UNION_MEMBERS = re.compile(r"^(none|str|int|float|bool|date|datetime)$|^(constrained|function|lax|json|is|list|dict|"
                            r"nullable|literal|tuple|set)[-\[]")


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    details: dict[tuple[str, str], str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = [str(p) for p in err["loc"]]
        field = ".".join(p for p in path if not _UNION_MEMBERS.match(p))
        if err["type"] == "none_required" and path and path[-1] == "none":
            continue  # the None member of an optional field refusing a value: the other member says why
        details.setdefault((field, err["msg"]), field)
    return [{"field": field, "message": message} for field, message in details]


def _parse_body(raw: bytes | None, model: type[BaseModel]) -> BaseModel:
    if raw is None or not raw.strip():
        try:  # a body whose every field has a default may be left out
            return model()
        except ValidationError:
            raise invalid("a JSON body is required") from None
    if len(raw) > MAX_BODY_BYTES:
        raise HttpError(413, "body_too_large", f"body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("body is not valid JSON") from exc
    except RecursionError as exc:  # the parser's depth limit (about 1000 levels): no body of ours nests so
        raise invalid("body is nested too deeply") from exc
    try:
        return model.model_validate(data)
    except RecursionError as exc:
        raise invalid("body is nested too deeply") from exc
    except ValidationError as exc:
        raise HttpError(400, "validation_error", "the request body is invalid",
                       validation_details(exc)) from exc


def _parse_query(params: dict[str, str], model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise HttpError(400, "validation_error", "the query parameters are invalid",
                       validation_details(exc)) from exc
