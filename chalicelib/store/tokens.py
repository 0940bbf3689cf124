"""The shared WeCom access-token cache: one item per (corp, app), `keys.access_token`.

Attributes: ``access_token``, ``token_expires_at`` (epoch s), ``lease_holder`` and ``lease_until``
(the refresh lease), ``expires_at`` (the table's TTL: a day after the token died, so a corp that
stops calling leaves nothing behind). All reads are consistent: a token write must be visible to
the next instance at once or it would call ``gettoken`` again.

The refresh lease is a conditional write: it succeeds only when no live lease exists *and* the
stored token still needs refreshing, so of N instances that saw an old token, one calls
``gettoken`` and the rest re-read (wecom-api.md 3.1: gettoken is frequency-limited).
"""

from __future__ import annotations

from chalicelib.platform.tokens import CachedToken
from chalicelib.store import keys
from chalicelib.store.table import ConditionFailed, Table

TTL_AFTER_EXPIRY_SECONDS = 86400


class DynamoTokenCache:
    """`wecom.client.TokenCache` on the one table (a protocol: nothing here imports wecom)."""

    def __init__(self, table: Table):
        self.table = table

    def get(self, corp_id: str, app: str) -> CachedToken | None:
        item = self.table.get(keys.access_token(corp_id, app), consistent=True)
        if not item:
            return None
        return CachedToken(
            access_token=item.get("access_token") or None,
            expires_at=float(item.get("token_expires_at") or 0),
            lease_holder=item.get("lease_holder"),
            lease_until=float(item.get("lease_until") or 0),
        )

    def acquire_lease(self, corp_id: str, app: str, *, holder: str, now: float,
                      lease_seconds: float, fresh_until: float) -> bool:
        try:
            self.table.update(
                keys.access_token(corp_id, app),
                expression="SET #lh = :holder, #lu = :until, #ttl = if_not_exists(#ttl, :ttl)",
                condition=("(attribute_not_exists(#lu) OR #lu < :now) AND "
                           "(attribute_not_exists(#te) OR #te <= :fresh)"),
                names={"#lh": "lease_holder", "#lu": "lease_until", "#te": "token_expires_at",
                       "#ttl": "expires_at"},
                values={":holder": holder, ":until": now + lease_seconds, ":now": now,
                        ":fresh": fresh_until, ":ttl": int(now + lease_seconds) + TTL_AFTER_EXPIRY_SECONDS},
            )
        except ConditionFailed:
            return False
        return True

    def store(self, corp_id: str, app: str, *, access_token: str, expires_at: float,
              holder: str) -> None:
        # Unconditional: even if our lease lapsed, a freshly issued token is valid and newer.
        self.table.put({
            **keys.access_token(corp_id, app),
            "access_token": access_token,
            "token_expires_at": expires_at,
            "expires_at": int(expires_at) + TTL_AFTER_EXPIRY_SECONDS,
        })

    def release_lease(self, corp_id: str, app: str, *, holder: str) -> None:
        try:
            self.table.update(
                keys.access_token(corp_id, app),
                expression="REMOVE #lh, #lu",
                condition="#lh = :holder",
                names={"#lh": "lease_holder", "#lu": "lease_until"},
                values={":holder": holder},
            )
        except ConditionFailed:
            pass

    def invalidate(self, corp_id: str, app: str, *, access_token: str) -> bool:
        try:
            self.table.update(
                keys.access_token(corp_id, app),
                expression="REMOVE #tok, #te",
                condition="#tok = :tok",
                names={"#tok": "access_token", "#te": "token_expires_at"},
                values={":tok": access_token},
            )
        except ConditionFailed:
            return False
        return True
