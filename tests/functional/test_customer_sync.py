"""Full customer sync on the sandbox: a corp that already has customers in WeCom (populated straight
into the sandbox's world, no callbacks) is read page by page through the sync queue.

The small version of bench/full_sync.py: every customer present once with its relations, tags and
state; a killed run resumed by the watchdog ends in the same state; a redelivered page is a no-op;
one running sync per corp; a 45009 or an outage defers the page instead of failing it; WeCom refusing
the request for good (wrong secret, no permission, IP not trusted) fails the job at once and frees
its lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.helpers import CORP_ID, drain_queue, sqs_event

EXTRA_STAFF = ("dave", "erin")  # + the fixture's alice, bob, carol
PER_STAFF = 60
SHARE_EVERY = 4  # every 4th customer is also a contact of the next staff member
T0 = 1_700_000_000


# -- populating the sandbox's WeCom directly ---------------------------------------------------------
def populate(sb, corp_id: str, staff: list[str], per_staff: int, *, tags: list[str] = (),
             share_every: int = SHARE_EVERY, t0: int = T0) -> dict[str, dict[str, dict]]:
    """`per_staff` customers per staff member, every `share_every`-th also followed by the next
    staff member; some relations carry a channel state and tags. Returns what WeCom holds:
    {customer_id: {staff_id: {"state", "tags", "createtime"}}}."""
    from sandbox.state import Customer, Relation

    corp = sb.world.corp(corp_id)
    expected: dict[str, dict[str, dict]] = {}
    with sb.world.lock:
        for userid in staff:
            if userid not in corp.staff:
                sb.add_staff(corp_id, userid)
        n = 0
        for si, userid in enumerate(staff):
            for _ in range(per_staff):
                ext = f"wm{n:030d}"
                corp.customers[ext] = Customer(ext, f"Customer {n}", type=1 + (n % 7 == 0), gender=n % 3,
                                               unionid=f"o{n:027d}" if n % 7 else None)
                owners = [userid]
                if n % share_every == 0:
                    owners.append(staff[(si + 1) % len(staff)])
                expected[ext] = {}
                for k, owner in enumerate(owners):
                    state = f"store-{n % 5}" if n % 3 == 0 else None
                    rel_tags = [tags[(n + k) % len(tags)]] if tags and n % 2 == 0 else []
                    created = t0 + n * 10 + k * 5
                    corp.relations[(ext, owner)] = Relation(owner, ext, created, state=state,
                                                            tags=list(rel_tags))
                    expected[ext][owner] = {"state": state, "tags": sorted(rel_tags), "createtime": created}
                n += 1
    return expected


# -- driving the sync queue as Lambda's event source would ---------------------------------------------
def run_sync(world, *, max_messages: int = 500, stop_after: int | None = None) -> int:
    """Feed each message of the sync queue to `on_sync` (batch size 1) until the queue is empty
    (or `stop_after` messages); returns how many were handled. Fails on a batch item failure."""
    handled = 0
    while handled < max_messages:
        bodies = drain_queue(world.settings.sync_queue)
        if not bodies:
            return handled
        for body in bodies:
            payload = world.client.lambda_.invoke("on_sync", sqs_event([body])).payload
            assert payload == {"batchItemFailures": []}, payload
            handled += 1
            if stop_after is not None and handled >= stop_after:
                return handled
    raise AssertionError("sync queue did not drain")


def synced_items(corp_id: str) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
    """Every customer item and relation item in the table for the corp."""
    from chalicelib.store import get_table, keys

    items = get_table().query_all(keys.corp_partition(corp_id), sk_prefix="CUSTOMER#")
    customers: dict[str, dict] = {}
    relations: dict[tuple[str, str], dict] = {}
    for item in items:
        if item["type"] == "customer":
            assert item["customer_id"] not in customers
            customers[item["customer_id"]] = item
        elif item["type"] == "relation":
            key = (item["customer_id"], item["staff_id"])
            assert key not in relations
            relations[key] = item
    return customers, relations


def assert_synced(expected: dict[str, dict[str, dict]], sb) -> None:
    customers, relations = synced_items(CORP_ID)
    assert sorted(customers) == sorted(expected)  # every customer, once
    want = {(c, s) for c, owners in expected.items() for s in owners}
    assert set(relations) == want
    corp = sb.world.corp(CORP_ID)
    for (c, s), item in relations.items():
        rel = expected[c][s]
        assert item["status"] == "active"
        assert item.get("state") == rel["state"], (c, s)
        assert sorted(item.get("tags") or []) == rel["tags"], (c, s)
        assert item["added_at"] == rel["createtime"]
        assert item["GSI1PK"].endswith(s)  # a staff member's list (GSI1) finds it
    for c, item in customers.items():
        wecom = corp.customers[c]
        assert (item["name"], item["customer_type"], item["gender"], item.get("unionid")) == (
            wecom.name, wecom.type, wecom.gender, wecom.unionid)


def expected_pages(expected: dict[str, dict[str, dict]]) -> int:
    relations = sum(len(o) for o in expected.values())
    return 1 + -(-relations // 100)  # get_follow_user_list, then 100 relations per page


def skip_sqs_clock(monkeypatch, seconds: float) -> None:
    """Move moto's SQS clock forward (message delays and visibility timeouts), not ours."""
    import moto.sqs.models as sqs_models

    real = sqs_models.unix_time_millis
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda dt=None: real(dt) + seconds * 1000)


@pytest.fixture
def corp_with_customers(world):
    tag_ids = world.tag("level", "vip", "regular", "new")
    staff = sorted(world.sb.world.corp(CORP_ID).staff) + list(EXTRA_STAFF)
    expected = populate(world.sb, CORP_ID, staff, PER_STAFF, tags=tag_ids)
    return world, expected


# -- the tests -------------------------------------------------------------------------------------
def test_full_sync_brings_every_customer_once_with_relations_tags_and_state(corp_with_customers):
    world, expected = corp_with_customers
    relations = sum(len(o) for o in expected.values())
    assert len(expected) == 5 * PER_STAFF and relations > len(expected)  # some shared

    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202, job
    assert job["status"] == "running" and job["next_page"] == 0
    handled = run_sync(world)
    assert handled == expected_pages(expected)  # one message per page, no extra

    assert_synced(expected, world.sb)
    status, view = world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")
    assert status == 200, view
    assert view["status"] == "done" and view["finished_at"]
    assert "staff" not in view["state"]  # the staff list stays internal
    assert view["progress"]["staff"] == 5
    assert view["progress"]["relations"] == relations
    assert view["progress"]["pages"] == expected_pages(expected)
    assert view["progress"]["new_customers"] == len(expected)
    # WeCom was read with the cursor, 100 staff and 100 contacts per call
    calls = world.sb.requests("externalcontact/batch/get_by_user")
    assert len(calls) == expected_pages(expected) - 1 and all(c["errcode"] == 0 for c in calls)
    assert len(world.sb.requests("externalcontact/get_follow_user_list")) == 1

    # Customers are readable through the API with their relation's tags and state.
    sample = next(c for c, owners in expected.items() if len(owners) == 2 and any(o["tags"] for o in owners.values()))
    status, detail = world.call("GET", f"/api/v1/customers/{sample}")
    assert status == 200, detail
    got = {r["staff_id"]: (r["state"], sorted(r["tags"])) for r in detail["relations"]}
    assert got == {s: (o["state"], o["tags"]) for s, o in expected[sample].items()}

    # A second sync when the first is done re-reads everything and duplicates nothing.
    status, job2 = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202 and job2["job_id"] != job["job_id"]
    run_sync(world)
    assert_synced(expected, world.sb)
    assert world.call("GET", f"/api/v1/customer-syncs/{job2['job_id']}")[1]["status"] == "done"


def test_killed_run_resumes_from_the_job_item(corp_with_customers, monkeypatch):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    assert run_sync(world, stop_after=3) == 3  # follow list + 2 pages applied

    # The 4th page crashes after its writes but before the job advances (a Lambda killed mid-page);
    # its message is gone from the queue (deleted here; in AWS it would also come back).
    real_advance = sync_jobs.advance

    def killed(*args, **kwargs):
        raise RuntimeError("Lambda killed")

    monkeypatch.setattr(sync_jobs, "advance", killed)
    bodies = drain_queue(world.settings.sync_queue)
    assert len(bodies) == 1
    payload = world.client.lambda_.invoke("on_sync", sqs_event(bodies)).payload
    assert len(payload["batchItemFailures"]) == 1
    monkeypatch.setattr(sync_jobs, "advance", real_advance)
    assert drain_queue(world.settings.sync_queue) == []
    stuck = sync_jobs.get(CORP_ID, job["job_id"])
    assert (stuck.status, stuck.next_page, stuck.progress["pages"]) == ("running", 3, 3)

    # The minute tick leaves a job alone while it may still be moving, then re-sends its page.
    assert customer_sync.resume_stalled(now=time.time()) == 0
    assert customer_sync.resume_stalled(now=time.time() + customer_sync.STALL_SECONDS + 1) == 1
    assert run_sync(world) == expected_pages(expected) - 3

    assert_synced(expected, world.sb)
    done = world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")[1]
    assert done["status"] == "done"
    # progress counts the re-run page once (the crashed attempt never advanced the job)
    assert done["progress"]["relations"] == sum(len(o) for o in expected.values())
    assert done["progress"]["pages"] == expected_pages(expected)
    # ...and counts its customers as new although the crashed attempt had written them already
    assert done["progress"]["new_customers"] == len(expected)
    # the crashed page was read from WeCom twice, nothing else was
    assert len(world.sb.requests("externalcontact/batch/get_by_user")) == expected_pages(expected)
    assert customer_sync.resume_stalled(now=time.time() + 10 * customer_sync.STALL_SECONDS) == 0


def test_redelivered_page_is_a_duplicate_and_changes_nothing(corp_with_customers):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.platform import queues

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    first = drain_queue(world.settings.sync_queue)
    assert len(first) == 1 and customer_sync.handle_message(first[0]) == "advanced"
    page1 = drain_queue(world.settings.sync_queue)
    assert customer_sync.handle_message(page1[0]) == "advanced"
    before = sync_jobs.get(CORP_ID, job["job_id"])
    calls = len(world.sb.requests("externalcontact/batch/get_by_user"))

    # SQS delivers page 0 again: recognised from the job item, WeCom not called.
    assert customer_sync.handle_message(first[0]) == "duplicate"
    after = sync_jobs.get(CORP_ID, job["job_id"])
    assert after.next_page == before.next_page == 2 and after.progress == before.progress
    assert len(world.sb.requests("externalcontact/batch/get_by_user")) == calls
    # A page from the future (never sent) is ignored too.
    ahead = queues.SyncPageMessage(corp_id=CORP_ID, job_id=job["job_id"], kind="customers", cursor={"page": 9})
    assert customer_sync.handle_message(ahead.model_dump_json()) == "ahead"

    run_sync(world)
    assert_synced(expected, world.sb)
    done = sync_jobs.get(CORP_ID, job["job_id"])
    assert done.status == "done" and done.progress["relations"] == sum(len(o) for o in expected.values())
    # Once done, any late copy is stale.
    assert customer_sync.handle_message(page1[0]) == "stale"


def test_redelivered_last_applied_page_does_not_double_the_rest_of_the_run(corp_with_customers):
    """SQS redelivers the page just applied (its delete was lost): the rest of the run must still
    take one message per page. Today the duplicate re-sends the next page although it was sent,
    and that second copy does the same on the next page, to the end of the run."""
    from chalicelib.customers import sync as customer_sync

    world, expected = corp_with_customers
    world.call("POST", "/api/v1/customer-syncs")
    first = drain_queue(world.settings.sync_queue)
    assert customer_sync.handle_message(first[0]) == "advanced"
    assert customer_sync.handle_message(first[0]) == "duplicate"  # redelivered at once
    handled = run_sync(world)
    assert_synced(expected, world.sb)
    assert len(world.sb.requests("externalcontact/batch/get_by_user")) == expected_pages(expected) - 1
    assert handled == expected_pages(expected) - 1


def test_second_sync_while_one_runs_is_409(corp_with_customers):
    world, _ = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    status, body = world.call("POST", "/api/v1/customer-syncs")
    assert status == 409, body
    assert body["error"]["code"] == "sync_running" and body["error"]["details"] == {"job_id": job["job_id"]}
    run_sync(world)
    status, again = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202 and again["job_id"] != job["job_id"]


def test_unknown_job_is_404(world):
    status, body = world.call("GET", "/api/v1/customer-syncs/nosuchjob")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_frequency_limit_defers_the_page_and_the_sync_completes(corp_with_customers, monkeypatch):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    assert run_sync(world, stop_after=2) == 2
    world.sb.faults.add("errcode", path="externalcontact/batch/get_by_user", errcode=45009, count=1)

    bodies = drain_queue(world.settings.sync_queue)
    assert customer_sync.handle_message(bodies[0]) == "deferred"  # not a failure: no DLQ count
    waiting = sync_jobs.get(CORP_ID, job["job_id"])
    assert waiting.status == "running" and waiting.next_page == 2
    assert waiting.updated_at >= time.time() + 50  # the watchdog leaves the deferred page alone
    assert customer_sync.resume_stalled(now=time.time() + customer_sync.STALL_SECONDS) == 0
    # The retry is a new message delayed past the 60 s block.
    assert drain_queue(world.settings.sync_queue) == []
    skip_sqs_clock(monkeypatch, 62)
    retried = drain_queue(world.settings.sync_queue)
    assert len(retried) == 1 and '"attempt":1' in retried[0].replace(" ", "")
    assert customer_sync.handle_message(retried[0]) == "advanced"
    run_sync(world)

    assert_synced(expected, world.sb)
    done = world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")[1]
    assert done["status"] == "done" and done["progress"]["pages"] == expected_pages(expected)
    faulted = [r for r in world.sb.requests("externalcontact/batch/get_by_user") if r["fault"]]
    assert len(faulted) == 1 and faulted[0]["errcode"] == 45009


def test_a_long_running_sync_keeps_its_lock(corp_with_customers):
    """The lock is refreshed by every page, so a sync running longer than the stale limit is not
    joined by a second one; a sync that stopped moving frees it."""
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, _ = corp_with_customers
    job = customer_sync.start(CORP_ID, now=T0)
    for page in range(3):  # pages applied well after the stale limit (3 x 900 s)
        bodies = drain_queue(world.settings.sync_queue)
        assert customer_sync.handle_page(CORP_ID, job.job_id, page, now=T0 + 1000 * (page + 1)) == "advanced"
        assert len(bodies) == 1
    with pytest.raises(sync_jobs.JobRunning):
        customer_sync.start(CORP_ID, now=T0 + 3500)
    # ... until it stops moving for longer than the limit
    assert customer_sync.start(CORP_ID, now=T0 + 3000 + customer_sync.STALL_SECONDS * 3 + 1).job_id != job.job_id


def test_sync_does_not_revive_lost_relations_and_keeps_the_earliest_first_seen(corp_with_customers):
    from chalicelib.customers import items as customer_items

    world, expected = corp_with_customers
    shared = next(c for c, owners in expected.items() if len(owners) == 2)
    first_owner, second_owner = sorted(expected[shared], key=lambda s: expected[shared][s]["createtime"])
    # A callback recorded that the customer deleted one staff member (WeCom still lists the relation).
    world.sb.simulator.customer_deletes_staff(CORP_ID, shared, second_owner)
    world.pump()
    assert customer_items.get_relation(CORP_ID, shared, second_owner).status == "lost"

    world.call("POST", "/api/v1/customer-syncs")
    run_sync(world)
    assert customer_items.get_relation(CORP_ID, shared, second_owner).status == "lost"
    assert customer_items.get_relation(CORP_ID, shared, first_owner).status == "active"
    customer = next(i for i in customer_items.items_of_customer(CORP_ID, shared) if i["type"] == "customer")
    assert customer["first_seen_at"] == expected[shared][first_owner]["createtime"]


def test_a_page_that_never_completes_fails_the_job_after_the_watchdog_gives_up(corp_with_customers):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, _ = corp_with_customers
    job = customer_sync.start(CORP_ID, now=T0)
    now = T0
    for _ in range(customer_sync.MAX_STALLS):
        drain_queue(world.settings.sync_queue)  # the page message is lost every time
        now += customer_sync.STALL_SECONDS + 1
        assert customer_sync.resume_stalled(now=now) == 1
    now += customer_sync.STALL_SECONDS + 1
    assert customer_sync.resume_stalled(now=now) == 0
    failed = sync_jobs.get(CORP_ID, job.job_id)
    assert failed.status == "failed" and failed.error.code == "stalled" and "page 0" in failed.error.message
    assert customer_sync.start(CORP_ID, now=now + 1).job_id != job.job_id  # the lock is free again


def test_a_second_sync_of_unchanged_customers_writes_nothing(corp_with_customers):
    from bench.aws_requests import count_aws_requests
    from chalicelib.platform import aws

    world, expected = corp_with_customers
    world.call("POST", "/api/v1/customer-syncs")
    run_sync(world)
    world.call("POST", "/api/v1/customer-syncs")
    with count_aws_requests(aws.client("dynamodb")) as counts:
        run_sync(world)
    assert counts["dynamodb.BatchWriteItem"] == 0
    assert_synced(expected, world.sb)


def test_a_job_whose_lock_was_taken_over_is_failed_not_resent_forever(corp_with_customers):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, _ = corp_with_customers
    old = customer_sync.start(CORP_ID, now=T0)
    drain_queue(world.settings.sync_queue)  # its page is lost; it goes stale
    new = customer_sync.start(CORP_ID, now=T0 + customer_sync.STALL_SECONDS * 3 + 1)
    assert customer_sync.resume_stalled(now=T0 + customer_sync.STALL_SECONDS * 3 + 2) == 0
    superseded = sync_jobs.get(CORP_ID, old.job_id)
    assert superseded.status == "failed" and superseded.error.code == "superseded"
    assert sync_jobs.get(CORP_ID, new.job_id).status == "running"


# -- WeCom refusing: for good (fail the job now) or for a while (defer) ------------------------------
def assert_nothing_left_to_retry(world, monkeypatch) -> None:
    """No copy of the page is waiting (delayed or in flight), none went to the DLQ, and the
    watchdog has nothing to resend."""
    from chalicelib.customers import sync as customer_sync
    from chalicelib.platform import queues

    skip_sqs_clock(monkeypatch, queues.MAX_DELAY_SECONDS + 1)
    assert drain_queue(world.settings.sync_queue) == []
    assert drain_queue(queues.dlq_name(world.settings.sync_queue)) == []
    assert customer_sync.resume_stalled(now=time.time() + 10 * customer_sync.STALL_SECONDS) == 0


def wrong_secret(world) -> Callable[[], None]:
    """WeCom no longer knows the secret the corp was registered with (gettoken: 40001); returns
    the operator's fix."""
    app = world.sb.world.corp(CORP_ID).apps["contact"]
    right = app.secret
    app.secret = "reset-in-the-wecom-admin-console"
    return lambda: setattr(app, "secret", right)


def unknown_corp(world) -> Callable[[], None]:
    """WeCom does not know the corp id (gettoken: 40013)."""
    corp = world.sb.world.corps.pop(CORP_ID)
    return lambda: world.sb.world.corps.__setitem__(CORP_ID, corp)


@pytest.mark.parametrize(("misconfigure", "errcode"), [(wrong_secret, 40001), (unknown_corp, 40013)])
def test_wecom_refusing_the_credentials_fails_the_job_at_once_and_frees_the_lock(world, monkeypatch,
                                                                                 misconfigure, errcode):
    staff = sorted(world.sb.world.corp(CORP_ID).staff)
    expected = populate(world.sb, CORP_ID, staff, 20)  # straight into WeCom: no token fetched yet
    fix = misconfigure(world)

    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202, job
    assert run_sync(world) == 1  # the message is reported done (run_sync fails on a batch item failure)
    status, view = world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")
    assert status == 200, view
    assert view["status"] == "failed" and view["finished_at"], view
    error = view["error"]
    assert (error["code"], error["errcode"], error["api"]) == ("wecom_auth", errcode, "gettoken"), error
    assert str(errcode) in error["message"]
    assert_nothing_left_to_retry(world, monkeypatch)
    # WeCom was asked once: one gettoken, refused, and nothing after it
    assert [(r["api"], r["errcode"]) for r in world.sb.requests()] == [("gettoken", errcode)]

    # The lock is free: once the operator fixed the corp a new sync starts and completes.
    fix()
    status, again = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202, again
    run_sync(world)
    assert_synced(expected, world.sb)
    assert world.call("GET", f"/api/v1/customer-syncs/{again['job_id']}")[1]["status"] == "done"


@pytest.mark.parametrize(("path", "errcode", "code"), [
    ("externalcontact/get_follow_user_list", 48002, "wecom_auth"),  # API not granted to the app
    ("externalcontact/batch/get_by_user", 60020, "wecom_auth"),  # our IP not in the trusted list
    ("externalcontact/batch/get_by_user", 40003, "wecom_error"),  # a request WeCom refuses as such
])
def test_wecom_refusing_a_page_for_good_fails_the_job_at_once(corp_with_customers, monkeypatch, path, errcode,
                                                              code):
    from chalicelib.customers import sync_items as sync_jobs

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    applied = 0 if path.endswith("get_follow_user_list") else 2
    if applied:
        assert run_sync(world, stop_after=applied) == applied
    fault = world.sb.faults.add("errcode", path=path, errcode=errcode, count=None, rate=1.0)  # until removed

    assert run_sync(world) == 1
    failed = sync_jobs.get(CORP_ID, job["job_id"])
    assert (failed.status, failed.next_page, failed.progress["pages"]) == ("failed", applied, applied)
    assert (failed.error.code, failed.error.errcode, failed.error.api) == (code, errcode, path)
    assert failed.finished_at
    assert_nothing_left_to_retry(world, monkeypatch)
    assert len([r for r in world.sb.requests(path) if r["fault"]]) == 1  # asked once, not once per retry

    world.sb.faults.remove(fault.id)
    status, again = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202, again
    run_sync(world)
    assert_synced(expected, world.sb)
    assert sync_jobs.get(CORP_ID, again["job_id"]).status == "done"


def test_a_refused_page_of_a_superseded_job_leaves_the_new_job_its_lock(corp_with_customers):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, _ = corp_with_customers
    old = customer_sync.start(CORP_ID, now=T0)
    late = drain_queue(world.settings.sync_queue)  # its page is held up; the job goes stale
    later = T0 + customer_sync.STALL_SECONDS * 3 + 1
    new = customer_sync.start(CORP_ID, now=later)
    world.sb.faults.add("errcode", path="externalcontact/get_follow_user_list", errcode=60020)

    assert customer_sync.handle_message(late[0]) == "failed"
    failed = sync_jobs.get(CORP_ID, old.job_id)
    assert failed.status == "failed" and failed.error.errcode == 60020
    assert sync_jobs.get(CORP_ID, new.job_id).status == "running"
    with pytest.raises(sync_jobs.JobRunning):
        customer_sync.start(CORP_ID, now=later + 1)


def test_an_expired_token_is_refreshed_once_and_the_page_advances(corp_with_customers):
    from chalicelib.customers import sync as customer_sync

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    assert run_sync(world, stop_after=2) == 2
    tokens = len(world.sb.requests("gettoken"))
    world.sb.faults.add("errcode", path="externalcontact/batch/get_by_user", errcode=42001)

    bodies = drain_queue(world.settings.sync_queue)
    assert customer_sync.handle_message(bodies[0]) == "advanced"  # the client refreshed and retried
    assert len(world.sb.requests("gettoken")) == tokens + 1
    run_sync(world)
    assert_synced(expected, world.sb)
    assert world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")[1]["status"] == "done"


@pytest.mark.parametrize("fault", [{"kind": "errcode", "errcode": -1}, {"kind": "http", "status": 503},
                                   {"kind": "timeout", "execute": False}], ids=["busy", "http-503", "timeout"])
def test_wecom_failing_for_a_while_defers_the_page_and_keeps_the_lock(corp_with_customers, monkeypatch, fault):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.wecom.client import WeComClient

    monkeypatch.setattr(WeComClient, "_backoff", lambda self, attempt, floor=0.0: None)  # no real sleeps
    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    assert run_sync(world, stop_after=2) == 2
    # 4 calls: the client's first try and its 3 retries
    world.sb.faults.add(path="externalcontact/batch/get_by_user", count=4, **fault)

    bodies = drain_queue(world.settings.sync_queue)
    assert customer_sync.handle_message(bodies[0]) == "deferred"
    waiting = sync_jobs.get(CORP_ID, job["job_id"])
    assert (waiting.status, waiting.next_page, waiting.error) == ("running", 2, None)
    assert world.call("POST", "/api/v1/customer-syncs")[0] == 409  # still this job's
    skip_sqs_clock(monkeypatch, 10)
    run_sync(world)
    assert_synced(expected, world.sb)
    assert sync_jobs.get(CORP_ID, job["job_id"]).status == "done"


def test_jobs_failed_before_errors_were_structured_still_read():
    from chalicelib.customers.sync_items import SyncJob

    job = SyncJob.model_validate({"corp_id": CORP_ID, "job_id": "j1", "kind": "customers", "status": "failed",
                                  "started_at": T0, "updated_at": T0, "error": "page 3 did not complete"})
    assert (job.error.code, job.error.message, job.error.errcode) == ("failed", "page 3 did not complete", None)


def test_an_instance_with_a_stale_contact_secret_reloads_the_corp_before_failing_the_job(corp_with_customers):
    """The secret was corrected through another instance (PATCH /corps); this one still holds the
    old one, which WeCom refuses (40001): it reloads the corp and goes on instead of failing."""
    import dataclasses

    from chalicelib.corps import registry as corps
    from chalicelib.platform.sealing import CorpSecrets

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    right = corps.runtime(CORP_ID)
    wrong = CorpSecrets(callback_token=right.secrets.callback_token.get_secret_value(),
                        encoding_aes_key=right.secrets.encoding_aes_key.get_secret_value(),
                        contact_secret="the-old-wrong-secret")
    corps.forget(CORP_ID)
    corps._runtime[CORP_ID] = (time.monotonic() + corps.RUNTIME_TTL, dataclasses.replace(right, secrets=wrong))
    corps._loaded_at[CORP_ID] = time.monotonic() - corps.REFRESH_AFTER - 1

    assert run_sync(world) == expected_pages(expected)
    assert world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")[1]["status"] == "done"
    assert_synced(expected, world.sb)


# -- WeCom unavailable for long, cancelling, the request body -------------------------------------------
def test_default_deferrals_double_up_to_sqs_maximum_and_last_about_an_hour():
    from chalicelib.customers import sync as customer_sync
    from chalicelib.platform import queues

    delays = [customer_sync.defer_delay(a) for a in range(customer_sync.MAX_DEFERRALS)]
    assert delays[:4] == [5, 10, 20, 40] and max(delays) == delays[-1] == queues.MAX_DELAY_SECONDS
    assert 3600 <= sum(delays) <= 4500


def test_wecom_unavailable_for_long_backs_off_then_fails_the_job_and_frees_the_lock(corp_with_customers,
                                                                                       monkeypatch):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.platform import queues
    from chalicelib.wecom.client import WeComClient

    monkeypatch.setattr(WeComClient, "_backoff", lambda self, attempt, floor=0.0: None)  # no real sleeps
    monkeypatch.setattr(customer_sync, "MAX_DEFERRALS", 4)
    sent: list[int] = []  # the delays the page was re-sent with
    real_send = queues.send

    def send(spec, message, *, delay_seconds=0):
        sent.append(delay_seconds)
        real_send(spec, message, delay_seconds=delay_seconds)

    monkeypatch.setattr(queues, "send", send)
    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    assert run_sync(world, stop_after=2) == 2
    path = "externalcontact/batch/get_by_user"
    fault = world.sb.faults.add("http", path=path, status=502, count=None, rate=1.0)  # until removed

    sent.clear()
    for attempt in range(4):
        bodies = drain_queue(world.settings.sync_queue)
        assert len(bodies) == 1, attempt
        assert customer_sync.handle_message(bodies[0]) == "deferred"
        waiting = sync_jobs.get(CORP_ID, job["job_id"])
        assert (waiting.status, waiting.next_page, waiting.error) == ("running", 2, None)
        assert waiting.updated_at >= time.time() + customer_sync.defer_delay(attempt) - 2  # watchdog waits too
        assert drain_queue(world.settings.sync_queue) == []  # not before its delay
        skip_sqs_clock(monkeypatch, sent[-1] + 1)
    assert sent == [6, 11, 21, 41]  # 5, 10, 20, 40 s (+1), not a fixed ~5 s

    bodies = drain_queue(world.settings.sync_queue)
    assert len(bodies) == 1 and customer_sync.handle_message(bodies[0]) == "failed"  # the message is done
    status, view = world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")
    assert view["status"] == "failed" and view["finished_at"] and view["next_page"] == 2, view
    assert (view["error"]["code"], view["error"]["api"]) == ("wecom_unavailable", path), view["error"]
    assert "HTTP 502" in view["error"]["message"]
    assert_nothing_left_to_retry(world, monkeypatch)

    status, again = world.call("POST", "/api/v1/customer-syncs")  # the lock is free
    assert status == 202, again
    world.sb.faults.remove(fault.id)
    run_sync(world)
    assert_synced(expected, world.sb)
    assert sync_jobs.get(CORP_ID, again["job_id"]).status == "done"


def test_cancel_ends_a_running_sync_and_its_in_flight_page_is_ignored(corp_with_customers, monkeypatch):
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, expected = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert status == 202
    assert run_sync(world, stop_after=2) == 2
    in_flight = drain_queue(world.settings.sync_queue)
    assert len(in_flight) == 1
    calls = len(world.sb.requests("externalcontact/batch/get_by_user"))

    status, view = world.call("DELETE", f"/api/v1/customer-syncs/{job['job_id']}")
    assert status == 200, view
    assert view["status"] == "failed" and view["finished_at"] and view["error"]["code"] == "cancelled", view
    assert "staff" not in view["state"]
    before = sync_jobs.get(CORP_ID, job["job_id"])

    # The page message that was in flight arrives: it neither advances nor revives the job.
    assert customer_sync.handle_message(in_flight[0]) == "stale"
    assert sync_jobs.get(CORP_ID, job["job_id"]) == before
    assert len(world.sb.requests("externalcontact/batch/get_by_user")) == calls
    assert_nothing_left_to_retry(world, monkeypatch)

    status, again = world.call("POST", "/api/v1/customer-syncs")  # the lock is free
    assert status == 202, again
    run_sync(world)
    assert_synced(expected, world.sb)
    assert sync_jobs.get(CORP_ID, again["job_id"]).status == "done"
    assert sync_jobs.get(CORP_ID, job["job_id"]) == before


def test_cancel_during_a_page_keeps_that_page_from_advancing_the_job(corp_with_customers, monkeypatch):
    from chalicelib.customers import items as customer_items
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs

    world, _ = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    assert run_sync(world, stop_after=2) == 2
    real_put = customer_items.put_synced

    def cancelled_meanwhile(*args, **kwargs):
        assert world.call("DELETE", f"/api/v1/customer-syncs/{job['job_id']}")[0] == 200
        return real_put(*args, **kwargs)

    monkeypatch.setattr(customer_items, "put_synced", cancelled_meanwhile)
    bodies = drain_queue(world.settings.sync_queue)
    assert customer_sync.handle_message(bodies[0]) == "duplicate"  # its advance was refused
    ended = sync_jobs.get(CORP_ID, job["job_id"])
    assert (ended.status, ended.next_page, ended.error.code) == ("failed", 2, "cancelled")
    assert drain_queue(world.settings.sync_queue) == []  # no next page was sent


def test_cancelling_a_finished_sync_is_409_and_an_unknown_one_404(corp_with_customers):
    world, _ = corp_with_customers
    status, job = world.call("POST", "/api/v1/customer-syncs")
    run_sync(world)
    status, body = world.call("DELETE", f"/api/v1/customer-syncs/{job['job_id']}")
    assert status == 409, body
    assert body["error"]["code"] == "sync_not_running"
    assert body["error"]["details"] == {"job_id": job["job_id"], "status": "done"}
    assert world.call("GET", f"/api/v1/customer-syncs/{job['job_id']}")[1]["status"] == "done"  # unchanged

    status, second = world.call("POST", "/api/v1/customer-syncs")
    assert world.call("DELETE", f"/api/v1/customer-syncs/{second['job_id']}")[0] == 200
    status, body = world.call("DELETE", f"/api/v1/customer-syncs/{second['job_id']}")  # cancelled twice
    assert status == 409 and body["error"]["details"]["status"] == "failed", body

    status, body = world.call("DELETE", "/api/v1/customer-syncs/nosuchjob")
    assert status == 404 and body["error"]["code"] == "not_found", body


def test_start_refuses_unknown_fields_and_an_empty_body_means_the_defaults(world):
    from chalicelib.customers import sync_items as sync_jobs

    status, body = world.call("POST", "/api/v1/customer-syncs", {"kind": "tags"})
    assert status == 400 and body["error"]["code"] == "validation_error", body
    assert "kind" in str(body["error"]["details"])
    status, body = world.call("POST", "/api/v1/customer-syncs", ["customers"])
    assert status == 400 and body["error"]["code"] == "validation_error", body
    status, job = world.call("POST", "/api/v1/customer-syncs", {})  # nothing was started by the 400s
    assert status == 202, job
    assert world.call("DELETE", f"/api/v1/customer-syncs/{job['job_id']}")[0] == 200
    status, job = world.call("POST", "/api/v1/customer-syncs")  # no body at all
    assert status == 202 and sync_jobs.get(CORP_ID, job["job_id"]).kind == "customers", job
