"""Customer groups: repairing member counts from WeCom, and (below) the operator API's queries."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from chalicelib.groups import items as group_items
from chalicelib.groups.items import GroupItem, GroupStatus, MemberItem
from chalicelib.platform.model import Model
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


# -- the operator API's queries ----------------------------------------------------------------------


class GroupQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    owner: str | None = Field(None, description="owner's staff id")
    group_code: str | None = Field(None, description="id of a group code whose pool lists the group (`codes`)")
    status: GroupStatus | None = None
    min_members: int | None = Field(None, ge=0, le=500, description="member_count at least (inclusive)")
    max_members: int | None = Field(None, ge=0, le=500, description="member_count at most (inclusive)")
    name: str | None = Field(None, min_length=1, max_length=100, description="name contains (case-sensitive)")

    @model_validator(mode="after")
    def _range(self) -> GroupQuery:
        if self.min_members is not None and self.max_members is not None and self.min_members > self.max_members:
            raise ValueError("`min_members` is above `max_members`")
        return self


class GroupDetail(GroupItem):
    members: list[MemberItem] = Field(description="current members (status joined)")


class GroupNotFound(LookupError):
    pass


def search(corp_id: str, q: GroupQuery) -> tuple[list[GroupItem], str | None]:
    return group_items.search_groups(corp_id, owner=q.owner, code=q.group_code, status=q.status,
                                     min_members=q.min_members, max_members=q.max_members, name=q.name,
                                     limit=q.limit, cursor=q.cursor)


def detail(corp_id: str, group_id: str) -> GroupDetail:
    group = group_items.get_group(corp_id, group_id)
    if group is None:
        raise GroupNotFound(f"group {group_id} not found")
    joined = [m for m in group_items.members(corp_id, group_id) if m.status == "joined"]
    return GroupDetail(**group.model_dump(), members=joined)


def member_of(corp_id: str, member_id: str, *, limit: int) -> list[GroupItem]:
    """The active groups `member_id` is joined in, by id: their member items by the member index
    (one query), then the groups (one read). A dismissed group's member items stay as they were
    (the dismiss event names no members), so it is left out here."""
    joined = [m.group_id for m in group_items.member_groups(corp_id, member_id, limit=limit) if m.status == "joined"]
    return [g for g in group_items.get_groups(corp_id, joined) if g.status == "active"]
