"""/api/v1/corps: register corps (admin) and manage their API keys; health and OpenAPI."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalice import Blueprint, Response
from pydantic import ConfigDict, Field, SecretStr, field_validator

from chalicelib import dead_letters
from chalicelib.api.core import (
    API_PREFIX,
    ApiError,
    Call,
    Lazy,
    Page,
    PageQuery,
    conflict,
    endpoint,
    hash_api_key,
    new_api_key,
    not_found,
    register_error,
)
from chalicelib.model import Model

bp = Blueprint(__name__)
register_error(dead_letters.UnknownQueue, 404, "not_found")


class CorpCreate(Model):
    model_config = ConfigDict(extra="forbid")
    corp_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="WeCom corpid")
    name: str = Field(min_length=1, max_length=100)
    callback_token: SecretStr = Field(description="the Token set in WeCom's callback settings")
    encoding_aes_key: SecretStr = Field(description="the 43-character EncodingAESKey")
    contact_secret: SecretStr = Field(description="secret of the self-built app used for customer contact")
    agent_id: str | None = Field(None, max_length=32)
    time_zone: str = Field("Asia/Shanghai", description="IANA zone; days in stats are calendar days here")

    @field_validator("callback_token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not (1 <= len(raw) <= 32 and raw.isascii() and raw.isalnum()):
            raise ValueError("callback_token must be 1-32 letters or digits (WeCom's rule)")
        return v

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not (len(raw) == 43 and raw.isascii() and raw.isalnum()):
            raise ValueError("encoding_aes_key must be exactly 43 letters or digits")
        return v

    @field_validator("contact_secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if not 1 <= len(v.get_secret_value()) <= 128:
            raise ValueError("contact_secret must be 1-128 characters")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class CorpView(Model):
    corp_id: str
    name: str
    time_zone: str
    agent_id: str | None
    callback_url: str = Field(description="set this as the callback URL in WeCom's admin console")
    created_at: int


class CorpCreated(CorpView):
    api_key: str = Field(description="corp-scoped API key; shown once, store it safely")


class ApiKeyCreate(Model):
    model_config = ConfigDict(extra="forbid")
    label: str = Field("default", min_length=1, max_length=64)


class ApiKeyCreated(Model):
    corp_id: str
    label: str
    api_key: str


class Health(Model):
    status: str
    time: int


def _view(item, call: Call) -> CorpView:
    return CorpView(
        corp_id=item.corp_id,
        name=item.name,
        time_zone=item.time_zone,
        agent_id=item.agent_id,
        callback_url=f"{call.base_url}/wecom/{item.corp_id}/callback",
        created_at=item.created_at,
    )


@endpoint(bp, "POST", f"{API_PREFIX}/corps", summary="Register a corp (admin key)", auth="admin",
          body=CorpCreate, response=CorpCreated, status=201)
def create_corp(call: Call) -> CorpCreated:
    from chalicelib import secrets
    from chalicelib.store import corps as corp_store

    req: CorpCreate = call.body
    now = int(time.time())
    sealed = secrets.seal(
        secrets.CorpSecrets(
            callback_token=req.callback_token,
            encoding_aes_key=req.encoding_aes_key,
            contact_secret=req.contact_secret,
        ),
        corp_id=req.corp_id,
    )
    api_key = new_api_key()
    item = corp_store.CorpItem(corp_id=req.corp_id, name=req.name, time_zone=req.time_zone,
                               agent_id=req.agent_id, sealed_secrets=sealed, created_at=now)
    try:
        corp_store.create_corp(
            item,
            corp_store.ApiKeyItem(key_hash=hash_api_key(api_key), corp_id=req.corp_id,
                                  label="initial", created_at=now),
        )
    except corp_store.CorpExists as exc:
        raise conflict("corp_exists", f"corp {req.corp_id} is already registered") from exc
    return CorpCreated(**_view(item, call).model_dump(), api_key=api_key)


@endpoint(bp, "GET", f"{API_PREFIX}/corps", summary="List corps (admin key)", auth="admin",
          query=PageQuery, response=Lazy(f"{__name__}:CorpView", page=True))
def list_corps(call: Call) -> Page[CorpView]:
    from chalicelib.store import corps as corp_store

    q: PageQuery = call.query
    items, cursor = corp_store.list_corps(limit=q.limit, cursor=q.cursor)
    return Page[CorpView](items=[_view(i, call) for i in items], next_cursor=cursor)


def _visible_corp(call: Call):
    from chalicelib.store import corps as corp_store

    corp_id = call.params["corp_id"]
    # Another corp's id answers exactly like an unknown one: a key learns nothing outside its corp.
    item = corp_store.get_corp(corp_id) if call.principal.may_see(corp_id) else None
    if item is None:
        raise not_found("corp")
    return item


@endpoint(bp, "GET", f"{API_PREFIX}/corps/{{corp_id}}", summary="One corp (its key or admin)",
          auth="any", response=CorpView)
def get_corp(call: Call) -> CorpView:
    return _view(_visible_corp(call), call)


@endpoint(bp, "POST", f"{API_PREFIX}/corps/{{corp_id}}/api-keys",
          summary="Issue another API key for a corp (its key or admin)", auth="any",
          body=ApiKeyCreate, response=ApiKeyCreated, status=201)
def create_api_key(call: Call) -> ApiKeyCreated:
    from chalicelib.store import corps as corp_store

    item = _visible_corp(call)
    key = new_api_key()
    corp_store.put_api_key(corp_store.ApiKeyItem(
        key_hash=hash_api_key(key), corp_id=item.corp_id, label=call.body.label,
        created_at=int(time.time())))
    return ApiKeyCreated(corp_id=item.corp_id, label=call.body.label, api_key=key)


@endpoint(bp, "GET", f"{API_PREFIX}/health", summary="Liveness", auth="public", response=Health)
def health(call: Call) -> Health:
    return Health(status="ok", time=int(time.time()))


@bp.route(f"{API_PREFIX}/openapi.json", methods=["GET"])
def openapi() -> Response:
    from chalicelib.api import openapi as spec

    return Response(body=spec.build(), status_code=200, headers={"Content-Type": "application/json"})


__all__ = ["bp", "ApiError"]


# -- dead letters (admin) ---------------------------------------------------------------------------
class DeadLetterSummary(Model):
    queues: list = Field(description="per queue: its DLQ and how many messages it holds")


class DeadLetterPeek(Model):
    messages: list


class RedriveRequest(Model):
    model_config = ConfigDict(extra="forbid")
    max_messages: int = Field(1000, ge=1, le=100_000)


class RedriveResult(Model):
    queue: str
    moved: int


class DeadLetterQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(10, ge=1, le=10)


@endpoint(bp, "GET", f"{API_PREFIX}/dead-letters", summary="Dead-letter queues and their sizes (admin)",
          auth="admin", response=DeadLetterSummary)
def dead_letter_summary(call: Call) -> DeadLetterSummary:
    return DeadLetterSummary(queues=[q.model_dump() for q in dead_letters.summary()])


@endpoint(bp, "GET", f"{API_PREFIX}/dead-letters/{{queue}}", summary="Look at dead letters (admin)",
          auth="admin", query=DeadLetterQuery, response=DeadLetterPeek)
def dead_letter_peek(call: Call) -> DeadLetterPeek:
    return DeadLetterPeek(messages=[m.model_dump() for m in dead_letters.peek(call.params["queue"],
                                                                              limit=call.query.limit)])


@endpoint(bp, "POST", f"{API_PREFIX}/dead-letters/{{queue}}/redrive",
          summary="Move dead letters back to their queue (admin)", auth="admin", body=RedriveRequest,
          response=RedriveResult)
def dead_letter_redrive(call: Call) -> RedriveResult:
    moved = dead_letters.redrive(call.params["queue"], max_messages=call.body.max_messages)
    return RedriveResult(queue=call.params["queue"], moved=moved)
