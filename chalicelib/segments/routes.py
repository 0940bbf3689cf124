"""/api/v1/segments: saved selections of customers by tags, staff, channel code, date added and
status; previews (count and a sample) of saved and unsaved filters.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, PageQuery, endpoint, register_error

bp = Blueprint(__name__)

SEG = "chalicelib.segments.service"

register_error(f"{SEG}:SegmentNotFound", 404, "not_found")
register_error(f"{SEG}:InvalidFilter", 400, "validation_error")
register_error("chalicelib.segments.items:VersionConflict", 409, "edit_conflict")

SEGMENTS = f"{API_PREFIX}/segments"
VIEW = Lazy(f"{SEG}:SegmentView")
PREVIEW = Lazy(f"{SEG}:Preview")


@endpoint(bp, "POST", SEGMENTS, summary="Save a segment (its filter is checked, nothing is evaluated)",
          body=Lazy(f"{SEG}:SegmentCreate"), response=VIEW, status=201)
def create_segment(call: Call) -> Any:
    from chalicelib.segments import service as segments

    return segments.SegmentView.of(segments.create(call.principal.corp_id, call.body))


@endpoint(bp, "GET", SEGMENTS, summary="List segments, oldest first", query=PageQuery,
          response=Lazy(f"{SEG}:SegmentView", page=True))
def list_segments(call: Call) -> Any:
    from chalicelib.api.core import Page
    from chalicelib.segments import items as segment_items
    from chalicelib.segments.service import SegmentView

    found, cursor = segment_items.list_segments(call.principal.corp_id, limit=call.query.limit,
                                                cursor=call.query.cursor)
    return Page[SegmentView](items=[SegmentView.of(s) for s in found], next_cursor=cursor)


@endpoint(bp, "POST", f"{SEGMENTS}/preview", summary="Count and sample the relations an unsaved filter selects",
          body=Lazy(f"{SEG}:FilterPreview"), response=PREVIEW)
def preview_filter(call: Call) -> Any:
    from chalicelib.segments import service as segments

    return segments.preview(call.principal.corp_id, call.body.filter, sample=call.body.sample)


@endpoint(bp, "GET", f"{SEGMENTS}/{{segment_id}}", summary="One segment", response=VIEW)
def get_segment(call: Call) -> Any:
    from chalicelib.segments import service as segments

    return segments.SegmentView.of(segments.get(call.principal.corp_id, call.params["segment_id"]))


@endpoint(bp, "PATCH", f"{SEGMENTS}/{{segment_id}}", summary="Rename a segment or replace its filter",
          body=Lazy(f"{SEG}:SegmentUpdate"), response=VIEW)
def update_segment(call: Call) -> Any:
    from chalicelib.segments import service as segments

    return segments.SegmentView.of(segments.update(call.principal.corp_id, call.params["segment_id"], call.body))


@endpoint(bp, "DELETE", f"{SEGMENTS}/{{segment_id}}", summary="Delete a segment", status=204)
def delete_segment(call: Call) -> None:
    from chalicelib.segments import service as segments

    segments.delete(call.principal.corp_id, call.params["segment_id"])


@endpoint(bp, "POST", f"{SEGMENTS}/{{segment_id}}/preview",
          summary="Count and sample the relations a saved segment selects now", body=Lazy(f"{SEG}:PreviewOptions"),
          response=PREVIEW)
def preview_segment(call: Call) -> Any:
    from chalicelib.segments import service as segments

    seg = segments.get(call.principal.corp_id, call.params["segment_id"])
    return segments.preview(call.principal.corp_id, segments.filter_of(seg), sample=call.body.sample)
