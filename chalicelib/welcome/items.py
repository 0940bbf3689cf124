"""Welcome-code claims: which delivery of an event got to a welcome code first."""

from __future__ import annotations

from chalicelib.store import ConditionFailed, get_table, keys

CLAIM_TTL_SECONDS = 86400  # the code itself dies after 20 s; a day is plenty for redeliveries


def claim(corp_id: str, welcome_code: str, *, now: float) -> bool:
    """True for the first claimant of the code; False when a delivery of ours claimed it before."""
    try:
        get_table().put({**keys.welcome_claim(corp_id, welcome_code), "type": "welcome_claim",
                         "expires_at": int(now) + CLAIM_TTL_SECONDS},
                        condition="attribute_not_exists(PK)")
    except ConditionFailed:
        return False
    return True
