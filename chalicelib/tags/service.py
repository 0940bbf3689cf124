"""Tags (标签): the corp's tag library, synced both ways with WeCom, and tags on customers.

WeCom is the source of truth for the library: `sync_library` mirrors get_corp_tag_list into the
table, on change_external_tag callbacks (which carry only ids) and on a daily schedule. Changes
made through our API call WeCom first and then update the mirror, because WeCom fires no
callback for changes made through its API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chalicelib.platform import caches
from chalicelib.platform.errors import FieldError, NotFound
from chalicelib.platform.model import Model
from chalicelib.tags import items as tag_items
from chalicelib.tags.items import TagItem

logger = logging.getLogger(__name__)

MAX_TAGS_PER_CORP = 3000
MAX_BULK = 100


class TagGroupView(Model):
    group_id: str
    group_name: str
    tags: list[TagItem]


# A tag name: 1-30 characters, not only blanks (str.isspace's, which include \x1c-\x1f).
TagName = Annotated[str, Field(min_length=1, max_length=30, pattern=r"[^\s\x1c-\x1f]")]
# Rules between fields, stated in the schema too.
_ONE_GROUP = {"oneOf": [{"required": ["group_id"], "properties": {"group_id": {"type": "string"}}},
                        {"required": ["group_name"], "properties": {"group_name": {"type": "string"}}}]}
_ADD_OR_REMOVE = {"anyOf": [{"required": ["add"], "properties": {"add": {"minItems": 1}}},
                            {"required": ["remove"], "properties": {"remove": {"minItems": 1}}}]}
_DISJOINT = "not one of `add`'s tags"
ADD_OR_REMOVE, DISJOINT = _ADD_OR_REMOVE, _DISJOINT  # the same rules for the chat toolbar's tag changes


class TagCreate(Model):
    """Create tags in an existing group (group_id) or in a new group (group_name): exactly one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_GROUP)
    group_id: str | None = Field(None, min_length=1)
    group_name: TagName | None = None
    names: list[TagName] = Field(min_length=1, max_length=100, json_schema_extra={"uniqueItems": True})

    @model_validator(mode="after")
    def _one_group(self) -> TagCreate:
        if bool(self.group_id) == bool(self.group_name):
            raise ValueError("give exactly one of group_id or group_name")
        if any(not n.strip() or len(n) > 30 for n in self.names):
            raise ValueError("tag names must be 1-30 characters")
        if len(set(self.names)) != len(self.names):
            raise ValueError("tag names must be unique")
        return self


class TagRename(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=30)


class CustomerTagChange(Model):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ADD_OR_REMOVE)
    customer_id: str = Field(min_length=1, max_length=64)
    staff_id: str = Field(min_length=1, max_length=64)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100, description=_DISJOINT)

    @field_validator("remove")
    @classmethod
    def _disjoint(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if set(v) & set(info.data.get("add") or ()):
            raise ValueError("a tag cannot be both added and removed")
        return v

    @model_validator(mode="after")
    def _something(self) -> CustomerTagChange:
        if not self.add and not self.remove:
            raise ValueError("add or remove at least one tag")
        return self


class BulkTagChange(Model):
    model_config = ConfigDict(extra="forbid")
    changes: list[CustomerTagChange] = Field(min_length=1, max_length=MAX_BULK)


class TagChangeResult(Model):
    customer_id: str
    staff_id: str
    status: str = Field(description="done | no_relation | failed")
    error: str | None = Field(None, description="when failed, a stable code: wecom_error (WeCom refused: see "
                                                "errcode), wecom_rate_limited, wecom_unavailable")
    errcode: int | None = Field(None, description="WeCom's errcode, when WeCom refused")
    errmsg: str | None = Field(None, description="WeCom's errmsg (for people; it carries a hint and the caller's IP)")
    explanation: str | None = Field(None, description="a plain explanation of the errcode, for the common ones")


class TagLibrary(Model):
    groups: list[TagGroupView]


class SyncResult(Model):
    tags: int
    written: int
    deleted: int


class TagChangeResults(Model):
    results: list[TagChangeResult]


class RelationTagChange(Model):
    """One customer's relation with `staff_id` (the customer is in the path)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ADD_OR_REMOVE)
    staff_id: str = Field(min_length=1, max_length=64)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100, description=_DISJOINT)


class UnknownTags(FieldError):
    """Tag ids not in the corp's tag library, named at each field of the request that lists them
    (`details`: [{field, message}], each message listing that field's unknown ids)."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        self.tag_ids = list(dict.fromkeys(t for ids in fields.values() for t in ids))  # all of them
        super().__init__(next(iter(fields)), _unknown(self.tag_ids))

    def details(self) -> list[dict[str, str]]:
        return [{"field": field, "message": _unknown(ids)} for field, ids in self.fields.items()]


def _unknown(tag_ids: list[str]) -> str:
    more = f" and {len(tag_ids) - 20} more" if len(tag_ids) > 20 else ""
    return f"unknown tag ids: {', '.join(tag_ids[:20])}{more}"


def check_known(corp_id: str, fields: dict[str, list[str]]) -> None:
    """UnknownTags unless every tag id listed is in the corp's library. `fields`: where the request
    lists them (its field path -> the ids there), in the order the refusal names them."""
    wanted = list(dict.fromkeys(t for ids in fields.values() for t in ids))
    if not wanted:
        return
    known = tag_items.get_tags(corp_id, wanted)
    unknown = {field: list(dict.fromkeys(t for t in ids if t not in known)) for field, ids in fields.items()}
    unknown = {field: ids for field, ids in unknown.items() if ids}
    if unknown:
        raise UnknownTags(unknown)


class NoSuchRelation(Exception):
    pass


class TagNotFound(NotFound):
    what = "tag"


class TagGroupNotFound(TagNotFound):
    what = "tag group"


class TagLimit(Exception):
    pass


class TagExists(Exception):
    """A tag of that name is already in the group (WeCom's 40071): nothing was changed."""

    WECOM_ERRCODE = 40071

    def __init__(self, names: list[str], group: str):
        quoted = ", ".join(repr(n) for n in names)
        super().__init__(f"tag group {group!r} already has a tag named {quoted}")
        self.names = names
        self.group = group


LIBRARY_TTL = 60.0
_library_cache: caches.Expiring[dict[str, str]] = caches.Expiring("tags:library", LIBRARY_TTL)


def _library_names(corp_id: str) -> dict[str, str]:
    """The corp's tag ids and names, kept a minute per instance (the welcome path reads it on every add)."""
    return _library_cache.get(corp_id, lambda: {t.tag_id: t.name for t in tag_items.list_tags(corp_id)})


def library_ids(corp_id: str) -> set[str]:
    return set(_library_names(corp_id))


def tag_names(corp_id: str, tag_ids: list[str] | set[str]) -> dict[str, str]:
    """Names of these tags: from the cached library, and one BatchGetItem for ids it does not hold
    (a tag made on another instance within the minute). Tags no longer in the library are absent."""
    names = _library_names(corp_id)
    missing = [t for t in set(tag_ids) if t not in names]
    found = {t: item.name for t, item in tag_items.get_tags(corp_id, missing).items()} if missing else {}
    return {t: names.get(t) or found[t] for t in set(tag_ids) if t in names or t in found}


def forget_library(corp_id: str) -> None:
    """After a change to the corp's library: this instance reads it afresh."""
    _library_cache.forget(corp_id)


def _items_from_wecom(groups: list[Any]) -> list[TagItem]:
    items = []
    for group in groups:
        if group.deleted:
            continue
        for tag in group.tag:
            if tag.deleted or not tag.id:
                continue
            items.append(TagItem(tag_id=tag.id, name=tag.name, group_id=group.group_id or "",
                                 group_name=group.group_name, order=tag.order or 0,
                                 created_at=tag.create_time))
    return items


def sync_library(corp_id: str) -> dict[str, int]:
    from chalicelib.corps import registry as corps

    groups = corps.wecom_client(corp_id).get_corp_tag_list().tag_group
    items = _items_from_wecom(groups)
    written, deleted = tag_items.replace_library(corp_id, items)
    forget_library(corp_id)
    return {"tags": len(items), "written": written, "deleted": deleted}


def library(corp_id: str) -> list[TagGroupView]:
    groups: dict[str, TagGroupView] = {}
    for tag in sorted(tag_items.list_tags(corp_id), key=lambda t: (t.group_name, t.order, t.name)):
        groups.setdefault(tag.group_id, TagGroupView(group_id=tag.group_id, group_name=tag.group_name,
                                                     tags=[])).tags.append(tag)
    return list(groups.values())


def create(corp_id: str, req: TagCreate) -> TagGroupView:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom.models import AddCorpTagRequest

    existing = tag_items.list_tags(corp_id)
    if len(existing) + len(req.names) > MAX_TAGS_PER_CORP:
        raise TagLimit(f"a corp holds at most {MAX_TAGS_PER_CORP} tags (WeCom's limit)")
    if req.group_id and not any(t.group_id == req.group_id for t in existing):
        raise TagGroupNotFound(req.group_id)
    # WeCom adds to an existing group of that name (doc 92117), so a group_name is checked too.
    in_group = [t for t in existing
                if (t.group_id == req.group_id if req.group_id else t.group_name == req.group_name)]
    group_name = req.group_name or in_group[0].group_name
    taken = sorted({t.name for t in in_group} & set(req.names))
    if taken:
        raise TagExists(taken, group_name)
    with _name_taken(req.names, group_name):  # the mirror may lag (a console change not yet called back)
        resp = corps.wecom_client(corp_id).add_corp_tag(AddCorpTagRequest(
            group_id=req.group_id, group_name=req.group_name, tag=[{"name": n} for n in req.names]))
    created = _items_from_wecom([resp.tag_group])
    for tag in created:
        tag_items.put_tag(corp_id, tag)
    forget_library(corp_id)
    group = resp.tag_group
    return TagGroupView(group_id=group.group_id or "", group_name=group.group_name, tags=created)


@contextmanager
def _name_taken(names: list[str], group: str) -> Iterator[None]:
    """WeCom's 40071 (name exists in the group) as TagExists."""
    from chalicelib.wecom import errors

    try:
        yield
    except errors.ApiError as exc:
        if exc.errcode != TagExists.WECOM_ERRCODE:
            raise
        raise TagExists(names, group) from exc


def _existing(corp_id: str, tag_id: str) -> TagItem:
    found = tag_items.get_tags(corp_id, [tag_id]).get(tag_id)
    if found is None:
        raise TagNotFound(tag_id)
    return found


def rename(corp_id: str, tag_id: str, req: TagRename) -> TagItem:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom.models import EditCorpTagRequest

    tag = _existing(corp_id, tag_id)
    siblings = tag_items.list_tags(corp_id)
    if any(t.name == req.name and t.group_id == tag.group_id and t.tag_id != tag_id for t in siblings):
        raise TagExists([req.name], tag.group_name)
    with _name_taken([req.name], tag.group_name):
        corps.wecom_client(corp_id).edit_corp_tag(EditCorpTagRequest(id=tag_id, name=req.name))
    renamed = tag.model_copy(update={"name": req.name})
    tag_items.put_tag(corp_id, renamed)
    forget_library(corp_id)  # the names it holds
    return renamed


def delete(corp_id: str, tag_id: str) -> None:
    from chalicelib.corps import registry as corps

    _existing(corp_id, tag_id)
    corps.wecom_client(corp_id).del_corp_tag(tag_id=[tag_id])
    tag_items.delete_tags(corp_id, [tag_id])
    forget_library(corp_id)


def change_customer_tags(corp_id: str, change: CustomerTagChange) -> TagChangeResult:
    """mark_tag for one relation, then mirror it (WeCom fires no callback for API changes)."""
    from chalicelib.corps import registry as corps
    from chalicelib.customers import items as customer_items
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import MarkTagRequest

    check_known(corp_id, {"add": change.add, "remove": change.remove})
    rel = customer_items.get_relation(corp_id, change.customer_id, change.staff_id)
    if rel is None or rel.status != "active":
        return TagChangeResult(customer_id=change.customer_id, staff_id=change.staff_id, status="no_relation")
    try:
        corps.wecom_client(corp_id).mark_tag(MarkTagRequest(
            userid=change.staff_id, external_userid=change.customer_id, add_tag=change.add,
            remove_tag=change.remove))
    except errors.NoRelation:
        return TagChangeResult(customer_id=change.customer_id, staff_id=change.staff_id, status="no_relation")
    _mirror_marked(corp_id, rel, change)
    return TagChangeResult(customer_id=change.customer_id, staff_id=change.staff_id, status="done")


MIRROR_ATTEMPTS = 3


def _mirror_marked(corp_id: str, rel: Any, change: CustomerTagChange) -> None:
    """The relation's tags after a mark_tag, and a `tags_changed` timeline entry of what it changed, in
    one transaction on the condition that the change is still to be made: a retried request (or two at
    once) changes nothing more and adds no second entry. Re-read when another change came between."""
    import hashlib
    import time

    from chalicelib.customers import items as customer_items
    from chalicelib.customers.items import TimelineEntry
    from chalicelib.store import ConditionFailed, get_table

    for _ in range(MIRROR_ATTEMPTS):
        added = sorted(set(change.add) - set(rel.tags))
        removed = sorted(set(change.remove) & set(rel.tags))
        if not added and not removed:
            return
        entry = TimelineEntry(customer_id=rel.customer_id, at=int(time.time()), kind="tags_changed",
                              staff_id=rel.staff_id, details=tag_change(added, removed, source="api"))
        identity = hashlib.sha256(repr((rel.staff_id, sorted(rel.tags), added, removed)).encode()).hexdigest()
        try:
            get_table().transact([
                tag_items.relation_tags_changed(corp_id, rel.customer_id, rel.staff_id, add=added,
                                                remove=removed, only_if_effective=True).op,
                customer_items.timeline(corp_id, entry, identity).op])
            return
        except ConditionFailed:
            rel = customer_items.get_relation(corp_id, rel.customer_id, rel.staff_id)
            if rel is None:
                return
    logger.warning("tags of %s/%s kept changing; their mirror waits for the next sync", change.customer_id,
                   change.staff_id)


def tag_change(added: list[str], removed: list[str], **details: Any) -> dict[str, Any]:
    """A `tags_changed` timeline entry's details (empty lists left out)."""
    return {**({"added": added} if added else {}), **({"removed": removed} if removed else {}), **details}


def change_many(corp_id: str, bulk: BulkTagChange) -> list[TagChangeResult]:
    from chalicelib.wecom import errors

    # refuse the whole request before any call: nothing half-applied
    check_known(corp_id, {f"changes.{i}.{side}": ids for i, c in enumerate(bulk.changes)
                          for side, ids in (("add", c.add), ("remove", c.remove))})
    results = []
    for change in bulk.changes:
        try:
            results.append(change_customer_tags(corp_id, change))
        except errors.WeComError as exc:
            said = errors.describe(exc)
            results.append(TagChangeResult(customer_id=change.customer_id, staff_id=change.staff_id,
                                           status="failed", error=errors.error_code(exc),
                                           errcode=said.get("errcode"), errmsg=said.get("errmsg"),
                                           explanation=said.get("explanation")))
    return results
