"""One broadcast to N customers across 200 staff: planning (cap claims, parts, chunks) and fan-out
(one add_msg_template per chunk) through the sends queue, measured.

    python bench/broadcast.py [--recipients 10000] [--staff 200] [--shared 0.1]
                              [--stack local|fake] [--json]

What runs is the product's code as Lambda runs it: the segment (all active relations) is saved with
``segments.service.create``, the broadcast created with ``broadcasts.service.create`` (what POST
/api/v1/broadcasts does; "now": its first plan step is queued at once), then this process plays
SQS's event source mapping for the sends queue: it receives up to 10 messages, hands them to
``app.app.handler_map["on_sends"]`` in batches of 5 (as deployed) and deletes those not reported as
failed, until the queue is empty and the broadcast is ``sent``.

Stacks:
- ``local``: moto's server in a child process (infra/local_stack.MotoProcess, with
  infra/moto_fixes) and the WeCom sandbox over HTTP on a thread (sandbox.serve): N = 10k, 100k.
- ``fake``:  DynamoDB and SQS answered in-process by bench/fake_aws.py (KMS on moto's mock_aws),
  the sandbox in-process (httpx.MockTransport): N = 1M (moto is too slow there: ~12 ms per
  UpdateItem and a Query that re-sorts the partition, see docs/performance.md).
WeCom is the sandbox on both (its add_msg_template checks every recipient's relation), with one
local artefact removed: ``Corp.relations_of_customer`` scans every relation of the corp per
recipient; the bench gives the corp a per-customer index (same answers; nothing changes in WeCom
during the run).

Seeding: N customers, each with one active relation to a staff member, a ``--shared`` fraction also
with an older active relation to another one (the newest relation decides the sender); customers
go to staff by weight 1/(i+1) (a few staff hold many customers, so some senders need several calls).
The same customers are put into the sandbox (Customer / Relation objects) and into the table as
the customers package writes relation items (``customers.items._synced_relation``), directly:
BatchWriteItem on the local stack, unbilled inserts on the fake.

Printed: WeCom add_msg_template calls made vs the minimum (sum over senders of ceil(n / 10,000)),
whether every customer got the message exactly once from its sender (the sandbox's tasks), the
product's AWS requests per recipient by operation (create + every sends handler; the event source
mapping's ReceiveMessage / DeleteMessageBatch apart), SQS requests per recipient, DynamoDB write and
read units per recipient (fake: metered as on-demand bills them; local: not measured, moto does
not say), wall time and recipients/s from create to ``sent``, and the planner's peak memory: the
tracemalloc peak above the start of the handler, over the first plan step and the chunking step
(on the fake it includes the fake table's storage of that step's writes; on the local stack the
table is in moto's process).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import aws_requests, deployment  # noqa: E402  (stdlib only; install() before any botocore client)
from bench.deployment import SECRET  # noqa: E402

CORP_ID = "wwbenchbroadcast1"
T0 = 1_600_000_000
PER_CALL = 10_000  # add_msg_template's external_userid limit
TRACED = ("plan0", "chunk")  # messages whose memory is traced


# -- the stacks ------------------------------------------------------------------------------------------------
class Stack:
    """AWS + WeCom for one run. `meter` (fake only) bills what the product does."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fake: Any = None
        self.skipped = 0.0  # seconds the fake's SQS clock was moved on (deferred messages)
        self._closers: list[Any] = []

    def start(self, sb: Any) -> None:
        import httpx

        deployment.use_env()
        from chalicelib.corps import registry
        from chalicelib.platform import aws

        if self.kind == "local":
            from infra import moto_fixes
            from infra.local_stack import MotoProcess, free_port
            from sandbox import serve

            moto_fixes.apply()
            moto = MotoProcess("127.0.0.1", free_port())
            moto.start()
            self._closers.append(moto.stop)
            os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{moto.port}"
            aws.use_clients(_patient_client)  # moto's Query re-sorts the partition: seconds at 100k
            self._closers.append(lambda: aws.use_clients(None))
            server = serve(0, sandbox=sb)
            self._closers.append(server.shutdown)
            os.environ["WECOM_API_BASE"] = f"{server.url}/cgi-bin"
        else:
            from moto import mock_aws

            from bench.fake_aws import FakeAWS

            os.environ.pop("AWS_ENDPOINT_URL", None)
            mock = mock_aws()
            mock.start()
            self._closers.append(mock.stop)
            self.fake = FakeAWS(clock=lambda: time.time() + self.skipped)
            aws.use_clients(self.fake.client)
            self._closers.append(lambda: aws.use_clients(None))
            registry.use_wecom_transport(httpx.MockTransport(sb.handle))
            self._closers.append(lambda: registry.use_wecom_transport(None))
        deployment.create(CORP_ID)

    def put_items(self, items: list[dict[str, Any]]) -> None:
        from chalicelib.platform.settings import get_settings
        from chalicelib.store import get_table

        if self.fake is not None:
            name = get_settings().table_name
            for item in items:  # flat items of str / int / set of str: the wire shape without boto3's serializer
                self.fake.dynamodb.put_raw(name, {k: {"S": v} if isinstance(v, str) else {"SS": sorted(v)}
                                                  if isinstance(v, set) else {"N": str(v)}
                                                  for k, v in item.items() if v is not None})
        else:
            get_table().batch_put(items)

    def stop(self) -> None:
        for close in reversed(self._closers):
            close()


def _patient_client(service: str) -> Any:
    """boto3 clients as chalicelib.platform.aws builds them, with a read timeout for moto's server
    (its Query sorts the whole partition per call: over the product's 5 s on a busy machine)."""
    from botocore.config import Config

    from chalicelib.platform import aws
    from chalicelib.platform.settings import get_settings

    return aws._session().client(service, endpoint_url=get_settings().aws_endpoint_url, config=Config(
        retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=300))


# -- the corp: staff, customers, relations ----------------------------------------------------------------------
def staff_ids(n: int) -> list[str]:
    return [f"staff{i:03d}" for i in range(n)]


def assignment(recipients: int, staff: int) -> list[int]:
    """How many customers each staff member is the sender of: weights 1/(i+1), summing to N."""
    weights = [1 / (i + 1) for i in range(staff)]
    total = sum(weights)
    counts = [int(recipients * w / total) for w in weights]
    for i in range(recipients - sum(counts)):
        counts[i % staff] += 1
    return counts


def seed(stack: Stack, sb: Any, recipients: int, staff: int, shared: float) -> dict[str, str]:
    """Customers and relations in the sandbox and in the table; returns customer -> expected sender."""
    from chalicelib.customers import items as cs
    from sandbox.state import Customer, Relation

    corp = sb.world.corp(CORP_ID)
    ids = staff_ids(staff)
    every = round(1 / shared) if shared > 0 else 0
    expected: dict[str, str] = {}
    by_customer: dict[str, list[Any]] = {}
    batch: list[dict[str, Any]] = []
    n = 0
    for s, count in enumerate(assignment(recipients, staff)):
        for _ in range(count):
            ext = f"wm{n:030d}"
            corp.customers[ext] = Customer(ext, f"Customer {n}")
            rels = [(ids[s], T0 + 2 * n + 1)]  # the newest relation: the sender
            if every and n % every == 0 and staff > 1:
                rels.append((ids[(s + 1) % staff], T0 + 2 * n))  # an older one, with another staff member
            for userid, added in rels:
                rel = Relation(userid, ext, added)
                corp.relations[(ext, userid)] = rel
                by_customer.setdefault(ext, []).append(rel)
                batch.append(cs._synced_relation(CORP_ID, cs.RelationItem(
                    customer_id=ext, staff_id=userid, status="active", added_at=added, last_event_at=added),
                    {}, read_at=added))
            expected[ext] = ids[s]
            n += 1
            if len(batch) >= 5000:
                stack.put_items(batch)
                batch = []
    stack.put_items(batch)

    def relations_of_customer(ext: str, statuses: tuple[str, ...] = ("active", "lost")) -> list[Any]:
        return [r for r in by_customer.get(ext, ()) if r.status in statuses]

    corp.relations_of_customer = relations_of_customer  # instance attribute over the dataclass method
    return expected


# -- playing the sends queue's event source mapping ------------------------------------------------------------------
class Driver:
    def __init__(self, stack: Stack) -> None:
        import app as app_module
        from chalicelib.platform import aws, queues
        from chalicelib.platform.settings import get_settings

        self.stack = stack
        self.handler = app_module.app.handler_map["on_sends"]
        self.sqs = aws.client("sqs")
        self.url = queues.queue_url(get_settings().sends_queue)
        self.product = aws_requests.AwsRequests()  # local: the product's requests (botocore hooks)
        self.esm = Counter()  # the event source mapping's own SQS requests
        self.kinds: Counter = Counter()
        self.failures = 0
        self.peaks: dict[str, int] = {}
        self.handler_s = 0.0

    def invoke(self, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:scrm-bench-sends", "awsRegion": "us-east-1"}
            for m in msgs]}
        kinds = [json.loads(m["Body"])["kind"] for m in msgs]
        label = next((k for k in (f"plan{json.loads(m['Body']).get('step')}" if k == "plan" else k
                                  for m, k in zip(msgs, kinds, strict=True)) if k in TRACED), None)
        if label and label not in self.peaks:
            tracemalloc.start()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        if self.stack.fake is None:
            with aws_requests.count_aws_requests() as requests:
                result = self.handler(event, None)
            self.product.update(requests)
        else:
            result = self.handler(event, None)
        self.handler_s += time.perf_counter() - start
        if label and label not in self.peaks:
            self.peaks[label] = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
        self.kinds.update(kinds)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        self.failures += len(failed)
        return [m for m in msgs if m["MessageId"] not in failed]

    def receive(self) -> list[dict[str, Any]]:
        meter = self.stack.fake.meter if self.stack.fake else None
        before = meter.snapshot() if meter else None
        msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
        self.esm["sqs.ReceiveMessage"] += 1
        if meter:
            _unbill(meter, before)
        return msgs

    def delete(self, msgs: list[dict[str, Any]]) -> None:
        if not msgs:
            return
        meter = self.stack.fake.meter if self.stack.fake else None
        before = meter.snapshot() if meter else None
        self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        self.esm["sqs.DeleteMessageBatch"] += 1
        if meter:
            _unbill(meter, before)

    def run(self, broadcast_id: str, *, timeout: float) -> str:
        from chalicelib.broadcasts import items as bitems
        from chalicelib.platform import queues
        from chalicelib.platform.settings import get_settings

        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.receive()
            if msgs:
                for i in range(0, len(msgs), 5):  # batch size 5, as deployed
                    self.delete(self.invoke(msgs[i:i + 5]))
                continue
            b = bitems.get(CORP_ID, broadcast_id)
            if b.status in ("sent", "failed", "cancelled"):
                return b.status
            if self.stack.fake is not None and not queues.depth(get_settings().sends_queue).empty:
                self.stack.skipped += queues.MAX_DELAY_SECONDS + 1  # a deferred message: skip its delay
            else:
                time.sleep(0.2)
        raise RuntimeError(f"the broadcast did not finish within {timeout:.0f} s")


def _unbill(meter: Any, before: dict[str, Any]) -> None:
    """Take the driver's own request back out of the product's meter (it is the event source's)."""
    meter.sqs_requests = before["sqs_requests"]
    meter.requests = Counter(before["requests"])


# -- one run ------------------------------------------------------------------------------------------------------
def run(recipients: int, *, staff: int = 200, shared: float = 0.1, stack_kind: str = "fake",
        timeout: float = 7200.0, quiet: bool = False) -> dict[str, Any]:
    if stack_kind == "local":
        aws_requests.install()
    from sandbox import Clock, Sandbox

    sb = Sandbox(clock=Clock())
    sb.register_corp(CORP_ID, name="Bench Brand", secrets={"contact": SECRET},
                     staff=[{"userid": s, "name": f"Staff {s[-3:]}"} for s in staff_ids(staff)])
    stack = Stack(stack_kind)
    stack.start(sb)
    try:
        return _measure(stack, sb, recipients, staff, shared, timeout, quiet)
    finally:
        stack.stop()


def _measure(stack: Stack, sb: Any, recipients: int, staff: int, shared: float, timeout: float,
             quiet: bool) -> dict[str, Any]:
    from chalicelib.broadcasts import items as bitems
    from chalicelib.broadcasts import service as broadcasts
    from chalicelib.segments import service as segments

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    t = time.perf_counter()
    expected = seed(stack, sb, recipients, staff, shared)
    say(f"seeded {recipients:,} customers ({len(sb.world.corp(CORP_ID).relations):,} relations, {staff} staff) "
        f"in {time.perf_counter() - t:.1f} s on the {stack.kind} stack")
    segment = segments.create(CORP_ID, segments.SegmentCreate(name="everyone", filter={"statuses": ["active"]}))
    driver = Driver(stack)
    if stack.fake is not None:
        stack.fake.meter.reset()
    t0 = time.perf_counter()
    with aws_requests.count_aws_requests() as create_requests:
        b = broadcasts.create(CORP_ID, broadcasts.BroadcastCreate(
            name="stock arrived", target={"kind": "customers", "segment_id": segment.segment_id},
            content={"text": "Masks are in stock again. {staff_name}"}))
    driver.product.update(create_requests)
    status = driver.run(b.broadcast_id, timeout=timeout)
    wall = time.perf_counter() - t0
    done = bitems.get(CORP_ID, b.broadcast_id)

    # WeCom: calls made vs the minimum; each customer once, from its sender
    calls = sb.requests("externalcontact/add_msg_template")
    per_sender = Counter(expected.values())
    minimum = sum(math.ceil(n / PER_CALL) for n in per_sender.values())
    got: Counter = Counter()
    wrong_sender = 0
    for m in sb.world.corp(CORP_ID).mass_messages.values():
        for userid, targets in m.targets.items():
            got.update(targets)
            wrong_sender += sum(1 for c in targets if expected.get(c) != userid)
    exact = len(got) == recipients and set(got.values()) == {1} and wrong_sender == 0

    if stack.fake is not None:
        meter = stack.fake.meter
        requests = Counter(meter.requests)
        wcu, rcu, sqs = meter.wcu, meter.rcu, meter.sqs_requests
        wcu_by = {k: round(v / recipients, 4) for k, v in meter.wcu_by.most_common()}
    else:
        requests = Counter(driver.product)
        wcu = rcu = wcu_by = None
        sqs = sum(n for op, n in requests.items() if op.startswith("sqs."))
    figures = {
        "stack": stack.kind, "recipients": recipients, "staff": staff, "shared": shared,
        "status": status, "planned": done.planned, "excluded": {
            "capped": done.ex_capped, "lost_relation": done.ex_lost_relation, "no_sender": done.ex_no_sender},
        "wecom_calls": len(calls), "wecom_calls_min": minimum, "call_ratio": round(len(calls) / max(1, minimum), 3),
        "exactly_once_from_sender": exact, "wall_s": round(wall, 1), "recipients_per_s": round(recipients / wall),
        "handler_s": round(driver.handler_s, 1), "messages": dict(driver.kinds), "handler_failures": driver.failures,
        "aws_requests_per_recipient": {op: round(n / recipients, 4) for op, n in sorted(requests.items())},
        "sqs_requests_per_recipient": round(sqs / recipients, 5),
        "esm_sqs_requests": dict(driver.esm),
        "wcu_per_recipient": round(wcu / recipients, 3) if wcu is not None else None,
        "rcu_per_recipient": round(rcu / recipients, 3) if rcu is not None else None,
        "wcu_per_recipient_by_write": wcu_by,
        "wcu": round(wcu) if wcu is not None else None, "rcu": round(rcu) if rcu is not None else None,
        "planner_peak_mb": {k: round(v / 2**20, 1) for k, v in driver.peaks.items()},
    }
    say(report(figures))
    return figures


def report(f: dict[str, Any]) -> str:
    lines = [
        f"\nbroadcast: {f['recipients']:,} recipients / {f['staff']} staff on the {f['stack']} stack -> {f['status']}",
        f"  WeCom calls    {f['wecom_calls']:,} add_msg_template, minimum {f['wecom_calls_min']:,}: "
        f"ratio {f['call_ratio']:.2f}; every customer exactly once from its sender: {f['exactly_once_from_sender']}",
        f"  time           {f['wall_s']:,.1f} s create -> sent ({f['recipients_per_s']:,} recipients/s); "
        f"sends handlers {f['handler_s']:,.1f} s; messages {f['messages']}",
        f"  SQS            {f['sqs_requests_per_recipient']:.5f} requests per recipient (product); "
        f"event source: {f['esm_sqs_requests']}",
    ]
    if f["wcu_per_recipient"] is not None:
        lines.append(f"  DynamoDB       {f['wcu_per_recipient']:.3f} WRU and {f['rcu_per_recipient']:.3f} RRU per "
                     f"recipient ({f['wcu']:,} WRU, {f['rcu']:,} RRU); WRU per recipient by write (operation, "
                     f"item kind): {f['wcu_per_recipient_by_write']}")
    lines.append("  AWS requests   per recipient: " + ", ".join(
        f"{op} {n}" for op, n in f["aws_requests_per_recipient"].items()))
    lines.append(f"  planner peak   {f['planner_peak_mb']} MB (tracemalloc, above the handler's start)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--shared", type=float, default=0.1,
                        help="fraction of customers with a second, older relation to another staff member")
    parser.add_argument("--stack", choices=("local", "fake"), default="local")
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    figures = run(args.recipients, staff=args.staff, shared=args.shared, stack_kind=args.stack, timeout=args.timeout)
    if args.json:
        print(json.dumps(figures, indent=2))
    ok = figures["status"] == "sent" and figures["exactly_once_from_sender"] and figures["call_ratio"] == 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
