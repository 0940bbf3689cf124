"""Full group sync (POST /api/v1/group-syncs): groups whose callbacks never arrived are read page by
page from groupchat/list + get, with exact member counts; a killed run resumes; a redelivered page
is a no-op; one running group sync per corp; the daily tick starts one."""

from __future__ import annotations

import time

import pytest

from tests.functional.test_customer_sync import run_sync
from tests.helpers import CORP_ID, drain_queue

N_GROUPS = 7


@pytest.fixture
def unseen_groups(world, monkeypatch):
    """Groups made in the sandbox whose callbacks were all lost; 3 groups per sync page."""
    from chalicelib.groups import sync as group_sync

    monkeypatch.setattr(group_sync, "GROUPS_PER_PAGE", 3)
    sim = world.sb.simulator
    chats = []
    for i in range(N_GROUPS):
        chat = sim.create_group(CORP_ID, ("alice", "bob")[i % 2], f"Store {i}")["chat_id"]
        for k in range(i):
            sim.invite_to_group(CORP_ID, chat, "alice", external_userid=f"wm{i}x{k}")
        chats.append(chat)
    drain_queue(world.settings.events_queue)  # every callback lost
    return chats


def _truth(world, chat_id: str) -> tuple[int, str]:
    chat = world.sb.world.corp(CORP_ID).chats[chat_id]
    return len(chat.members), chat.member_version


def _stored(chat_id: str) -> tuple[int | None, str | None]:
    from chalicelib.groups import items as group_items

    group = group_items.get_group(CORP_ID, chat_id, consistent=True)
    return (group.member_count, group.member_version) if group else (None, None)


def test_sync_reads_every_group_with_its_exact_count(world, unseen_groups):
    assert all(_stored(c) == (None, None) for c in unseen_groups)
    status, job = world.call("POST", "/api/v1/group-syncs")
    assert status == 202, job
    assert run_sync(world) == 3  # ceil(7 / 3) pages
    status, job = world.call("GET", f"/api/v1/group-syncs/{job['job_id']}")
    assert status == 200
    assert (job["status"], job["kind"], job["progress"]["groups"], job["progress"]["pages"]) == ("done", "groups", 7, 3)
    assert all(_stored(c) == _truth(world, c) for c in unseen_groups)
    status, listed = world.call("GET", "/api/v1/groups?owner=bob")
    assert sorted(g["group_id"] for g in listed["items"]) == sorted(unseen_groups[1::2])


def test_a_killed_run_resumes_and_a_redelivered_page_is_a_no_op(world, unseen_groups):
    from chalicelib.customers import sync as jobs
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.groups import sync as group_sync

    job = group_sync.start(CORP_ID)
    first = drain_queue(world.settings.sync_queue)
    assert jobs.handle_message(first[0]) == "advanced"
    assert jobs.handle_message(first[0]) == "duplicate"  # redelivered
    drain_queue(world.settings.sync_queue)  # the run dies: page 1's message is lost
    assert jobs.resume_stalled(now=time.time() + jobs.STALL_SECONDS + 1) == 1
    run_sync(world)
    done = sync_jobs.get(CORP_ID, job.job_id)
    assert (done.status, done.progress["groups"]) == ("done", 7)  # each group read once
    assert all(_stored(c) == _truth(world, c) for c in unseen_groups)


def test_a_sync_corrects_a_drifted_count_without_undoing_newer_callbacks(world, unseen_groups):
    from chalicelib.groups import items as group_items

    chat = unseen_groups[3]
    world.call("POST", "/api/v1/group-syncs")
    run_sync(world)
    world.sb.simulator.invite_to_group(CORP_ID, chat, "alice", external_userid="wmLost")
    drain_queue(world.settings.events_queue)  # lost: the stored count drifted
    assert _stored(chat)[0] == _truth(world, chat)[0] - 1
    world.call("POST", "/api/v1/group-syncs")
    run_sync(world)
    assert _stored(chat) == _truth(world, chat)
    world.sb.simulator.invite_to_group(CORP_ID, chat, "alice", external_userid="wmAfter")
    world.pump()  # the next callback starts at the version the sync stored: counted without a read
    assert _stored(chat) == _truth(world, chat)
    assert group_items.member_count(CORP_ID, chat) == 3 + 1 + 2  # alice, 3 customers, wmLost, wmAfter


def test_one_group_sync_at_a_time_and_its_own_jobs_only(world, unseen_groups):
    status, job = world.call("POST", "/api/v1/group-syncs", {})
    assert status == 202
    status, body = world.call("POST", "/api/v1/group-syncs")
    assert status == 409 and body["error"]["details"]["job_id"] == job["job_id"]
    status, customers_job = world.call("POST", "/api/v1/customer-syncs")  # another kind: its own lock
    assert status == 202
    assert world.call("GET", f"/api/v1/group-syncs/{customers_job['job_id']}")[0] == 404
    status, body = world.call("GET", "/api/v1/group-syncs/nope")
    assert status == 404 and "nope" in body["error"]["message"]
    assert world.call("POST", "/api/v1/group-syncs", {"full": True})[0] == 400


def test_the_daily_tick_starts_a_group_sync(world, unseen_groups):
    from chalicelib.platform import schedules

    result = schedules.daily()
    assert (result["group_syncs_started"], result["syncs_started"], result["failures"]) == (1, 1, 0)
    assert schedules.daily()["group_syncs_started"] == 0  # still running: left to finish
    run_sync(world)
    assert all(_stored(c) == _truth(world, c) for c in unseen_groups)
