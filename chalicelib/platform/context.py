"""What an event step gets: `EventContext[E]`, E being the typed callback event it handles.

Built once per event by the consumer and shared by the event's steps, in their fixed order. It
resolves, once per event and only if a step asks, what several steps need: the corp's runtime
(client, time zone) and the channel code the contact came through. What one step read from WeCom
for another (the welcome's externalcontact/get, which carries the profile the relation step
stores) is a typed field, not a free-form dict. Items several steps read (the group of a group
event) are read once, with the event's record (`Route.reads`, `item`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from chalicelib.channel_codes.items import ChannelCodeItem
    from chalicelib.corps.registry import CorpRuntime
    from chalicelib.groups.items import GroupItem
    from chalicelib.wecom.events import CallbackEvent
    from chalicelib.wecom.models import ExternalContact

E = TypeVar("E", bound="CallbackEvent")
ItemKey = tuple[str, str]  # (PK, SK)

# Per batch: how many times a step declared it writes an item (`EventContext.writes`). A copy
# read before that (a batch reads every message's items in its first pass, before the commits of
# its second) is stale, and read again. Contexts live within one batch, so the count starts again
# with each (`start_batch`) and never outgrows one batch's items; per thread, because the local
# stack runs several consumers in one process, each standing for a Lambda instance of its own.
_batch = threading.local()


def _writes() -> Counter[ItemKey]:
    if not hasattr(_batch, "writes"):
        _batch.writes = Counter()
    return _batch.writes


def start_batch() -> None:
    _batch.writes = Counter()


def write_counts() -> dict[ItemKey, int]:
    """The batch's write counts now: what items read now are current as of (EventContext.preload)."""
    return dict(_writes())


@dataclass
class EventContext(Generic[E]):
    corp_id: str
    event: E
    identity: str  # the event's exactly-once identity (wecom.events.CallbackEvent.identity)
    received_at_ms: int
    now: float = field(default_factory=time.time)
    budget_until: float | None = None  # time.monotonic() by which the urgent steps must be done
    # The customer as the welcome read it from WeCom (for {customer_name}); None when not read.
    external_contact: ExternalContact | None = None
    # Items read for the steps, by key (None: no such item), with the batch's write count at the time of the read.
    _items: dict[ItemKey, tuple[int, dict[str, Any] | None]] = field(default_factory=dict, repr=False)

    def preload(self, items: dict[ItemKey, dict[str, Any] | None], as_of: dict[ItemKey, int]) -> None:
        """Items the consumer read with the event record for the steps (Route.reads), when the
        batch's write counts were `as_of` (write_counts(): the read may precede other messages' steps)."""
        for key, item in items.items():
            self._items[key] = (as_of.get(key, 0), item)

    def item(self, key: dict[str, str]) -> dict[str, Any] | None:
        """An item for this event's steps, consistently read: once per event, unless a step of another
        event on this instance declared it writes the item since (then read again)."""
        k = (key["PK"], key["SK"])
        held = self._items.get(k)
        if held is not None and held[0] == _writes()[k]:
            return held[1]
        from chalicelib.store import get_table

        item = get_table().get(key, consistent=True)
        self._items[k] = (_writes()[k], item)
        return item

    def held(self, key: dict[str, str]) -> dict[str, Any] | None:
        """The item as this event last read it, even if a step of another event wrote it since (None:
        not read, or no such item): for what only ever moves one way (a version the item is past)."""
        held = self._items.get((key["PK"], key["SK"]))
        return held[1] if held is not None else None

    def writes(self, key: dict[str, str]) -> None:
        """A step of this event writes this item in the event's commit: other events' copies are stale
        (this event's own copy stays as read: its steps see the state before their commit)."""
        k = (key["PK"], key["SK"])
        _writes()[k] += 1
        if k in self._items:
            self._items[k] = (_writes()[k], self._items[k][1])

    def forget(self, key: dict[str, str]) -> None:
        """A step wrote the item outside the commit (a read of WeCom it stored): read it again, here
        and in every other event of the batch that read it before."""
        k = (key["PK"], key["SK"])
        self._items.pop(k, None)
        _writes()[k] += 1

    @property
    def group(self) -> GroupItem | None:
        """The group of a change_external_chat event (read once for groups' and group codes' steps)."""
        from chalicelib.groups import items as group_items
        from chalicelib.store import keys

        return group_items.group_of(self.item(keys.group(self.corp_id, self.event.chat_id)))

    @cached_property
    def corp(self) -> CorpRuntime:
        from chalicelib.corps import registry

        corp = registry.runtime(self.corp_id)
        if corp is None:
            raise LookupError(f"corp {self.corp_id} is not registered")
        return corp

    @cached_property
    def channel_code(self) -> ChannelCodeItem | None:
        """The channel code named by the event's State (None without one, or for an unknown or
        deleted code): looked up once per event, whichever steps ask."""
        from chalicelib.channel_codes import service as channel_codes

        return channel_codes.lookup(self.corp_id, getattr(self.event, "state", None) or "")

    def has_time(self, seconds: float) -> bool:
        """Whether `seconds` more of work still leaves the batch its second pass."""
        return self.budget_until is None or time.monotonic() + seconds <= self.budget_until

    @property
    def day(self) -> str:
        """The event's calendar day in the corp's time zone."""
        return self.day_of(self.event.create_time)

    def day_of(self, at: int) -> str:
        return datetime.fromtimestamp(at, ZoneInfo(self.corp.time_zone)).date().isoformat()

