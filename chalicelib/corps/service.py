"""The corps API's requests and views: registering a corp, changing it, its API keys.

Kept apart from routes.py so that importing app.py (every function's cold start, the callback's
included) defines none of these models: the routes name them lazily (`api.core.Lazy`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ConfigDict, Field, SecretStr, field_validator

from chalicelib.platform.model import Change, Model


# Field rules shared by registration and update.
def _check_token(v: SecretStr) -> SecretStr:
    raw = v.get_secret_value()
    if not (1 <= len(raw) <= 32 and raw.isascii() and raw.isalnum()):
        raise ValueError("callback_token must be 1-32 letters or digits (WeCom's rule)")
    return v


def _check_aes_key(v: SecretStr) -> SecretStr:
    raw = v.get_secret_value()
    if not (len(raw) == 43 and raw.isascii() and raw.isalnum()):
        raise ValueError("encoding_aes_key must be exactly 43 letters or digits")
    return v


def _check_secret(v: SecretStr) -> SecretStr:
    if not 1 <= len(v.get_secret_value()) <= 128:
        raise ValueError("contact_secret must be 1-128 characters")
    return v


def _check_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {v!r}") from exc
    return v


def _zones(schema: dict[str, Any]) -> None:
    """The zones the server knows, as the schema's enum (read when the document is built)."""
    from zoneinfo import available_timezones

    schema["enum"] = sorted(available_timezones())


# The checks above, as the schema states them (SecretStr takes no constraints of its own).
CallbackToken = Annotated[SecretStr, AfterValidator(_check_token),
                          Field(description="the Token set in WeCom's callback settings",
                                json_schema_extra={"pattern": "^[A-Za-z0-9]{1,32}$"})]
EncodingAesKey = Annotated[SecretStr, AfterValidator(_check_aes_key),
                           Field(description="the 43-character EncodingAESKey",
                                 json_schema_extra={"pattern": "^[A-Za-z0-9]{43}$"})]
ContactSecret = Annotated[SecretStr, AfterValidator(_check_secret),
                          Field(description="secret of the self-built app used for customer contact",
                                json_schema_extra={"minLength": 1, "maxLength": 128})]
TimeZone = Annotated[str, AfterValidator(_check_zone),
                     Field(description="IANA zone; days in stats are calendar days here", json_schema_extra=_zones)]
CorpName = Annotated[str, Field(min_length=1, max_length=100)]


class CorpCreate(Model):
    model_config = ConfigDict(extra="forbid")
    corp_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="WeCom corpid")
    name: CorpName
    callback_token: CallbackToken
    encoding_aes_key: EncodingAesKey
    contact_secret: ContactSecret
    agent_id: str | None = Field(None, max_length=32)
    time_zone: TimeZone = "Asia/Shanghai"


class CorpUpdate(Change):
    """Only the fields sent change (at least one). Secrets are sealed again; the answer never contains them."""

    model_config = ConfigDict(extra="forbid")
    min_changes = 1
    name: CorpName = None
    callback_token: CallbackToken = None
    encoding_aes_key: EncodingAesKey = None
    contact_secret: ContactSecret = None
    time_zone: TimeZone = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, v: object) -> object:
        if v is None:
            raise ValueError("may not be null: leave the field out to keep its value")
        return v


class CorpView(Model):
    corp_id: str
    name: str
    time_zone: str
    agent_id: str | None
    callback_url: str = Field(description="set this as the callback URL in WeCom's admin console")
    created_at: int
    updated_at: int | None = Field(None, description="last change of its settings or secrets")


class CorpCreated(CorpView):
    api_key: str = Field(description="corp-scoped API key; shown once, store it safely")


class ApiKeyCreate(Model):
    model_config = ConfigDict(extra="forbid")
    label: str = Field("default", min_length=1, max_length=64)


class ApiKeyCreated(Model):
    corp_id: str
    key_id: str = Field(description="names the key in the list and to revoke it")
    label: str
    created_at: int
    last4: str
    api_key: str = Field(description="shown once, store it safely")


class ApiKeyView(Model):
    key_id: str
    label: str
    created_at: int
    last4: str = Field(description="the key's last 4 characters")
    current: bool = Field(description="true for the key that made this request")


class MyCorp(Model):
    corp_id: str
    name: str
    time_zone: str = Field(description="IANA zone: the corp's days (stats, schedules) are calendar days here")
    agent_configured: bool = Field(description="whether the corp's app (agent id) is set: app messages (churn "
                                               "alerts, SOP reminders) need it")


class MeView(Model):
    """GET /me: who the key making the request is."""

    role: Literal["corp", "admin"] = Field(description="corp: a corp-scoped key; admin: the admin key")
    corp: MyCorp | None = Field(description="the key's corp; null for the admin key")


class Health(Model):
    status: str
    time: int
