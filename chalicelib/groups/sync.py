"""Full group sync from WeCom, daily and on demand, to correct what lost callbacks left wrong:
groupchat/list (WeCom's cursor) and, for each listed group, groupchat/get, one page of
`GROUPS_PER_PAGE` groups per queue message. It runs on the customer sync's machinery
(chalicelib/customers/sync.py: one page in flight, a page applied under the job's page condition,
deferral on WeCom's limits, the watchdog, the per-kind lock), only its page is its own.

Each group is stored as a read (`service.refresh_members`): written over the version seen before
the read only, so a sync racing live callbacks never puts an older member count back.
"""

from __future__ import annotations

import time

from chalicelib.customers import sync as jobs
from chalicelib.customers.sync_items import SyncJob

KIND = "groups"
GROUPS_PER_PAGE = 50  # groupchat/get calls per page (groupchat/list allows up to 1000 per call)


def start(corp_id: str, *, now: float | None = None) -> SyncJob:
    """Start a group sync (sync_items.JobRunning if one is already running for the corp)."""
    return jobs.start(corp_id, now=now, kind=KIND, progress={"groups": 0, "gone": 0, "pages": 0})


def handle_page(corp_id: str, job_id: str, page: int, *, now: float | None = None) -> str:
    from chalicelib.corps import registry as corps
    from chalicelib.groups import service
    from chalicelib.wecom.models import GroupChatListRequest

    now = int(time.time() if now is None else now)
    job = jobs.page_to_run(corp_id, job_id, page, now=now)
    if isinstance(job, str):
        return job
    client = corps.wecom_client(corp_id)
    state, progress = dict(job.state), dict(job.progress)
    listed = client.list_groupchats(GroupChatListRequest(cursor=state.get("cursor") or None, limit=GROUPS_PER_PAGE))
    for entry in listed.group_chat_list:
        if service.refresh_members(corp_id, entry.chat_id, client=client) is None:
            progress["gone"] = progress.get("gone", 0) + 1  # dismissed between the list and the get
        progress["groups"] = progress.get("groups", 0) + 1
    state["cursor"] = listed.next_cursor
    return jobs.finish_page(job, page, now=now, state=state, progress=progress, done=not listed.next_cursor)
