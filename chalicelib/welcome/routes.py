"""/api/v1/welcome: the default welcome message (欢迎语) for contacts with no channel code.

Models and logic are named lazily (`Lazy("module:Name")`) and imported inside the views: importing
app.py registers these routes without building their models (the callback path's cold start).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.core import API_PREFIX, Call, Lazy, endpoint

bp = Blueprint(__name__)


# -- the default welcome ------------------------------------------------------------------------------
DEFAULT_WELCOME = Lazy("chalicelib.welcome.steps:DefaultWelcome")
DEFAULT_WELCOME_UPDATE = Lazy("chalicelib.welcome.steps:DefaultWelcomeUpdate")


@endpoint(bp, "PUT", f"{API_PREFIX}/welcome/default", summary="Set the welcome for contacts with no channel",
          body=DEFAULT_WELCOME_UPDATE, response=DEFAULT_WELCOME)
def put_default_welcome(call: Call) -> Any:
    from chalicelib.welcome import steps as welcome

    welcome.set_default_welcome(call.principal.corp_id, call.body.welcome)
    return call.body


@endpoint(bp, "GET", f"{API_PREFIX}/welcome/default", summary="The welcome for contacts with no channel",
          response=DEFAULT_WELCOME)
def get_default_welcome(call: Call) -> Any:
    from chalicelib.welcome import steps as welcome

    return welcome.DefaultWelcome(welcome=welcome.default_welcome(call.principal.corp_id))
