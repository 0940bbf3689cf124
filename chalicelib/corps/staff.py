"""Staff members: who in the corp may receive customers (WeCom's follow-user list).

Read from WeCom and kept in the table for `DIRECTORY_MAX_AGE` seconds, so validating a channel
code does not call WeCom every time, and a staff member added in WeCom is seen within minutes.
"""

from __future__ import annotations

import time

from chalicelib.corps.items import StaffDirectory, get_staff_directory, save_staff_directory

DIRECTORY_MAX_AGE = 600


def directory(corp_id: str, *, refresh: bool = False, now: float | None = None) -> set[str]:
    now = time.time() if now is None else now
    cached = None if refresh else get_staff_directory(corp_id)
    if cached is not None and now - cached.read_at < DIRECTORY_MAX_AGE:
        return set(cached.staff_ids)
    from chalicelib.corps import registry as corps

    staff_ids = corps.wecom_client(corp_id).get_follow_user_list().follow_user
    save_staff_directory(corp_id, StaffDirectory(staff_ids=sorted(staff_ids), read_at=int(now)))
    return set(staff_ids)


def unknown(corp_id: str, staff_ids: list[str]) -> list[str]:
    """Staff ids that are not members with customer-contact permission (re-read once if any)."""
    known = directory(corp_id)
    missing = [s for s in staff_ids if s not in known]
    if missing:
        known = directory(corp_id, refresh=True)
        missing = [s for s in staff_ids if s not in known]
    return missing
