"""The minute tick of SOP calendars: due rules -> occurrences -> broadcasts or reminders, each
occurrence exactly once.

Finding what is due reads only what is due: each rule's schedule item sits in GSI1 `SOP#DUE` at
`<next_due:012>#<corp>#<calendar>#<rule>` while its calendar is active, and the tick queries the
range `<= now` (docs/architecture.md "SOP calendars": the cost per minute).

One occurrence, identity (rule, due time; the target follows from both):
1. its item is read: settled already (done / missed / skipped / failed) -> nothing to do;
2. not there: found later than the calendar's grace -> recorded `missed`; otherwise CLAIMED
   (a conditional put, status `pending`);
3. acted on: the broadcast is created with an id derived from the occurrence (broadcasts' create is
   idempotent on it), or each reminder is claimed in the occurrence item before its app message;
4. settled `done` with the broadcast id (or the reminders' msgids), then the rule's next due time
   is set (a conditional update from this due time: a second tick moves nothing).
A tick that dies between 2 and 4 leaves the rule due and the occurrence pending: the next tick
finishes it with the same derived id (no second broadcast). A pending occurrence found past the
grace is finished only if its broadcast exists or a reminder went out; otherwise it is `missed`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from typing import Any

from chalicelib.sop_calendars import items as sitems
from chalicelib.sop_calendars import service as sop
from chalicelib.sop_calendars.items import CalendarItem, OccurrenceItem

logger = logging.getLogger(__name__)

WORKERS = 8  # due rules handled in parallel (each is independent: its own schedule and occurrences)
# Seconds of the minute tick's run spent on occurrences; the rest waits for the next tick. tick_minute's
# 50 s Lambda timeout is shared: the broadcast, handover and churn jobs run after this one.
TIME_BUDGET = 25.0
MAX_CATCH_UP = 400  # occurrences of one rule handled in one tick (a rule found days late: each one missed)
MAX_GROUPS = 2000  # chat ids one occurrence's broadcast takes (add_msg_template's limit)
REMINDER_BYTES = 2048
PROBE_READS = 5


def tick(*, now: float, clock: Any = time.monotonic) -> dict[str, int]:
    """Every due rule, oldest first, a page (100) at a time with WORKERS rules in parallel, until the
    time budget is spent (the rest stays due for the next tick)."""
    from concurrent.futures import ThreadPoolExecutor

    counts: Counter = Counter()
    started, cursor = clock(), None

    def one(due: sitems.Due) -> Counter:
        try:
            return run_rule(*due, now=now)
        except Exception:
            logger.exception("SOP rule %s/%s/%s due %s failed", *due)
            return Counter(failures=1)

    with ThreadPoolExecutor(WORKERS) as pool:
        while True:
            due, cursor = sitems.due(now, cursor=cursor)
            for c in pool.map(one, due):
                counts.update(c)
            if cursor is None or clock() - started >= TIME_BUDGET:
                return dict(counts)


def run_rule(corp_id: str, calendar_id: str, rule_id: str, due: int, *, now: float) -> Counter:
    cal = sitems.get(corp_id, calendar_id, consistent=True)
    rule = cal.rule(rule_id) if cal else None
    if cal is None or rule is None:
        sitems.drop_rule(corp_id, calendar_id, rule_id)
        return Counter(stale=1)
    if cal.status != "active":
        return Counter(paused=1)  # paused between the query and this read: the pause takes it out
    zone, counts = sop.zone_of(corp_id), Counter()
    for _ in range(MAX_CATCH_UP):
        counts[occur(corp_id, cal, rule, due, zone=zone, now=now)] += 1
        nxt = sop.next_after(rule, zone, due)
        if not sitems.advance(corp_id, calendar_id, rule_id, from_due=due, to=nxt) or nxt is None or nxt > now:
            break
        due = nxt
    return counts


def occurrence_broadcast_id(corp_id: str, calendar_id: str, rule_id: str, due: int) -> str:
    """Derived from the occurrence: its due time first (broadcast ids sort by time), then a hash."""
    digest = hashlib.sha256(f"{corp_id}|{calendar_id}|{rule_id}|{due}".encode()).hexdigest()[:10]
    return f"b{due * 1000:011x}{digest}"


def claimed(corp_id: str, occurrence: OccurrenceItem) -> None:
    """Called right after an occurrence is claimed (a seam for tests that kill the tick there)."""


def occur(corp_id: str, cal: CalendarItem, rule: dict[str, Any], due: int, *, zone: Any, now: float) -> str:
    """One occurrence, exactly once; returns its status as left."""
    occ = sitems.get_occurrence(corp_id, cal.calendar_id, due, rule["rule_id"])
    if occ is not None and occ.status != "pending":
        return "duplicate"
    late = int(now) - due
    past_grace = late > cal.grace_minutes * 60
    target = sop.window(rule, zone, due)
    if occ is None:
        fresh = OccurrenceItem(calendar_id=cal.calendar_id, rule_id=rule["rule_id"], due=due,
                               status="missed" if past_grace else "pending", claimed_at=int(now), late_seconds=late,
                               target=target,
                               kind="reminder" if sop.is_reminder(rule) else "broadcast",
                               reason=f"found {late // 60} minutes late, past the calendar's grace of "
                                      f"{cal.grace_minutes}" if past_grace else None,
                               settled_at=int(now) if past_grace else None)
        occ = sitems.put_occurrence(corp_id, fresh)
        if occ is not fresh:  # another tick wrote it first
            if occ.status != "pending":
                return "duplicate"
        elif past_grace:
            return "missed"
        else:
            claimed(corp_id, occ)
    elif past_grace and not _started(corp_id, occ):
        sitems.settle(corp_id, occ, status="missed", now=int(now), reason="claimed, but not acted on within "
                                                                          "the calendar's grace")
        return "missed"
    return _act(corp_id, cal, rule, occ, zone=zone, now=now)


def _started(corp_id: str, occ: OccurrenceItem) -> bool:
    from chalicelib.broadcasts import items as bitems

    if occ.kind == "reminder":
        return bool(occ.reminders)
    return bitems.get(corp_id, occurrence_broadcast_id(corp_id, occ.calendar_id, occ.rule_id, occ.due)) is not None


# -- acting ---------------------------------------------------------------------------------------------------------
class Nobody(Exception):
    """The occurrence's target is empty by construction (no group created that day): done, nothing sent."""


class NoAgent(Exception):
    """Reminders need the corp's app (agent_id), removed since the rule was saved."""


def _definitive() -> tuple[type[Exception], ...]:
    """What the rule names is gone or no longer valid (a deleted segment, group code, ...): the
    occurrence fails with the reason; anything else leaves it pending for the next tick."""
    from pydantic import ValidationError

    from chalicelib.broadcasts.service import InvalidBroadcast, UnknownReferences
    from chalicelib.group_codes.service import GroupCodeNotFound
    from chalicelib.platform.errors import NotFound
    from chalicelib.segments.service import InvalidFilter
    from chalicelib.tags.service import UnknownTags

    return (NotFound, InvalidFilter, ValidationError, InvalidBroadcast, UnknownReferences, UnknownTags,
            GroupCodeNotFound, NoAgent)


def _act(corp_id: str, cal: CalendarItem, rule: dict[str, Any], occ: OccurrenceItem, *, zone: Any,
         now: float) -> str:
    try:
        if sop.is_reminder(rule):
            reminders = _remind(corp_id, cal, rule, occ, zone=zone)
            sitems.settle(corp_id, occ, status="done", now=int(now), kind="reminder" if reminders else "none",
                          reminders=reminders or None)
            return "done"
        broadcast_id = _broadcast(corp_id, cal, rule, occ, zone=zone, now=now)
    except Nobody as exc:
        sitems.settle(corp_id, occ, status="done", now=int(now), kind="none", reason=str(exc))
        return "done"
    except _definitive() as exc:
        sitems.settle(corp_id, occ, status="failed", now=int(now), reason=f"{type(exc).__name__}: {exc}"[:500])
        return "failed"
    sitems.settle(corp_id, occ, status="done", now=int(now), kind="broadcast", broadcast_id=broadcast_id)
    return "done"


def _broadcast(corp_id: str, cal: CalendarItem, rule: dict[str, Any], occ: OccurrenceItem, *, zone: Any,
               now: float) -> str:
    from chalicelib.broadcasts import service as broadcasts

    whom, when = rule["whom"], rule["when"]
    if whom["kind"] == "customers":
        target = broadcasts.CustomersTarget(kind="customers", filter=_customer_filter(corp_id, rule, occ, zone))
    elif when["kind"] == "after":  # group_created
        lo, hi = occ.target
        chats = [g.group_id for g in _groups(corp_id, whom) if g.created_at is not None and lo <= g.created_at <= hi]
        if not chats:
            raise Nobody("no group created in the window")
        target = broadcasts.GroupsTarget(kind="groups", chat_ids=chats[:MAX_GROUPS])
    else:
        target = broadcasts.GroupsTarget.model_validate(whom)
    name = f"{cal.name}: {rule.get('name') or rule['rule_id']}"[:100]
    req = broadcasts.BroadcastCreate(name=name, target=target, content=rule["content"])
    b = broadcasts.create(corp_id, req, now=now,
                          broadcast_id=occurrence_broadcast_id(corp_id, cal.calendar_id, rule["rule_id"], occ.due))
    return b.broadcast_id


def _customer_filter(corp_id: str, rule: dict[str, Any], occ: OccurrenceItem, zone: Any) -> Any:
    """The segment's filter (as it is now) or the channel code's, narrowed to the target day for
    `customer_added` rules (customers added on day D-N, corp zone)."""
    from chalicelib.segments import service as segments

    whom = rule["whom"]
    f = (segments.filter_of(segments.get(corp_id, whom["segment_id"])) if whom.get("segment_id")
         else segments.SegmentFilter(channels=[whom["channel_code"]]))
    if rule["when"]["kind"] != "after":
        return f
    lo, hi = occ.target
    bounds = [_epoch(zone, f.added_from, end=False), _epoch(zone, f.added_to, end=True)]
    lo = max(lo, bounds[0]) if bounds[0] is not None else lo
    hi = min(hi, bounds[1]) if bounds[1] is not None else hi
    if lo > hi:
        raise Nobody("the segment's dates leave out the window")
    narrowed = f.model_copy(update={"added_from": lo, "added_to": hi})
    if not _anyone(corp_id, narrowed):
        raise Nobody("no customer added in the window")
    return narrowed


def _anyone(corp_id: str, f: Any) -> bool:
    """Whether a (narrow: one day's adds) filter matches a relation: a few reads of its key range, so
    a day nobody was added creates no empty broadcast. Undecided after PROBE_READS reads: yes."""
    from chalicelib.segments import service as segments

    for reads, page in enumerate(segments.evaluate(corp_id, segments.plan(corp_id, f), page_size=100), start=1):
        if page.members or reads >= PROBE_READS:
            return True
    return False


def _epoch(zone: Any, moment: Any, *, end: bool) -> int | None:
    from datetime import date

    if not isinstance(moment, date):
        return moment
    lo, hi = sop.day_range(zone, moment)
    return hi if end else lo


def _groups(corp_id: str, whom: dict[str, Any]) -> list[Any]:
    """The active groups a groups target names (owners / group code: GSI2 pages; a list: batch reads)."""
    from chalicelib.broadcasts.service import groups_of
    from chalicelib.groups import items as group_items

    if whom.get("chat_ids"):
        return [g for g in groups_of(corp_id, list(dict.fromkeys(whom["chat_ids"]))) if g.status == "active"]
    found = []
    for owner in whom.get("owner_ids") or [None]:
        cursor = None
        while True:
            page, cursor = group_items.search_groups(corp_id, owner=owner, code=whom.get("group_code_id"),
                                                     status="active", limit=500, cursor=cursor)
            found += page
            if cursor is None:
                break
    return found


def _remind(corp_id: str, cal: CalendarItem, rule: dict[str, Any], occ: OccurrenceItem, *,
            zone: Any) -> dict[str, str]:
    """One app message per group owner naming the customers who joined their groups on the target
    day, with the content to forward. Each owner's reminder is claimed in the occurrence item before
    the call (`calling`), so a second run never sends it again (an unknown outcome stays `calling`)."""
    from chalicelib.corps import items as corp_items
    from chalicelib.corps import staff
    from chalicelib.groups import items as group_items
    from chalicelib.platform.content import MessageContent
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import AppTextMessage, Text

    lo, hi = occ.target
    joined: dict[str, list[str]] = {}
    for g in _groups(corp_id, rule["whom"]):
        n = sum(1 for m in group_items.members(corp_id, g.group_id) if m.status == "joined" and m.member_type != 1
                and lo <= (m.join_time or m.joined_at or 0) <= hi)
        if n and g.owner:
            joined.setdefault(g.owner, []).append(f"{g.name or g.group_id} ({n})")
    if not joined:
        raise Nobody("no customer joined in the window")
    corp = corp_items.get_corp(corp_id)
    if corp is None or not corp.agent_id:
        raise NoAgent("the corp has no agent_id for reminders")
    content, names = MessageContent.model_validate(rule["content"]), staff.names(corp_id)
    client = _client(corp_id)
    sent = dict(occ.reminders)
    for owner, groups in sorted(joined.items()):
        if owner in sent or not sitems.mark_reminder(corp_id, occ, owner, "calling", first=True):
            continue
        since = sop.local_day(zone, lo).isoformat()
        text = (f"SOP {cal.name}: customers who joined since {since}: {', '.join(groups)}. Send them:\n"
                f"{content.render_text(customer_name=None, staff_name=names.get(owner)) or ''}")
        if content.attachments:
            text += f"\n(+{len(content.attachments)} attachment(s) in the SOP calendar)"
        message = AppTextMessage(touser=owner, agentid=int(corp.agent_id),
                                 text=Text(content=text.encode()[:REMINDER_BYTES].decode(errors="ignore")))
        try:
            outcome = client.send_app_message(message).msgid or "sent"
        except (errors.FrequencyLimited, errors.SystemBusy):
            sitems.unmark_reminder(corp_id, occ, owner)  # WeCom sent nothing: the next tick tries again
            raise
        except errors.ApiError as exc:
            outcome = f"failed:{exc.errcode}"
        sitems.mark_reminder(corp_id, occ, owner, outcome, first=False)
        sent[owner] = outcome
    return sent


def _client(corp_id: str) -> Any:
    from chalicelib.corps import registry

    return registry.wecom_client(corp_id)
