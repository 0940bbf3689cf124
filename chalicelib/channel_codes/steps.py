"""Channel-code event steps: a daily cap acts on the add that reaches it.

The minute tick alone would let a burst through a capped code reach the capped staff member for up
to a minute. This step runs once the add is committed (after_commit: the add's count is in the
table) and switches the contact way at once when the add brought its staff member to the cap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.platform.context import EventContext
from chalicelib.platform.router import ROUTER

if TYPE_CHECKING:
    from chalicelib.wecom.events import AddExternalContact

logger = logging.getLogger(__name__)


def _capped(ctx: EventContext[AddExternalContact]) -> bool:
    """Only adds through a code with a daily cap have anything to check (the others cost nothing)."""
    code = ctx.channel_code
    return code is not None and bool(code.daily_cap)


@ROUTER.register("change_external_contact", "add_external_contact", after_commit=True, needed=_capped)
def enforce_daily_cap(ctx: EventContext[AddExternalContact]) -> list[Any]:
    code = ctx.channel_code
    if code is None or not code.daily_cap:
        return []
    from chalicelib.channel_codes import service
    from chalicelib.wecom import errors

    try:
        service.enforce_cap(ctx.corp_id, code.state, ctx.event.user_id, cap=code.daily_cap, day=ctx.day,
                            now=ctx.now)
    except (errors.InvalidArgument, errors.NotFound):
        # WeCom refuses this code's update (contact way deleted in its console, a staff member
        # gone): the add is recorded all the same; the minute tick keeps trying and logging it.
        logger.exception("switching capped channel code %s/%s failed", ctx.corp_id, code.state)
    return []
