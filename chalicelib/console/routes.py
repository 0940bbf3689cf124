"""/console: the operator console's files, served by the deployment itself (no second server, no
CDN: it works wherever the API does). The pages call only the public /api/v1 with the API key the
operator signs in with (kept in the tab's sessionStorage).

Only the files in static/ are served, by exact name (a flat folder: no path ever reaches the file
system). Nothing is read at import time: a cold callback Lambda never touches these files.
"""

from __future__ import annotations

import os

from chalice import Blueprint, Response

bp = Blueprint(__name__)

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Everything from this origin only: no CDN, no inline script; the pages fetch /api/v1 here.
SECURITY = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: https: http:; "
                                       "style-src 'self'; script-src 'self'; object-src 'none'; "
                                       "base-uri 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache"}


def _file(name: str) -> Response:
    if name.startswith(".") or os.path.splitext(name)[1] not in TYPES or name not in os.listdir(STATIC):
        return Response(body="not found", status_code=404, headers={"Content-Type": "text/plain"})
    with open(os.path.join(STATIC, name), encoding="utf-8") as f:
        body = f.read()
    return Response(body=body, status_code=200,
                    headers={"Content-Type": TYPES[os.path.splitext(name)[1]], **SECURITY})


@bp.route("/console", methods=["GET"])
def console_index() -> Response:
    return _file("index.html")


@bp.route("/console/{name}", methods=["GET"])
def console_file(name: str) -> Response:
    return _file(name)
