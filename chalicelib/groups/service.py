"""Customer groups: repairing member counts from WeCom, and (below) the operator API's queries."""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib.groups import items as group_items
from chalicelib.groups.items import GroupItem
from chalicelib.store import ConditionFailed

logger = logging.getLogger(__name__)

READ_ATTEMPTS = 5
GONE_ERRCODES = (40050, 90501)  # chat id does not exist (dismissed) / not a customer group


class MembersMoving(Exception):
    """Every read of the group's members was overtaken by another change: retry the event later."""


def refresh_members(corp_id: str, group_id: str, *, client: Any) -> GroupItem | None:
    """Read groupchat/get and store its member list and count, over the version seen before the read
    only; read again while other changes overtake it. None when WeCom no longer knows the group."""
    from chalicelib.wecom import errors

    for _ in range(READ_ATTEMPTS):
        seen = group_items.get_group(corp_id, group_id, consistent=True)
        read_at = int(time.time())
        try:
            chat = client.get_groupchat(group_id).group_chat
        except errors.ApiError as exc:
            if exc.errcode in GONE_ERRCODES:
                logger.info("group %s/%s is gone (errcode %s): members not read", corp_id, group_id, exc.errcode)
                return None
            raise
        if seen is not None and chat.member_version and chat.member_version in seen.member_history:
            return seen  # the stored count is already past this read
        try:
            group_items.record_read(corp_id, chat, seen=seen, read_at=read_at)
        except ConditionFailed:
            continue  # another event or read moved the version meanwhile: read again
        return group_items.get_group(corp_id, group_id, consistent=True)
    raise MembersMoving(f"{corp_id}/{group_id}")
