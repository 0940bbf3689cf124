"""The effects journal: what reached customers and groups, and what was marked on them.

Entries (dicts with ``kind``, ``corp_id``, ``at`` and kind-specific fields):

- ``welcome``: a welcome message delivered (``userid``, ``external_userid``, ``text``,
  ``attachments``, ``welcome_code``);
- ``mass_message``: one broadcast delivered to one customer or group (``msgid``, ``userid``,
  ``external_userid`` or ``chat_id``, ``text``, ``attachments``);
- ``moment``: a Moments post published by a staff member;
- ``tag_mark``: tags added/removed on a relation (``source``: "api" or "staff");
- ``group_welcome``: not delivered by the sandbox (WeCom shows it in the client);
- ``callback``: a callback delivery and its attempts (``event``, ``change_type``, ``statuses``,
  ``delivered``).
"""

from __future__ import annotations

import threading
from typing import Any


class Journal:
    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        entry = {"kind": kind, **fields}
        with self._lock:
            entry["seq"] = len(self._entries) + 1
            self._entries.append(entry)
        return entry

    def entries(self, kind: str | None = None, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._entries)
        return [
            e for e in items
            if (kind is None or e["kind"] == kind)
            and all(e.get(k) == v for k, v in match.items() if v is not None)
        ]

    def welcomes(self, external_userid: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return self.entries("welcome", external_userid=external_userid, **match)

    def mass_messages(self, external_userid: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return self.entries("mass_message", external_userid=external_userid, **match)

    def group_messages(self, chat_id: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries("mass_message", chat_id=chat_id, **match) if e.get("chat_id")]

    def tag_marks(self, external_userid: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return self.entries("tag_mark", external_userid=external_userid, **match)

    def moments(self, **match: Any) -> list[dict[str, Any]]:
        return self.entries("moment", **match)

    def callbacks(self, **match: Any) -> list[dict[str, Any]]:
        return self.entries("callback", **match)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
