"""SOP calendars (issue #12) on the sandbox, over simulated days: the minute tick is driven by the test
(platform/schedules.minute(now=...)), the sandbox's clock is WeCom's (callbacks, mass messages) and the
SOP API's clock; each occurrence becomes one broadcast (or reminder), exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from tests.functional.test_acquisition import _code
from tests.functional.test_broadcasts import Sends, _mass
from tests.helpers import CORP_ID, drain_queue

CALENDARS = "/api/v1/sop-calendars"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _monday(weeks_back: int = 3) -> date:
    today = datetime.now(SHANGHAI).date()
    return today - timedelta(days=today.weekday() + 7 * weeks_back)


def _at(day: date, hhmm: str, zone: ZoneInfo = SHANGHAI) -> int:
    h, m = map(int, hhmm.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, tzinfo=zone).timestamp())


class Timeline:
    """Simulated time in the past (callbacks' CreateTime is never ahead of the product's clock):
    the sandbox clock, the signature check's clock and the SOP API's clock move together."""

    def __init__(self, world, sends):
        self.world, self.sends = world, sends

    def to(self, epoch: float) -> None:
        self.world.sb.clock.advance(epoch - self.world.sb.clock())

    def tick(self, epoch: int, *, run: bool = True) -> dict:
        from chalicelib.platform import schedules

        self.to(epoch)
        result = schedules.minute(now=epoch)
        if run:
            self.sends.run()
        return result


@pytest.fixture
def timeline(world, monkeypatch):
    from chalicelib.sop_calendars import service as sop
    from chalicelib.wecom import crypto

    monkeypatch.setattr(crypto, "time", SimpleNamespace(time=world.sb.clock))
    monkeypatch.setattr(sop, "clock", world.sb.clock)
    return Timeline(world, Sends(world, monkeypatch))


def _calendar(world, rules: list[dict], **extra) -> dict:
    status, body = world.call("POST", CALENDARS, {"name": "cal", "rules": rules, **extra})
    assert status == 201, body
    return body


def _occurrences(world, calendar_id: str) -> dict:
    status, body = world.call("GET", f"{CALENDARS}/{calendar_id}/occurrences?limit=200")
    assert status == 200, body
    return body


def _group_sends(world) -> Counter:
    """(chat id, text) -> mass messages into that group."""
    return Counter((chat, m.text["content"]) for m in _mass(world) if m.chat_type == "group"
                   for chats in m.targets.values() for chat in chats)


def _customer_sends(world) -> list[tuple[str, str, int]]:
    """(customer, text, WeCom create_time) of every mass message to customers."""
    return [(c, m.text["content"], m.create_time // 60 * 60) for m in _mass(world) if m.chat_type == "single"
            for customers in m.targets.values() for c in customers]


@pytest.fixture
def classes(timeline):
    """Two class groups (alice's, bob's), created the Saturday before the simulated week, owners read."""
    from chalicelib.groups import sync as group_sync
    from tests.functional.test_customer_sync import run_sync

    world, monday = timeline.world, _monday()
    timeline.to(_at(monday - timedelta(days=2), "12:00"))
    chats = [world.sb.simulator.create_group(CORP_ID, owner, f"class-{owner}")["chat_id"] for owner in ("alice", "bob")]
    world.pump()
    group_sync.start(CORP_ID)
    run_sync(world)
    return timeline, monday, chats


EDUCATION = [("weekly", 1, "19:00", "Preview: tonight's class"), ("weekly", 2, "19:00", "Countdown: one day left"),
             ("weekly", 3, "20:00", "Replay and notes"), ("weekly", 4, "19:00", "Homework review")]


def _education_rules() -> list[dict]:
    return [{"when": {"kind": kind, "weekday": wd, "time": hhmm},
             "whom": {"kind": "groups", "owner_ids": ["alice", "bob"]}, "content": {"text": text}}
            for kind, wd, hhmm, text in EDUCATION]


# -- the two examples --------------------------------------------------------------------------------------
def test_the_education_week_sends_exactly_the_four_posts_to_each_group(classes):
    timeline, monday, chats = classes
    world = timeline.world
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    cal = _calendar(world, _education_rules())
    assert sorted(r["next_due"] for r in cal["rules"]) == [
        _at(monday + timedelta(days=wd - 1), hhmm) for _, wd, hhmm, _ in sorted(EDUCATION, key=lambda e: e[1])]
    for hour in range(7 * 24):  # every hour, Monday 00:00 to Sunday 23:00
        timeline.tick(_at(monday, "00:00") + hour * 3600)
    expected = Counter({(chat, text): 1 for chat in chats for *_, text in EDUCATION})
    assert _group_sends(world) == expected
    assert sorted({m.create_time // 60 * 60 for m in _mass(world)}) == [
        _at(monday + timedelta(days=wd - 1), hhmm) for _, wd, hhmm, _ in EDUCATION]  # on time, to the minute
    occ = _occurrences(world, cal["calendar_id"])
    assert [o["status"] for o in occ["items"]] == ["done"] * 4 and all(o["broadcast_id"] for o in occ["items"])
    assert len(occ["upcoming"]) == 4 and min(o["due"] for o in occ["upcoming"]) == _at(monday + timedelta(days=7),
                                                                                        "19:00")


def _store(timeline, adds: list[tuple[str, int]]) -> tuple[dict, dict[str, str]]:
    """A store's channel code and calendar (day 0 welcome, day 1 loyalty card, day 3 coupon, 10:00);
    customers scan the code at the times given, between ticks every hour for a week."""
    world = timeline.world
    monday = _monday()
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    status, code = _code(world, state="store-7")
    assert status == 201, code
    rules = [{"name": name, "when": {"kind": "after", "event": "customer_added", "days": days, "time": "10:00"},
              "whom": {"kind": "customers", "channel_code": "store-7"}, "content": {"text": text}}
             for name, days, text in (("day 0", 0, "Welcome to the store"), ("day 1", 1, "Your loyalty card"),
                                      ("day 3", 3, "A coupon for you"))]
    cal = _calendar(world, rules)
    customers: dict[str, str] = {}
    pending = sorted(adds, key=lambda a: a[1])
    for hour in range(7 * 24):
        t = _at(monday, "00:00") + hour * 3600
        while pending and pending[0][1] <= t:
            name, when = pending.pop(0)
            timeline.to(when)
            customers[name] = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name=name)[
                "external_userid"]
            world.pump()
        timeline.tick(t)
    return cal, customers


def test_the_store_sends_day_0_1_3_to_each_customer_added_on_different_days(timeline):
    monday = _monday()
    day = [monday + timedelta(days=d) for d in range(7)]
    adds = [("Amy", _at(day[0], "09:00")), ("Ben", _at(day[1], "09:00")), ("Cat", _at(day[2], "09:00")),
            ("Dee", _at(day[0], "15:00"))]  # after Monday's 10:00: her day 0 is Tuesday's 10:00
    cal, customers = _store(timeline, adds)
    sends = _customer_sends(timeline.world)
    first = {"Amy": 0, "Ben": 1, "Cat": 2, "Dee": 1}
    expected = sorted((customers[n], text, _at(day[first[n] + offset], "10:00")) for n in customers
                      for text, offset in (("Welcome to the store", 0), ("Your loyalty card", 1),
                                           ("A coupon for you", 3)) if first[n] + offset < 7)
    assert sorted(sends) == expected
    assert Counter(c for c, *_ in sends) == {customers[n]: 3 for n in customers}
    occ = _occurrences(timeline.world, cal["calendar_id"])["items"]
    assert Counter(o["status"] for o in occ) == {"done": len(occ)}  # one per rule per day, empty ones included
    assert len({o["broadcast_id"] for o in occ if o["kind"] == "broadcast"}) == len(
        {(t, when) for _, t, when in sends})


# -- exactly once --------------------------------------------------------------------------------------------------
def test_a_tick_firing_twice_a_redelivered_message_and_a_crash_after_claiming_send_nothing_twice(classes,
                                                                                                monkeypatch):
    from chalicelib.sop_calendars import items as sitems
    from chalicelib.sop_calendars import schedule

    timeline, monday, chats = classes
    world = timeline.world
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    cal = _calendar(world, _education_rules())
    mon, tue, wed = (_at(monday + timedelta(days=d), hh) for d, hh in ((0, "19:00"), (1, "19:00"), (2, "20:00")))
    # Monday: the schedule fires twice for the minute, at the same time, then again, and a minute later
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.platform import schedules

    timeline.to(mon)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: schedules.minute(now=mon), range(2)))
    assert timeline.tick(mon)["sop_done"] == 0
    assert timeline.tick(mon + 60)["sop_done"] == 0
    # every sends-queue message of Monday's broadcast delivered again
    timeline.sends.feed(list(timeline.sends.seen))
    timeline.sends.run()
    # Tuesday: the tick dies right after claiming; the next minute's tick finishes the occurrence
    def die(corp_id, occ):
        raise RuntimeError("Lambda killed")

    monkeypatch.setattr(schedule, "claimed", die)
    assert timeline.tick(tue)["failures"] == 1
    assert [o["status"] for o in _occurrences(world, cal["calendar_id"])["items"]][:1] == ["pending"]
    monkeypatch.undo()
    monkeypatch.setattr(schedule, "claimed", lambda corp_id, occ: None)
    assert timeline.tick(tue + 60)["sop_done"] == 1
    # Wednesday: it dies after the broadcast was created, before the occurrence was settled
    real_settle, calls = sitems.settle, []

    def settle_dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Lambda killed")
        return real_settle(*args, **kwargs)

    monkeypatch.setattr(sitems, "settle", settle_dies_once)
    assert timeline.tick(wed)["failures"] == 1
    assert timeline.tick(wed + 60)["sop_done"] == 1
    texts = {text for *_, text in EDUCATION[:3]}
    assert _group_sends(world) == Counter({(chat, text): 1 for chat in chats for text in texts})
    occ = _occurrences(world, cal["calendar_id"])["items"]
    assert [o["status"] for o in occ] == ["done"] * 3
    status, listed = world.call("GET", "/api/v1/broadcasts?limit=50")
    assert sorted(b["broadcast_id"] for b in listed["items"]) == sorted(o["broadcast_id"] for o in occ)


def test_pause_stops_future_occurrences_and_resume_records_the_paused_ones_as_skipped(classes):
    timeline, monday, chats = classes
    world = timeline.world
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    cal = _calendar(world, _education_rules())
    cid = cal["calendar_id"]
    timeline.tick(_at(monday, "19:00"))
    timeline.to(_at(monday, "21:00"))
    status, paused = world.call("POST", f"{CALENDARS}/{cid}/pause")
    assert status == 200 and paused["status"] == "paused" and all(r["next_due"] is None for r in paused["rules"])
    assert world.call("POST", f"{CALENDARS}/{cid}/pause")[0] == 409
    for d, hh in ((1, "19:00"), (2, "20:00"), (3, "19:00")):
        timeline.tick(_at(monday + timedelta(days=d), hh))
    assert sum(_group_sends(world).values()) == 2  # Monday's, to two groups
    timeline.to(_at(monday + timedelta(days=4), "09:00"))
    status, resumed = world.call("POST", f"{CALENDARS}/{cid}/resume")
    assert status == 200 and resumed["status"] == "active"
    timeline.tick(_at(monday + timedelta(days=4), "09:01"))  # nothing of the paused days is sent late
    assert sum(_group_sends(world).values()) == 2
    occ = _occurrences(world, cid)
    assert Counter(o["status"] for o in occ["items"]) == {"done": 1, "skipped": 3}
    timeline.tick(_at(monday + timedelta(days=7), "19:00"))
    assert sum(_group_sends(world).values()) == 4


def test_late_within_the_grace_is_sent_late_and_past_it_is_recorded_missed(classes):
    timeline, monday, chats = classes
    world = timeline.world
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    cal = _calendar(world, _education_rules()[:2], grace_minutes=90)
    # down from Monday 18:00 to Tuesday 21:00: Monday's post is past the grace, Tuesday's within it
    timeline.tick(_at(monday + timedelta(days=1), "20:15"))
    assert _group_sends(world) == Counter({(chat, EDUCATION[1][3]): 1 for chat in chats})
    occ = {o["due"]: o for o in _occurrences(world, cal["calendar_id"])["items"]}
    monday_post, tuesday_post = occ[_at(monday, "19:00")], occ[_at(monday + timedelta(days=1), "19:00")]
    assert monday_post["status"] == "missed" and monday_post["broadcast_id"] is None
    assert tuesday_post["status"] == "done" and tuesday_post["late_seconds"] == 75 * 60
    timeline.tick(_at(monday + timedelta(days=1), "20:16"))
    assert sum(_group_sends(world).values()) == 2  # a missed occurrence is never sent afterwards


# -- reminders -----------------------------------------------------------------------------------------------------
def test_members_who_joined_a_group_become_one_reminder_to_its_owner(classes):
    from chalicelib.store import get_table, keys

    timeline, monday, chats = classes
    world = timeline.world
    get_table().update(keys.corp(CORP_ID), expression="SET agent_id = :a", values={":a": "1000002"})
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    rule = {"when": {"kind": "after", "event": "member_joined", "days": 1, "time": "09:00"},
            "whom": {"kind": "groups", "owner_ids": ["alice"]}, "content": {"text": "Please share the syllabus"}}
    cal = _calendar(world, [rule])
    timeline.to(_at(monday, "08:00"))  # in the window (Sunday 09:00, Monday 09:00] of Tuesday's reminder
    for name in ("Kim", "Lee"):
        world.sb.simulator.invite_to_group(CORP_ID, chats[0], "alice", name=name)
    world.pump()
    for d in range(3):
        timeline.tick(_at(monday + timedelta(days=d), "09:00"))
        timeline.tick(_at(monday + timedelta(days=d), "09:00"))  # twice
    messages = world.sb.journal.entries("app_message", corp_id=CORP_ID)
    assert [(m["userid"], "Please share the syllabus" in m["text"], "(2)" in m["text"]) for m in messages] == [
        ("alice", True, True)]
    occ = _occurrences(world, cal["calendar_id"])["items"]
    tuesday = next(o for o in occ if o["due"] == _at(monday + timedelta(days=1), "09:00"))
    assert tuesday["kind"] == "reminder" and list(tuesday["reminders"]) == ["alice"]
    assert {o["kind"] for o in occ if o is not tuesday} == {"none"}
    assert _mass(world) == []


# -- bad input -----------------------------------------------------------------------------------------------------
def test_bad_input_is_a_clear_4xx_and_stores_nothing(timeline, monkeypatch):
    from chalicelib.corps import items as corp_items
    from chalicelib.corps import registry
    from chalicelib.segments import items as segment_items
    from chalicelib.segments.items import SegmentItem
    from chalicelib.store import get_table, keys

    world = timeline.world
    corp_items.update_corp(CORP_ID, time_zone="America/New_York", updated_at=0)
    registry.forget(CORP_ID)
    segment_items.put_new("wwOtherCorp", SegmentItem(segment_id="s-theirs", name="theirs", filter={"statuses": [
        "active"]}, created_at=0, updated_at=0))
    timeline.to(_at(date(2026, 3, 1), "12:00", ZoneInfo("America/New_York")))
    groups = {"kind": "groups", "owner_ids": ["alice"]}
    weekly = {"kind": "weekly", "weekday": 1, "time": "09:00"}

    def rule(**change):
        return {"when": weekly, "whom": groups, "content": {"text": "hi"}, **change}

    cases = {
        "no target": ([{"when": weekly, "content": {"text": "hi"}}], 400, "validation_error"),
        "a time the DST change skips": ([rule(when={"kind": "date", "date": "2026-03-08", "time": "02:30"})], 400,
                                        "validation_error"),
        "an offset past 365 days": ([rule(when={"kind": "after", "event": "group_created", "days": 366,
                                                "time": "09:00"})], 400, "validation_error"),
        "another corp's segment": ([rule(whom={"kind": "customers", "segment_id": "s-theirs"})], 404, "not_found"),
        "an unknown channel code": ([rule(whom={"kind": "customers", "channel_code": "nope"})], 404, "not_found"),
        "a date in the past": ([rule(when={"kind": "date", "date": "2026-02-01", "time": "09:00"})], 400,
                               "validation_error"),
        "customers added, to groups": ([rule(when={"kind": "after", "event": "customer_added", "days": 1,
                                                   "time": "09:00"})], 400, "validation_error"),
        "{customer_name} in a mass message": ([rule(content={"text": "Hi {customer_name}"})], 400, "validation_error"),
        "a reminder without the corp's app": ([rule(when={"kind": "after", "event": "member_joined", "days": 1,
                                                          "time": "09:00"})], 400, "validation_error"),
        "a media_id in a weekly rule (it lives 3 days)": ([rule(content={"attachments": [
            {"type": "image", "media_id": "m1"}]})], 400, "validation_error"),
        "an hour 24": ([rule(when={**weekly, "time": "24:00"})], 400, "validation_error"),
        "no rules": ([], 400, "validation_error"),
        "the same rule twice": ([rule(), rule()], 400, "validation_error"),
    }
    for name, (rules, code, error) in cases.items():
        status, answer = world.call("POST", CALENDARS, {"name": "c", "rules": rules})
        assert (status, answer["error"]["code"]) == (code, error), (name, answer)
    status, answer = world.call("POST", CALENDARS, {"name": "c", "rules": [rule(), rule(
        content={"text": "Hi {customer_name}"})]})
    assert answer["error"]["details"] == [{"field": "rules.1.content.text", "message": answer["error"]["details"][0][
        "message"]}] and "{customer_name}" in answer["error"]["details"][0]["message"]
    status, answer = world.call("POST", CALENDARS, {"name": "c", "rules": [rule(), rule(
        whom={"kind": "groups", "owner_ids": ["alice", "nobody"]})]})  # named where this request lists them
    assert (status, answer["error"]["code"]) == (400, "unknown_staff"), answer
    assert [d["field"] for d in answer["error"]["details"]] == ["rules.1.whom.groups.owner_ids"], answer
    stored = [i for i in get_table().query_all(keys.corp_partition(CORP_ID)) if i["SK"].startswith("SOP")]
    assert stored == []
    # 02:30 on another date exists: accepted, due at that local time
    status, ok = world.call("POST", CALENDARS, {"name": "c", "rules": [rule(when={"kind": "date", "date": "2026-03-09",
                                                                                  "time": "02:30"})]})
    assert status == 201 and ok["rules"][0]["next_due"] == _at(date(2026, 3, 9), "02:30", ZoneInfo("America/New_York"))
    assert world.call("POST", f"{CALENDARS}/{ok['calendar_id']}/resume")[0] == 409
    assert world.call("GET", f"{CALENDARS}/c-nope/occurrences")[0] == 404
    assert drain_queue(world.settings.sends_queue) == []


def test_broadcast_create_is_idempotent_on_a_callers_id(world):
    from chalicelib.broadcasts import service as broadcasts

    req = broadcasts.BroadcastCreate(name="b", target={"kind": "groups", "owner_ids": ["alice"]},
                                     content={"text": "hi"})
    first = broadcasts.create(CORP_ID, req, broadcast_id="bfixed1")
    again = broadcasts.create(CORP_ID, req, broadcast_id="bfixed1")
    assert first.broadcast_id == again.broadcast_id == "bfixed1"
    status, listed = world.call("GET", "/api/v1/broadcasts")
    assert [b["broadcast_id"] for b in listed["items"]] == ["bfixed1"]
    assert len(drain_queue(world.settings.sends_queue)) == 1  # its first plan step, queued once


def test_an_edit_keeps_unchanged_rules_schedules_and_a_deleted_calendar_sends_nothing(classes):
    timeline, monday, chats = classes
    world = timeline.world
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    rules = _education_rules()
    cal = _calendar(world, rules[:2])
    cid = cal["calendar_id"]
    timeline.tick(_at(monday, "19:00"))
    timeline.to(_at(monday, "20:00"))
    moved = {**rules[1], "when": {"kind": "weekly", "weekday": 2, "time": "18:00"}}
    status, edited = world.call("PATCH", f"{CALENDARS}/{cid}", {"rules": [rules[0], moved], "name": "spring"})
    assert status == 200 and edited["name"] == "spring" and edited["version"] == 2, edited
    ids = {r["rule_id"]: r for r in edited["rules"]}
    assert cal["rules"][0]["rule_id"] in ids and cal["rules"][1]["rule_id"] not in ids  # kept / replaced
    assert ids[cal["rules"][0]["rule_id"]]["next_due"] == _at(monday + timedelta(days=7), "19:00")
    timeline.tick(_at(monday + timedelta(days=1), "18:00"))
    timeline.tick(_at(monday + timedelta(days=1), "19:00"))  # the old Tuesday time: nothing
    assert _group_sends(world) == Counter({(chat, text): 1 for chat in chats for text in (EDUCATION[0][3],
                                                                                          EDUCATION[1][3])})
    status, page = world.call("GET", CALENDARS)
    assert status == 200 and [c["calendar_id"] for c in page["items"]] == [cid]
    assert world.call("DELETE", f"{CALENDARS}/{cid}")[0] == 204
    assert world.call("GET", f"{CALENDARS}/{cid}")[0] == 404
    timeline.tick(_at(monday + timedelta(days=7), "19:00"))
    assert sum(_group_sends(world).values()) == 4


def test_calendar_arithmetic_in_a_zone_with_daylight_saving_time():
    from chalicelib.sop_calendars import service as sop

    ny = ZoneInfo("America/New_York")
    weekly = {"when": {"kind": "weekly", "weekday": 7, "time": "02:30"}}
    # Sunday 2026-03-08 02:30 does not exist in New York: that week's occurrence runs past the gap, 03:30 EDT
    assert not sop.exists(ny, date(2026, 3, 8), "02:30") and sop.exists(ny, date(2026, 3, 15), "02:30")
    first = sop.next_after(weekly, ny, _at(date(2026, 3, 2), "00:00", ny))
    assert datetime.fromtimestamp(first, ny).strftime("%F %H:%M %Z") == "2026-03-08 03:30 EDT"
    assert datetime.fromtimestamp(sop.next_after(weekly, ny, first), ny).strftime("%F %H:%M") == "2026-03-15 02:30"
    # relative windows tile time, across the DST change too: each event falls in exactly one
    after = {"when": {"kind": "after", "event": "customer_added", "days": 1, "time": "10:00"}}
    due, windows = _at(date(2026, 3, 5), "10:00", ny), []
    for _ in range(6):
        windows.append(sop.window(after, ny, due))
        due = sop.next_after(after, ny, due)
    assert all(b[0] == a[1] + 1 for a, b in zip(windows, windows[1:], strict=False))
    assert windows[0] == (_at(date(2026, 3, 3), "10:00", ny) + 1, _at(date(2026, 3, 4), "10:00", ny))
    # a date rule: once, then no next time
    once = {"when": {"kind": "date", "date": "2026-03-09", "time": "09:00"}}
    assert sop.next_after(once, ny, 0) == _at(date(2026, 3, 9), "09:00", ny)
    assert sop.next_after(once, ny, _at(date(2026, 3, 9), "09:00", ny)) is None


def test_a_date_rule_sends_once_and_leaves_the_due_index(classes):
    from chalicelib.sop_calendars import items as sitems

    timeline, monday, chats = classes
    world = timeline.world
    timeline.to(_at(monday - timedelta(days=1), "12:00"))
    rule = {"when": {"kind": "date", "date": (monday + timedelta(days=2)).isoformat(), "time": "08:00"},
            "whom": {"kind": "groups", "chat_ids": [chats[1]]}, "content": {"text": "Open day"}}
    cal = _calendar(world, [rule])
    for d in range(2, 5):
        timeline.tick(_at(monday + timedelta(days=d), "08:00"))
    assert _group_sends(world) == Counter({(chats[1], "Open day"): 1})
    assert sitems.due(_at(monday + timedelta(days=400), "00:00"))[0] == []
    status, got = world.call("GET", f"{CALENDARS}/{cal['calendar_id']}")
    assert status == 200 and got["rules"][0]["next_due"] is None
    assert _occurrences(world, cal["calendar_id"])["upcoming"] == []
