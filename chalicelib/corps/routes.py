"""/api/v1/corps: register corps (admin), change their settings and secrets, issue, list and revoke
their API keys; health, OpenAPI and dead letters (admin)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.api.core import (
    API_PREFIX,
    Call,
    HttpError,
    Lazy,
    Page,
    PageQuery,
    conflict,
    endpoint,
    hash_api_key,
    invalid,
    new_api_key,
    not_found,
    register_error,
)

if TYPE_CHECKING:
    from chalicelib.corps.service import ApiKeyCreated, ApiKeyView, CorpCreated, CorpView, Health, MeView
    from chalicelib.platform.dead_letters import DeadLetterPeek, DeadLetterSummary, RedriveResult

logger = logging.getLogger(__name__)
bp = Blueprint(__name__)
DL = "chalicelib.platform.dead_letters"
register_error(f"{DL}:UnknownQueue", 404, "not_found")
CORPS = "chalicelib.corps.service"


def _view(item, call: Call) -> CorpView:
    from chalicelib.corps.service import CorpView

    return CorpView(
        corp_id=item.corp_id,
        name=item.name,
        time_zone=item.time_zone,
        agent_id=item.agent_id,
        callback_url=f"{call.base_url}/wecom/{item.corp_id}/callback",
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _new_key(corp_id: str, label: str, now: int) -> tuple[str, Any]:
    """A new API key and its stored form (hash, id, last 4 characters; never the key)."""
    import secrets as pysecrets

    from chalicelib.corps import items as corp_items

    key = new_api_key()
    # Ids sort by issue time (hex milliseconds, fixed width until the year 2527), then 8 random hex.
    key_id = f"ak_{time.time_ns() // 1_000_000:011x}{pysecrets.token_hex(4)}"
    return key, corp_items.ApiKeyItem(key_hash=hash_api_key(key), corp_id=corp_id, label=label,
                                      created_at=now, key_id=key_id, last4=key[-4:])


def _request_key_hash() -> str:
    """Hash of the key this request was authenticated with (the endpoint checked it already)."""
    auth = (bp.current_request.headers or {}).get("authorization") or ""
    return hash_api_key(auth.partition(" ")[2].strip())


@endpoint(bp, "POST", f"{API_PREFIX}/corps", summary="Register a corp (admin key)", auth="admin",
          body=Lazy(f"{CORPS}:CorpCreate"), response=Lazy(f"{CORPS}:CorpCreated"), status=201)
def create_corp(call: Call) -> CorpCreated:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps.service import CorpCreated
    from chalicelib.platform import sealing as secrets

    req = call.body
    now = int(time.time())
    sealed = secrets.seal(
        secrets.CorpSecrets(
            callback_token=req.callback_token,
            encoding_aes_key=req.encoding_aes_key,
            contact_secret=req.contact_secret,
        ),
        corp_id=req.corp_id,
    )
    api_key, key_item = _new_key(req.corp_id, "initial", now)
    item = corp_items.CorpItem(corp_id=req.corp_id, name=req.name, time_zone=req.time_zone,
                               agent_id=req.agent_id, sealed_secrets=sealed, created_at=now)
    try:
        corp_items.create_corp(item, key_item)
    except corp_items.CorpExists as exc:
        raise conflict("corp_exists", f"corp {req.corp_id} is already registered") from exc
    return CorpCreated(**_view(item, call).model_dump(), api_key=api_key)


@endpoint(bp, "GET", f"{API_PREFIX}/corps", summary="List corps (admin key)", auth="admin",
          query=PageQuery, response=Lazy(f"{CORPS}:CorpView", page=True))
def list_corps(call: Call) -> Page[CorpView]:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps.service import CorpView

    q: PageQuery = call.query
    items, cursor = corp_items.list_corps(limit=q.limit, cursor=q.cursor)
    return Page[CorpView](items=[_view(i, call) for i in items], next_cursor=cursor)


def _visible_corp(call: Call):
    from chalicelib.corps import items as corp_items

    corp_id = call.params["corp_id"]
    # Another corp's id answers exactly like an unknown one: a key learns nothing outside its corp.
    item = corp_items.get_corp(corp_id) if call.principal.may_see(corp_id) else None
    if item is None:
        raise not_found(f"corp {corp_id}")
    return item


@endpoint(bp, "GET", f"{API_PREFIX}/corps/{{corp_id}}", summary="One corp (its key or admin)",
          auth="any", response=Lazy(f"{CORPS}:CorpView"))
def get_corp(call: Call) -> CorpView:
    return _view(_visible_corp(call), call)


@endpoint(bp, "GET", f"{API_PREFIX}/me", summary="Who this key is: its role and, for a corp key, the corp (name, "
          "time zone, whether its app is set)", auth="any", response=Lazy(f"{CORPS}:MeView"))
def me(call: Call) -> MeView:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps.service import MeView, MyCorp

    if call.principal.is_admin:
        return MeView(role="admin", corp=None)
    item = corp_items.get_corp(call.principal.require_corp())
    if item is None:  # a key left behind by a corp that is gone
        raise not_found(f"corp {call.principal.corp_id}")
    return MeView(role="corp", corp=MyCorp(corp_id=item.corp_id, name=item.name, time_zone=item.time_zone,
                                           agent_configured=bool(item.agent_id)))


@endpoint(bp, "POST", f"{API_PREFIX}/corps/{{corp_id}}/api-keys",
          summary="Issue another API key for a corp (its key or admin)", auth="any",
          body=Lazy(f"{CORPS}:ApiKeyCreate"), response=Lazy(f"{CORPS}:ApiKeyCreated"), status=201)
def create_api_key(call: Call) -> ApiKeyCreated:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps.service import ApiKeyCreated

    item = _visible_corp(call)
    key, stored = _new_key(item.corp_id, call.body.label, int(time.time()))
    corp_items.put_api_key(stored)
    logger.info("API key %s issued for corp %s", stored.key_id, item.corp_id,
                extra={"corp_id": item.corp_id, "key_id": stored.key_id})
    return ApiKeyCreated(corp_id=item.corp_id, key_id=stored.key_id, label=stored.label,
                         created_at=stored.created_at, last4=stored.last4, api_key=key)


@endpoint(bp, "GET", f"{API_PREFIX}/corps/{{corp_id}}/api-keys",
          summary="A corp's API keys, oldest first: ids, labels, last 4 characters (its key or admin)",
          auth="any", query=PageQuery, response=Lazy(f"{CORPS}:ApiKeyView", page=True))
def list_api_keys(call: Call) -> Page[ApiKeyView]:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps.service import ApiKeyView

    item = _visible_corp(call)
    q: PageQuery = call.query
    keys, cursor = corp_items.list_api_keys(item.corp_id, limit=q.limit, cursor=q.cursor)
    mine = _request_key_hash()
    return Page[ApiKeyView](items=[
        ApiKeyView(key_id=k.key_id, label=k.label, created_at=k.created_at, last4=k.last4 or "",
                   current=k.key_hash == mine)
        for k in keys if k.key_id], next_cursor=cursor)


@endpoint(bp, "DELETE", f"{API_PREFIX}/corps/{{corp_id}}/api-keys/{{key_id}}",
          summary="Revoke an API key at once; a corp key cannot revoke itself (its key or admin)",
          auth="any", status=204)
def revoke_api_key(call: Call) -> None:
    from chalicelib.corps import items as corp_items

    item = _visible_corp(call)
    key = corp_items.get_corp_api_key(item.corp_id, call.params["key_id"])
    if key is None:
        raise not_found(f"API key {call.params['key_id']}")
    if not call.principal.is_admin and key.key_hash == _request_key_hash():
        raise conflict("cannot_revoke_own_key",
                       "this is the key making the request: revoke it with another key of the corp "
                       "or the admin key")
    try:
        corp_items.delete_api_key(key)
    except corp_items.ApiKeyNotFound as exc:
        raise not_found(f"API key {key.key_id}") from exc
    logger.info("API key %s of corp %s revoked", key.key_id, item.corp_id,
                extra={"corp_id": item.corp_id, "key_id": key.key_id})
    return None


@endpoint(bp, "PATCH", f"{API_PREFIX}/corps/{{corp_id}}",
          summary="Change a corp's name, time zone or secrets (its key or admin); answers without secrets",
          auth="any", body=Lazy(f"{CORPS}:CorpUpdate"), response=Lazy(f"{CORPS}:CorpView"))
def update_corp(call: Call) -> CorpView:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps import registry as corps
    from chalicelib.corps.service import CorpUpdate

    item = _visible_corp(call)
    req = call.body
    if not req.model_fields_set:
        raise invalid("nothing to change: send any of " + ", ".join(CorpUpdate.model_fields))
    try:
        updated = corps.update(item.corp_id, name=req.name, time_zone=req.time_zone,
                               new_secrets={f: getattr(req, f) for f in corps.SECRET_FIELDS})
    except corp_items.CorpChanged as exc:
        raise conflict("corp_changed", "the corp's secrets were changed by another request meanwhile; "
                                       "nothing was written: read it and retry") from exc
    if updated is None:
        raise not_found(f"corp {item.corp_id}")
    # Names of what changed, never values: the audit trail of secret rotations.
    logger.info("corp %s updated: %s", item.corp_id, ", ".join(sorted(req.model_fields_set)),
                extra={"corp_id": item.corp_id, "fields": sorted(req.model_fields_set)})
    return _view(updated, call)


@endpoint(bp, "GET", f"{API_PREFIX}/health", summary="Liveness", auth="public", response=Lazy(f"{CORPS}:Health"))
def health(call: Call) -> Health:
    from chalicelib.corps.service import Health

    return Health(status="ok", time=int(time.time()))


@bp.route(f"{API_PREFIX}/openapi.json", methods=["GET"])
def openapi() -> Response:
    from chalicelib.api import openapi as spec

    return Response(body=spec.build(), status_code=200, headers={"Content-Type": "application/json"})


__all__ = ["bp", "HttpError"]


# -- the staff directory ----------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/staff", query=PageQuery, response=Lazy("chalicelib.corps.staff:StaffPage"),
          summary="The corp's staff members with customer-contact permission, by id (WeCom's follow-user list, "
                  "read again when over 10 minutes old)")
def list_staff(call: Call) -> Any:
    from chalicelib.corps import staff

    q: PageQuery = call.query
    return staff.page(call.principal.corp_id, limit=q.limit, after=q.cursor)


# -- dead letters (admin) ---------------------------------------------------------------------------
@endpoint(bp, "GET", f"{API_PREFIX}/dead-letters", summary="Dead-letter queues and their sizes (admin)",
          auth="admin", response=Lazy(f"{DL}:DeadLetterSummary"))
def dead_letter_summary(call: Call) -> DeadLetterSummary:
    from chalicelib.platform import dead_letters

    return dead_letters.DeadLetterSummary(queues=[q.model_dump() for q in dead_letters.summary()])


@endpoint(bp, "GET", f"{API_PREFIX}/dead-letters/{{queue}}", summary="Look at dead letters (admin)",
          auth="admin", query=Lazy(f"{DL}:DeadLetterQuery"), response=Lazy(f"{DL}:DeadLetterPeek"))
def dead_letter_peek(call: Call) -> DeadLetterPeek:
    from chalicelib.platform import dead_letters

    return dead_letters.DeadLetterPeek(messages=dead_letters.peek(call.params["queue"], limit=call.query.limit))


@endpoint(bp, "POST", f"{API_PREFIX}/dead-letters/{{queue}}/redrive",
          summary="Move dead letters back to their queue (admin); body optional", auth="admin",
          body=Lazy(f"{DL}:RedriveRequest"), response=Lazy(f"{DL}:RedriveResult"))
def dead_letter_redrive(call: Call) -> RedriveResult:
    from chalicelib.platform import dead_letters

    moved = dead_letters.redrive(call.params["queue"], max_messages=call.body.max_messages)
    return dead_letters.RedriveResult(queue=call.params["queue"], moved=moved)
