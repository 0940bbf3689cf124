"""/api/v1/sop-calendars: content calendars (社群 SOP) — rules of what to send to which customers or
groups when (a weekday, a date, or N days after a customer was added / joined a group / a group was
created); each occurrence becomes one broadcast (or reminder), exactly once; paused and resumed.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error

bp = Blueprint(__name__)

SVC = "chalicelib.sop_calendars.service"

register_error(f"{SVC}:CalendarNotFound", 404, "not_found")
register_error(f"{SVC}:InvalidCalendar", 400, "validation_error")
register_error(f"{SVC}:CalendarState", 409, "calendar_state")
register_error("chalicelib.sop_calendars.items:VersionConflict", 409, "edit_conflict")

CALENDARS = f"{API_PREFIX}/sop-calendars"
ONE = f"{CALENDARS}/{{calendar_id}}"
VIEW = Lazy(f"{SVC}:CalendarView")
RULE_ERRORS = ("chalicelib.segments.service:SegmentNotFound", "chalicelib.segments.service:InvalidFilter",
               "chalicelib.tags.service:UnknownTags", "chalicelib.group_codes.service:GroupCodeNotFound",
               "chalicelib.channel_codes.service:ChannelCodeNotFound",
               "chalicelib.broadcasts.service:InvalidBroadcast", "chalicelib.broadcasts.service:UnknownStaff",
               "chalicelib.broadcasts.service:UnknownGroups", f"{SVC}:InvalidCalendar")


@endpoint(bp, "POST", CALENDARS, summary="Create an SOP calendar (its rules are checked before anything is stored)",
          body=Lazy(f"{SVC}:CalendarCreate"), response=VIEW, status=201, errors=RULE_ERRORS)
def create_calendar(call: Call) -> Any:
    from chalicelib.sop_calendars import service as sop

    cal, states = sop.create(call.principal.corp_id, call.body)
    return sop.CalendarView.of(cal, states)


@endpoint(bp, "GET", CALENDARS, summary="List SOP calendars, oldest first", query=PageQuery,
          response=Lazy(f"{SVC}:CalendarView", page=True))
def list_calendars(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.sop_calendars import items as sitems
    from chalicelib.sop_calendars import service as sop

    corp_id = call.principal.corp_id
    found, cursor = sitems.list_calendars(corp_id, limit=call.query.limit, cursor=call.query.cursor)
    return Page[sop.CalendarView](items=[sop.view(corp_id, c) for c in found], next_cursor=cursor)


@endpoint(bp, "GET", ONE, summary="One SOP calendar, with each rule's next due time", response=VIEW)
def get_calendar(call: Call) -> Any:
    from chalicelib.sop_calendars import service as sop

    corp_id = call.principal.corp_id
    return sop.view(corp_id, sop.get(corp_id, call.params["calendar_id"]))


@endpoint(bp, "PATCH", ONE, summary="Rename, change the grace, or replace the rules (unchanged rules keep their "
                                    "schedule; new ones are due from now on)",
          body=Lazy(f"{SVC}:CalendarUpdate"), response=VIEW, errors=RULE_ERRORS)
def update_calendar(call: Call) -> Any:
    from chalicelib.sop_calendars import service as sop

    corp_id = call.principal.corp_id
    return sop.view(corp_id, sop.update(corp_id, call.params["calendar_id"], call.body))


@endpoint(bp, "DELETE", ONE, summary="Delete an SOP calendar (its past occurrences and broadcasts stay)", status=204)
def delete_calendar(call: Call) -> None:
    from chalicelib.sop_calendars import service as sop

    sop.delete(call.principal.corp_id, call.params["calendar_id"])


@endpoint(bp, "POST", f"{ONE}/pause", summary="Pause: no occurrence is sent until resumed", response=VIEW)
def pause_calendar(call: Call) -> Any:
    from chalicelib.sop_calendars import service as sop

    corp_id = call.principal.corp_id
    return sop.view(corp_id, sop.pause(corp_id, call.params["calendar_id"]))


@endpoint(bp, "POST", f"{ONE}/resume", summary="Resume from now on: the paused time's occurrences are recorded as "
                                               "skipped, not sent", response=VIEW)
def resume_calendar(call: Call) -> Any:
    from chalicelib.sop_calendars import service as sop

    corp_id = call.principal.corp_id
    return sop.view(corp_id, sop.resume(corp_id, call.params["calendar_id"]))


@endpoint(bp, "GET", f"{ONE}/occurrences", summary="Past occurrences (newest first) with their status and "
                                                   "broadcast, and each rule's next one",
          query=Lazy(f"{SVC}:OccurrenceQuery"), response=Lazy(f"{SVC}:OccurrencesPage"))
def list_occurrences(call: Call) -> Any:
    from chalicelib.sop_calendars import service as sop

    return sop.occurrences(call.principal.corp_id, call.params["calendar_id"], call.query)
