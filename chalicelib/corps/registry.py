"""Corps: registration, and the per-instance runtime view (secrets opened, crypto ready).

The callback path needs a corp's token and AES key on every request; opening them costs a
DynamoDB read and a KMS decrypt, so the opened view is kept in memory for `RUNTIME_TTL` seconds
(a secret changed through `update` takes effect at once on the instance that changed it, and
on the others within that time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from chalicelib.platform import caches
from chalicelib.platform.sealing import CorpSecrets

RUNTIME_TTL = 300.0
UNKNOWN_TTL = 10.0
# A secret WeCom or a callback refuses may be one another instance changed (PATCH /corps): the
# corp is then reloaded, but at most this often per instance (bad signatures cost no KMS calls).
REFRESH_AFTER = 10.0


@dataclass(frozen=True)
class CorpRuntime:
    corp_id: str
    name: str
    time_zone: str
    secrets: CorpSecrets
    crypto: Any  # wecom.crypto.CallbackCrypto


_runtime: dict[str, tuple[float, CorpRuntime | None]] = {}
_loaded_at: dict[str, float] = {}


def runtime(corp_id: str, *, now: float | None = None) -> CorpRuntime | None:
    now = time.monotonic() if now is None else now
    hit = _runtime.get(corp_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    from chalicelib.corps import items as corp_items
    from chalicelib.platform import sealing as secrets

    item = corp_items.get_corp(corp_id)
    value: CorpRuntime | None = None
    if item is not None:
        from chalicelib.wecom.crypto import CallbackCrypto

        opened = secrets.unseal(item.sealed_secrets, corp_id=corp_id)
        value = CorpRuntime(
            corp_id=corp_id,
            name=item.name,
            time_zone=item.time_zone,
            secrets=opened,
            crypto=CallbackCrypto(
                token=opened.callback_token.get_secret_value(),
                encoding_aes_key=opened.encoding_aes_key.get_secret_value(),
                receive_id=corp_id,
            ),
        )
    _runtime[corp_id] = (now + (RUNTIME_TTL if value else UNKNOWN_TTL), value)
    _loaded_at[corp_id] = now
    return value


def refresh(corp_id: str, *, now: float | None = None) -> CorpRuntime | None:
    """The corp reloaded from the table, or None if this instance loaded it less than
    `REFRESH_AFTER` seconds ago (then there is nothing newer to try)."""
    now = time.monotonic() if now is None else now
    if now - _loaded_at.get(corp_id, float("-inf")) < REFRESH_AFTER:
        return None
    forget(corp_id)
    return runtime(corp_id, now=now)


def _clear() -> None:
    _runtime.clear()
    _loaded_at.clear()
    for _, c in _clients.values():
        c.close()
    _clients.clear()


def forget(corp_id: str) -> None:
    """Drop this instance's cached view and WeCom client of one corp (after its secrets changed)."""
    _runtime.pop(corp_id, None)
    _loaded_at.pop(corp_id, None)
    # Not closed: a request of this instance may still be using it; its pool goes with it.
    _clients.pop(corp_id, None)


# -- changing a corp ----------------------------------------------------------------------------
SECRET_FIELDS = ("callback_token", "encoding_aes_key", "contact_secret")
CONTACT_APP = "contact"  # the app name WeComClient keys the contact secret's access token by


def update(corp_id: str, *, name: str | None = None, time_zone: str | None = None,
           new_secrets: dict[str, Any] | None = None) -> Any:
    """Change a corp's name, time zone and/or secrets (SecretStr values, by field name); the
    others stay. Secrets are unsealed, changed and sealed again (a fresh data key). Returns the
    stored corp item, or None if the corp is not registered. Raises store.corps.CorpChanged when a
    concurrent update changed the secrets first (nothing written: retry)."""
    import time as wall

    from chalicelib.corps import items as corp_items
    from chalicelib.platform import sealing as secrets

    new_secrets = {k: v for k, v in (new_secrets or {}).items() if v is not None}
    unknown = set(new_secrets) - set(SECRET_FIELDS)
    if unknown:
        raise ValueError(f"not a corp secret: {sorted(unknown)}")
    item = corp_items.get_corp(corp_id)
    if item is None:
        return None
    sealed = nonce = None
    if new_secrets:
        opened = secrets.unseal(item.sealed_secrets, corp_id=corp_id)
        changed = opened.model_copy(update=new_secrets)
        sealed, nonce = secrets.seal(changed, corp_id=corp_id), item.sealed_secrets.get("nonce")
    updated = corp_items.update_corp(corp_id, name=name, time_zone=time_zone, sealed_secrets=sealed,
                                     expected_nonce=nonce, updated_at=int(wall.time()))
    forget(corp_id)  # a new contact secret also means a new token: see token_app
    return updated


def token_app(secret: str) -> str:
    """The shared token cache's name for the contact app: per secret, so that a token issued for
    an old secret is never used with a new one, nor stored over the new one's by an instance that
    still holds the old secret (other instances keep their cached corp up to RUNTIME_TTL)."""
    import hashlib

    return f"{CONTACT_APP}-{hashlib.sha256(secret.encode()).hexdigest()[:12]}"


# -- WeCom API clients ---------------------------------------------------------------------------
_clients: dict[str, tuple[str, Any]] = {}
_transport: list[Any] = []


caches.register("corps:runtime+clients", _clear)


def use_wecom_transport(transport: Any | None) -> None:
    """Route every WeCom client through `transport` (tests: the sandbox in-process)."""
    _transport.clear()
    if transport is not None:
        _transport.append(transport)
    for _, c in _clients.values():
        c.close()
    _clients.clear()


def http_transport() -> Any | None:
    """The httpx transport outgoing HTTP uses (None: the network; tests: the sandbox in-process)."""
    return _transport[0] if _transport else None


def wecom_client(corp_id: str) -> Any:
    """The corp's WeCom client, one per instance: the token it holds in memory costs no AWS
    request; the shared DynamoDB token cache and pacing windows keep instances in step."""
    corp = runtime(corp_id)
    if corp is None:
        raise LookupError(f"corp {corp_id} is not registered")
    secret = corp.secrets.contact_secret.get_secret_value()
    cached = _clients.get(corp_id)
    if cached is not None and cached[0] == secret:  # a rotated secret gets a new client
        return cached[1]
    from chalicelib.platform.settings import get_settings
    from chalicelib.store import get_table
    from chalicelib.store.rate_limits import DynamoRateLimiter
    from chalicelib.store.tokens import DynamoTokenCache
    from chalicelib.wecom.client import WeComClient

    table = get_table()
    client = WeComClient(
        corp_id=corp_id,
        secret=secret,
        app=token_app(secret),
        base_url=get_settings().wecom_api_base,
        token_cache=DynamoTokenCache(table),
        rate_limiter=DynamoRateLimiter(table),
        transport=_transport[0] if _transport else None,
    )
    _clients[corp_id] = (secret, client)
    return client
