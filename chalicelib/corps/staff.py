"""Staff members: who in the corp may receive customers (WeCom's follow-user list), with names.

Read from WeCom and kept in the table for `DIRECTORY_MAX_AGE` seconds, so validating a channel
code does not call WeCom every time, and a staff member added in WeCom is seen within minutes.
The follow-user list gives only ids: a member's name is read once with user/get when the member
first appears (at most `NAMES_PER_READ` per read, the rest on the next) and kept from then on.
WeCom refusing a member's name (e.g. 60011 outside the app's visible range) is kept as no name
and not asked again; WeCom unavailable or limiting is asked again on the next read. A welcome's
{staff_name} (`name`) is kept in this instance's memory as long, so a burst of adds reads it once.
"""

from __future__ import annotations

import logging
import time

from pydantic import Field

from chalicelib.api.core import Page
from chalicelib.corps.items import StaffDirectory, get_staff_directory, save_staff_directory
from chalicelib.platform import caches
from chalicelib.platform.model import Model

logger = logging.getLogger(__name__)

DIRECTORY_MAX_AGE = 600
NAMES_PER_READ = 50

_name_cache: dict[tuple[str, str], tuple[float, str]] = {}
caches.register("corps:staff_names", _name_cache.clear)


def read(corp_id: str, *, refresh: bool = False, now: float | None = None) -> StaffDirectory:
    """The directory as stored, read again from WeCom when older than `DIRECTORY_MAX_AGE` (or `refresh`)."""
    now = time.time() if now is None else now
    stored = get_staff_directory(corp_id)
    if not refresh and stored is not None and now - stored.read_at < DIRECTORY_MAX_AGE:
        return stored
    from chalicelib.corps import registry as corps

    client = corps.wecom_client(corp_id)
    staff_ids = sorted(client.get_follow_user_list().follow_user)
    present = set(staff_ids)
    names = {s: n for s, n in (stored.names if stored else {}).items() if s in present}
    names.update(_names(client, [s for s in staff_ids if s not in names][:NAMES_PER_READ]))
    directory = StaffDirectory(staff_ids=staff_ids, read_at=int(now), names=names)
    save_staff_directory(corp_id, directory)
    return directory


def _names(client, staff_ids: list[str]) -> dict[str, str]:
    from chalicelib.wecom import errors

    names = {}
    for staff_id in staff_ids:
        try:
            names[staff_id] = client.get_user(staff_id).name
        except errors.ApiError as exc:
            if exc.retryable:
                break  # limited or busy: the next read asks again
            logger.warning("WeCom refused the name of staff member %s: errcode %s", staff_id, exc.errcode)
            names[staff_id] = ""
        except errors.WeComUnavailable:
            break
    return names


class StaffMember(Model):
    staff_id: str
    name: str | None = Field(None, description="null when WeCom would not tell (or has not told yet)")


class StaffPage(Page[StaffMember]):
    read_at: int = Field(description="epoch seconds the directory was last read from WeCom")


def page(corp_id: str, *, limit: int, after: str | None) -> StaffPage:
    """GET /staff: the directory by staff id; the cursor is the last id of the page before."""
    directory = read(corp_id)
    rest = [s for s in directory.staff_ids if after is None or s > after]
    shown = rest[:limit]
    return StaffPage(items=[StaffMember(staff_id=s, name=directory.names.get(s) or None) for s in shown],
                     next_cursor=shown[-1] if len(rest) > limit else None, read_at=directory.read_at)


def directory(corp_id: str, *, refresh: bool = False, now: float | None = None) -> set[str]:
    return set(read(corp_id, refresh=refresh, now=now).staff_ids)


def names(corp_id: str) -> dict[str, str]:
    """Staff names as last read (no call to WeCom: listings must not wait on it); unknown ones absent."""
    stored = get_staff_directory(corp_id)
    return {s: n for s, n in (stored.names if stored else {}).items() if n}


def unknown(corp_id: str, staff_ids: list[str]) -> list[str]:
    """Staff ids that are not members with customer-contact permission (re-read once if any)."""
    known = directory(corp_id)
    missing = [s for s in staff_ids if s not in known]
    if missing:
        known = directory(corp_id, refresh=True)
        missing = [s for s in staff_ids if s not in known]
    return missing


def name(corp_id: str, staff_id: str, *, now: float | None = None) -> str | None:
    """One staff member's name for a welcome's {staff_name}: this instance's memory (read in the
    last `DIRECTORY_MAX_AGE` seconds), else the stored directory, else WeCom's user/get; None when
    WeCom cannot say (unknown member, WeCom failing): the welcome then goes without it."""
    from chalicelib.wecom import errors

    now = time.time() if now is None else now
    hit = _name_cache.get((corp_id, staff_id))
    if hit and now - hit[0] < DIRECTORY_MAX_AGE:
        return hit[1]
    found = names(corp_id).get(staff_id)
    if not found:
        from chalicelib.corps import registry as corps

        try:
            found = corps.wecom_client(corp_id).get_user(staff_id).name
        except errors.WeComError as exc:
            logger.warning("no name for staff %s: %r", staff_id, exc)
            return None
    if found:
        _name_cache[(corp_id, staff_id)] = (now, found)
    return found or None
