"""Staff members: who in the corp may receive customers (WeCom's follow-user list).

Read from WeCom and kept in the table for `DIRECTORY_MAX_AGE` seconds, so validating a channel
code does not call WeCom every time, and a staff member added in WeCom is seen within minutes.
Names (for a welcome's {staff_name}) are read with WeCom's user/get and kept in memory as long.
"""

from __future__ import annotations

import logging
import time

from chalicelib.corps.items import StaffDirectory, get_staff_directory, save_staff_directory
from chalicelib.platform import caches

logger = logging.getLogger(__name__)

DIRECTORY_MAX_AGE = 600

_names: dict[tuple[str, str], tuple[float, str]] = {}
caches.register("corps:staff_names", _names.clear)


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


def name(corp_id: str, userid: str, *, now: float | None = None) -> str | None:
    """The staff member's name as WeCom shows it, from this instance's memory when read in the last
    `DIRECTORY_MAX_AGE` seconds; None when WeCom cannot say (unknown member, WeCom failing)."""
    from chalicelib.wecom import errors

    now = time.time() if now is None else now
    hit = _names.get((corp_id, userid))
    if hit and now - hit[0] < DIRECTORY_MAX_AGE:
        return hit[1]
    from chalicelib.corps import registry as corps

    try:
        found = corps.wecom_client(corp_id).get_user(userid).name
    except errors.WeComError as exc:
        logger.warning("no name for staff %s: %r", userid, exc)
        return None
    if found:
        _names[(corp_id, userid)] = (now, found)
    return found or None
