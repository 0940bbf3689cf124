"""What an event step gets: `EventContext[E]`, E being the typed callback event it handles.

Built once per event by the consumer and shared by the event's steps, in their fixed order. It
resolves, once per event and only if a step asks, what several steps need: the corp's runtime
(client, time zone) and the channel code the contact came through. What one step read from WeCom
for another (the welcome's externalcontact/get, which carries the profile the relation step
stores) is a typed field, not a free-form dict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Generic, TypeVar
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from chalicelib.channel_codes.items import ChannelCodeItem
    from chalicelib.corps.registry import CorpRuntime
    from chalicelib.wecom.events import CallbackEvent
    from chalicelib.wecom.models import ExternalContact

E = TypeVar("E", bound="CallbackEvent")


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

