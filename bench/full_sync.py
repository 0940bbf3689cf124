"""Full customer sync of a big corp, killed part-way and resumed, on local AWS (moto server).

    python bench/full_sync.py [--customers 100000] [--staff 50] [--shared 0.1] [--kill-at 0.3]
                              [--kill-after PAGES] [--no-kill] [--json]

What runs is the product's own code, as Lambda would run it: the sync is started with
``customer_sync.start`` (what POST /api/v1/customer-syncs does), then this process plays SQS's
event source mapping for the sync queue: it receives one message at a time from moto's server and
calls ``app.app.handler_map["on_sync"]`` (batch size 1, as deployed), deleting the message unless
the handler reports it as a batch item failure. WeCom is the sandbox, in-process, through
``corps.use_wecom_transport(httpx.MockTransport(sb.handle))``.

The corp has ``--customers`` customers across ``--staff`` staff members, a ``--shared`` fraction of
them also a contact of a second staff member (so relations = customers x (1 + shared)); some
relations carry a channel state and tags. They are put straight into the sandbox's world
(``Customer`` / ``Relation`` objects), not simulated one add at a time.

Killed run (on by default, at 30 % of the pages; ``--kill-after N`` pages, ``--no-kill``): the
handler of page N+1 dies after its DynamoDB writes and before the job advances (``advance``
raises, as a Lambda killed at that point would leave it); its message is left un-deleted (in
flight, back after the 300 s visibility timeout). Then a "new instance" (runtime caches dropped)
runs the minute tick's watchdog, ``customer_sync.resume_stalled(now=now + STALL_SECONDS + 1)``,
which re-sends the job's next page, and the run carries on to the end.

Checks at the end: the job is done; a BatchGetItem (through moto's server) of every sandbox
customer's and relation's key finds each exactly once; and the corp holds no other `CUSTOMER#`
item (counted in moto's store: moto's Query re-sorts the whole partition on each call, minutes per
call at 200k items, so a paginated Query is not usable at this size).

Printed: wall time of the sync, pages, messages handled, customers/s, AWS requests per page by
operation (bench/aws_requests.py: the product's requests inside the handler, not this driver's
SQS receive/delete), and where the time went (AWS round trips to moto, the sandbox, the rest).

Two local artefacts are taken out of the measurement, so that the figure is the product's:
- the sandbox answers ``batch/get_by_user`` by scanning every relation of the corp for each staff
  member asked (``Corp.relations_of_staff``: O(all relations x staff asked) per call); the bench
  gives this corp a per-staff index instead (same answers, built once: nothing changes in WeCom
  during the run). The sandbox's remaining time is reported apart.
- moto's TransactWriteItems deep-copies the whole table before every transaction (its rollback),
  O(table) per page and so quadratic over a run (20k customers: 102 s to reach half the pages
  with it, 26 s for all of them without); ``cheap_moto_transactions`` snapshots only the items
  the transaction touches. ``--moto-table-copy`` keeps moto's own behaviour.

If the queue is empty while the job still runs and no message is delayed (a page lost other than
by the planned kill), the driver runs the watchdog as the minute tick would and reports it
("unplanned stalls"); a deferred page (45009) is waited for.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import aws_requests, deployment  # noqa: E402  (stdlib only; install() before any botocore client)
from bench.deployment import AES_KEY, SECRET, TOKEN  # noqa: E402

CORP_ID = "wwbenchfullsync01"
T0 = 1_600_000_000


# -- local AWS and the corp ------------------------------------------------------------------------
def start_local_aws() -> Any:
    """moto's server on a free port, and the bench deployment on it (bench/deployment.py): table,
    queues, KMS key; the corp registered as POST /api/v1/corps does."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    deployment.use_env()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    deployment.create(CORP_ID)
    return server


# -- the sandbox's WeCom, populated directly -----------------------------------------------------------
def populate(sb: Any, customers: int, staff: int, shared: float) -> tuple[int, int]:
    """`customers` customers round-robin over `staff` staff members; a `shared` fraction also
    followed by the next staff member. Returns (customers, relations)."""
    from sandbox.state import Customer, Relation

    corp = sb.world.corp(CORP_ID)
    staff_ids = [f"staff{i:03d}" for i in range(staff)]
    every = round(1 / shared) if shared > 0 else 0
    tags = [f"et{i:04d}" for i in range(20)]
    relations = 0
    with sb.world.lock:
        for userid in staff_ids:
            sb.add_staff(CORP_ID, userid)
        for n in range(customers):
            ext = f"wm{n:030d}"
            corp.customers[ext] = Customer(ext, f"Customer {n}", type=1, gender=n % 3,
                                           unionid=f"o{n:027d}")
            owner = staff_ids[n % staff]
            owners = [owner, staff_ids[(n + 1) % staff]] if every and n % every == 0 and staff > 1 else [owner]
            for k, userid in enumerate(owners):
                corp.relations[(ext, userid)] = Relation(
                    userid, ext, T0 + n + k, state=f"store-{n % 50}" if n % 3 == 0 else None,
                    tags=[tags[n % 20], tags[(n * 7) % 20]] if n % 2 == 0 else [])
                relations += 1
    return customers, relations


def index_relations_of_staff(corp: Any) -> None:
    """Answer `relations_of_staff` from a per-staff index (the sandbox's own scans every relation)."""
    by_staff: dict[str, list[Any]] = {}
    for rel in corp.relations.values():
        by_staff.setdefault(rel.userid, []).append(rel)
    for rels in by_staff.values():
        rels.sort(key=lambda r: r.createtime)

    def relations_of_staff(userid: str, statuses: tuple[str, ...] = ("active", "lost")) -> list[Any]:
        return [r for r in by_staff.get(userid, ()) if r.status in statuses]

    corp.relations_of_staff = relations_of_staff  # instance attribute over the dataclass method


# -- playing SQS's event source mapping ---------------------------------------------------------------
class Driver:
    def __init__(self, app: Any) -> None:
        from chalicelib.customers import sync as customer_sync
        from chalicelib.platform import aws, queues
        from chalicelib.platform.settings import get_settings

        self.handler = app.handler_map["on_sync"]
        self.outcomes: Counter = Counter()  # what customer_sync.handle_message returned / raised
        self.page_errors: Counter = Counter()  # exceptions out of handle_page (deferred or failed)
        handle_message, handle_page = customer_sync.handle_message, customer_sync.handle_page

        def recording_handle_message(body: str) -> str:
            try:
                outcome = handle_message(body)
            except Exception as exc:
                self.outcomes[f"raised {type(exc).__name__}"] += 1
                raise
            self.outcomes[outcome] += 1
            return outcome

        def recording_handle_page(*a: Any, **k: Any) -> str:
            try:
                return handle_page(*a, **k)
            except Exception as exc:
                self.page_errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                raise

        customer_sync.handle_message = recording_handle_message  # app.on_sync looks it up per call
        customer_sync.handle_page = recording_handle_page
        self.sqs = aws.client("sqs")
        self.url = queues.queue_url(get_settings().sync_queue)
        self.product = aws_requests.AwsRequests()  # requests made inside the handler
        self.handled = 0
        self.failures = 0
        self.handler_s = 0.0
        self.watchdog_resumes = 0  # stalls found by the driver (not the planned kill)

    def receive(self) -> dict[str, Any] | None:
        msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages", [])
        return msgs[0] if msgs else None

    def invoke(self, msg: dict[str, Any]) -> bool:
        """One Lambda invocation for one message; deletes it unless reported as failed."""
        event = {"Records": [{
            "messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"], "body": msg["Body"],
            "attributes": {}, "messageAttributes": {}, "md5OfBody": msg.get("MD5OfBody", ""),
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:scrm-bench-sync",
            "awsRegion": "us-east-1"}]}
        start = time.perf_counter()
        with aws_requests.count_aws_requests() as requests:
            result = self.handler(event, None)
        self.handler_s += time.perf_counter() - start
        self.product.update(requests)
        self.product.http_ms += requests.http_ms
        self.handled += 1
        if result.get("batchItemFailures"):
            self.failures += 1
            return False
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msg["ReceiptHandle"])
        return True

    def run(self, job: Any, *, until_page: int | None = None) -> None:
        """Handle messages until the job is done (or its next page reaches `until_page`). An empty
        queue while the job runs and nothing is delayed is a stalled job: play the minute tick's
        watchdog, as production would 5 minutes later (counted in `watchdog_resumes`)."""
        from chalicelib.customers import sync as customer_sync
        from chalicelib.customers import sync_items as sync_jobs

        while True:
            if until_page is not None and sync_jobs.get(job.corp_id, job.job_id).next_page >= until_page:
                return
            msg = self.receive()
            if msg is not None:
                self.invoke(msg)
                continue
            if self._waiting():
                time.sleep(0.5)
                continue
            if until_page is not None or sync_jobs.get(job.corp_id, job.job_id).status != "running":
                return
            if self.watchdog_resumes >= 5:
                raise RuntimeError("the job keeps stalling")
            self.watchdog_resumes += customer_sync.resume_stalled(
                now=time.time() + customer_sync.STALL_SECONDS + 1)

    def _waiting(self) -> bool:
        """Messages delayed (a deferred page) or in flight that will come back."""
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)) > 0


def count_synced(world: Any) -> tuple[Counter, Counter, int]:
    """Check the table against the sandbox: BatchGetItem (through moto's server, 100 keys a call)
    of every sandbox customer's and relation's key, counting the items found by id; then the
    number of `CUSTOMER#` items of the corp in moto's store (the server runs in this process), so
    an item under any other key would show as extra. A paginated Query would do that last count
    through the API, but moto's Query sorts the whole partition on every call (minutes per call
    at 200k items), so the count reads moto's store directly.
    Returns (customer ids found, relation keys found, CUSTOMER# items in the partition)."""
    import boto3
    from botocore.config import Config
    from moto.backends import get_backend

    from chalicelib.platform.settings import get_settings
    from chalicelib.store import keys

    table = get_settings().table_name
    ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                       config=Config(read_timeout=300, retries={"max_attempts": 3}))
    wanted = [keys.customer(CORP_ID, c) for c in world.customers] + [
        keys.relation(CORP_ID, c, s) for c, s in world.relations]
    customers: Counter = Counter()
    relations: Counter = Counter()
    for i in range(0, len(wanted), 100):
        pending = [{"PK": {"S": k["PK"]}, "SK": {"S": k["SK"]}} for k in wanted[i:i + 100]]
        while pending:
            resp = ddb.batch_get_item(RequestItems={table: {
                "Keys": pending, "ProjectionExpression": "#t, customer_id, staff_id",
                "ExpressionAttributeNames": {"#t": "type"}}})
            for item in resp["Responses"].get(table, []):
                if item["type"]["S"] == "customer":
                    customers[item["customer_id"]["S"]] += 1
                elif item["type"]["S"] == "relation":
                    relations[(item["customer_id"]["S"], item["staff_id"]["S"])] += 1
            pending = resp.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
    store = get_backend("dynamodb")["123456789012"]["us-east-1"].tables[table]
    in_store = 0
    for hash_key, by_range in store.items.items():
        if hash_key.value == keys.corp_partition(CORP_ID):
            in_store = sum(1 for r in by_range if r.value.startswith("CUSTOMER#"))
    return customers, relations, in_store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--staff", type=int, default=50)
    parser.add_argument("--shared", type=float, default=0.1,
                        help="fraction of customers who are also a contact of a second staff member")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="kill the run after this many pages (default: --kill-at of them)")
    parser.add_argument("--kill-at", type=float, default=0.3)
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--moto-table-copy", action="store_true",
                        help="keep moto's whole-table copy per TransactWriteItems (quadratic run time)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    aws_requests.install()  # before any botocore client exists
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("chalicelib.platform.consumer").setLevel(logging.CRITICAL)  # the killed page's traceback

    if not args.moto_table_copy:
        from infra import moto_fixes

        moto_fixes.cheap_moto_transactions()
    server = start_local_aws()
    try:
        return run(args)
    finally:
        server.stop()


def run(args: argparse.Namespace) -> int:
    import httpx

    import app as app_module
    from chalicelib.corps import registry as corps
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.platform import caches
    from sandbox import Sandbox

    sb = Sandbox()
    sb.register_corp(CORP_ID, name="Bench Brand", secrets={"contact": SECRET}, callback_token=TOKEN,
                     encoding_aes_key=AES_KEY)
    t = time.perf_counter()
    n_customers, n_relations = populate(sb, args.customers, args.staff, args.shared)
    index_relations_of_staff(sb.world.corp(CORP_ID))
    populate_s = time.perf_counter() - t
    pages = 1 + -(-n_relations // customer_sync.CONTACTS_PER_CALL) * -(-args.staff // customer_sync.STAFF_PER_CALL)
    kill_after = None if args.no_kill else (args.kill_after if args.kill_after is not None
                                            else max(1, int(pages * args.kill_at)))
    print(f"sandbox: {n_customers:,} customers, {n_relations:,} relations, {args.staff} staff "
          f"(populated in {populate_s:.1f} s); expected pages: {pages:,}", flush=True)

    sandbox_s = [0.0]

    def timed_handle(request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            return sb.handle(request)
        finally:
            sandbox_s[0] += time.perf_counter() - start

    corps.use_wecom_transport(httpx.MockTransport(timed_handle))
    driver = Driver(app_module.app)

    t_start = time.perf_counter()
    with aws_requests.count_aws_requests() as start_requests:
        job = customer_sync.start(CORP_ID)  # what POST /api/v1/customer-syncs does
    killed_page = orphan = None
    if kill_after is not None and kill_after < pages:
        driver.run(job, until_page=kill_after)
        # The next page dies after its writes, before the job advances; its message stays in flight.
        real_advance = sync_jobs.advance

        def killed(*a: Any, **k: Any) -> None:
            raise RuntimeError("Lambda killed (bench)")

        sync_jobs.advance = killed
        try:
            orphan = driver.receive()
            assert orphan is not None, "no message to kill"
            assert driver.invoke(orphan) is False
        finally:
            sync_jobs.advance = real_advance
        killed_page = json.loads(orphan["Body"])["cursor"]["page"]
        t_killed = time.perf_counter()
        stuck = sync_jobs.get(CORP_ID, job.job_id)
        assert stuck.status == "running" and stuck.next_page == killed_page, stuck
        assert driver.receive() is None  # nothing left to move the job: it is stalled
        # A new Lambda instance: nothing cached from the killed one.
        caches.clear_all()
        corps.use_wecom_transport(httpx.MockTransport(timed_handle))
        with aws_requests.count_aws_requests() as resume_requests:
            resumed = customer_sync.resume_stalled(now=time.time() + customer_sync.STALL_SECONDS + 1)
        assert resumed == 1, resumed
        print(f"killed at page {killed_page:,} after {t_killed - t_start:.1f} s; resume_stalled re-sent "
              f"page {stuck.next_page:,} ({resume_requests.total} AWS requests)", flush=True)
    driver.run(job)
    sync_s = time.perf_counter() - t_start

    done = sync_jobs.get(CORP_ID, job.job_id)
    wecom_calls = Counter(r["api"] for r in sb.requests(corp_id=CORP_ID))
    per_page = {op: n / done.next_page for op, n in sorted(driver.product.items())}
    figures: dict[str, Any] = {
        "customers": n_customers, "relations": n_relations, "staff": args.staff,
        "pages": done.next_page, "messages_handled": driver.handled, "failed_invocations": driver.failures,
        "killed_at_page": killed_page, "sync_seconds": round(sync_s, 2),
        "customers_per_second": round(n_customers / sync_s, 1),
        "pages_per_second": round(done.next_page / sync_s, 2),
        "aws_requests_per_page": round(driver.product.total / done.next_page, 2),
        "aws_requests_per_page_by_operation": {k: round(v, 2) for k, v in per_page.items()},
        "aws_requests_start": start_requests.total,
        "handler_ms_per_message": round(driver.handler_s * 1e3 / max(1, driver.handled), 1),
        "aws_roundtrip_ms_per_message": round(driver.product.http_ms / max(1, driver.handled), 1),
        "sandbox_ms_per_message": round(sandbox_s[0] * 1e3 / max(1, driver.handled), 1),
        "watchdog_resumes": driver.watchdog_resumes, "outcomes": dict(driver.outcomes),
        "page_errors": dict(driver.page_errors), "wecom_calls": dict(wecom_calls),
        "progress": done.progress, "job_status": done.status,
    }
    print(f"\nfull sync: {n_customers:,} customers / {n_relations:,} relations / {args.staff} staff"
          + (f", killed at page {killed_page:,} and resumed" if killed_page is not None else ""))
    print(f"  time           {sync_s:,.1f} s  ({n_customers / sync_s:,.0f} customers/s, "
          f"{done.next_page / sync_s:,.1f} pages/s)")
    print(f"  pages          {done.next_page:,} (job), {driver.handled:,} messages handled, "
          f"{driver.failures} failed (the killed one)")
    print(f"  per message    handler {figures['handler_ms_per_message']} ms = AWS round trips "
          f"{figures['aws_roundtrip_ms_per_message']} ms (moto server) + sandbox "
          f"{figures['sandbox_ms_per_message']} ms + the rest")
    print(f"  AWS requests   {driver.product.total / done.next_page:.2f} per page (in the handler):")
    for op, n in sorted(driver.product.items(), key=lambda kv: -kv[1]):
        print(f"                 {n / done.next_page:6.2f}  {op}  ({n:,})")
    print(f"  outcomes       {dict(driver.outcomes)}; unplanned stalls resumed by the watchdog: "
          f"{driver.watchdog_resumes}")
    if driver.page_errors:
        print(f"  page errors    {dict(driver.page_errors)}")
    print(f"  WeCom calls    {dict(wecom_calls)}")
    print(f"  job            status={done.status} progress={done.progress}", flush=True)

    world = sb.world.corp(CORP_ID)
    t = time.perf_counter()
    customers, relations, in_store = count_synced(world)
    verify_s = time.perf_counter() - t
    dup_customers = sum(1 for c in customers.values() if c > 1)
    ok = (done.status == "done" and set(customers) == set(world.customers) and dup_customers == 0
          and set(relations) == set(world.relations) and all(c == 1 for c in relations.values())
          and in_store == len(world.customers) + len(world.relations))
    figures.update({
        "customer_items": sum(customers.values()), "distinct_customers": len(customers),
        "duplicate_customers": dup_customers, "relation_items": sum(relations.values()),
        "sandbox_customers": len(world.customers), "sandbox_relations": len(world.relations),
        "customer_prefix_items_in_table": in_store, "verify_seconds": round(verify_s, 1), "ok": ok,
    })
    print(f"  table          {sum(customers.values()):,} customer items ({len(customers):,} distinct, "
          f"{dup_customers} duplicated; sandbox has {len(world.customers):,}), "
          f"{sum(relations.values()):,} relation items (sandbox {len(world.relations):,}); "
          f"{in_store:,} CUSTOMER# items in all [{verify_s:.1f} s]")
    print(f"  result         {'OK: every customer present exactly once' if ok else 'MISMATCH'}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
