"""The shared access-token cache's record: written by the store (store.tokens.DynamoTokenCache)
and read by the WeCom client (wecom.client.TokenCache), so that neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CachedToken:
    """What the shared cache holds for one (corp, app). Times are epoch seconds."""

    access_token: str | None
    expires_at: float = 0.0
    lease_holder: str | None = None
    lease_until: float = 0.0
