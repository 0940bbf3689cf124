"""Group-code rotation under load, through the whole local stack: simulated customers scan one
group code -> sandbox join (200 scan cap, auto_create_room) -> HTTP callback -> SQS "events" ->
on_events consumer (group_codes.rotate_on_join) -> WeCom sandbox update_join_way.

    python bench/group_rotation.py [--customers 1000] [--threshold 190] [--groups 8] [--threads 32]
                                   [--rate R] [--quick]

Starts `infra.local_stack.LocalStack` on free ports (as bench/welcome_burst.py, whose AWS request
counting by side and handler probe it reuses), registers the demo corp, creates --groups groups
(owner alice) and one group code over them (threshold, auto-create), then N customers join at once
(`simulator.join_many` from --threads threads; callbacks posted concurrently over HTTP), or,
with --rate R, R joins per second on schedule (latency when the consumer keeps up).

Prints: joins/s (first join -> last callback handled), rotations (join-way updates) and threshold
crossings, over-threshold joins (the product's counter `over_threshold_joins` and the sandbox's
truth: members past the threshold in each pooled group), rotation latency p50/p99 (the crossing
callback posted by the sandbox -> the join way's update leaving the product: the crossing
member is the one whose place in the group is the threshold), and AWS requests per join
(callback + consumer handler; queue polling apart, as Lambda's event source mapping does it).
Then where the rotation's time goes (`Stages`), for the event whose step pushed each delisting
update: received -> enqueued -> dequeued -> its step started (after the batch's earlier messages)
-> rotation decided (claimed) -> update_join_way sent -> answered, p50/p99 each, with the step's
pacing and other WeCom calls; the consumer's joins/s per poller while busy; and the goal as it can
be held (docs/performance.md): p99 < 1 s from the rotating event's dequeue to the update answered,
the queue wait being backlog / (consumers x joins/s per consumer). The load average is printed with
it: the machine is shared.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import aws_requests  # noqa: E402  (stdlib only; must come before any boto3 client)
from bench.welcome_burst import Counting, Probe, _tl, pct  # noqa: E402


class Rotations:
    """Wraps group_codes.service._push (product code unchanged): when each listing left."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pushes: list[tuple[float, list[str]]] = []
        self.handling: list[float] = []  # push done - its batch taken from the queue (Probe's batch_start)

    def install(self) -> None:
        from chalicelib.group_codes import service

        inner = service._push

        def _push(corp_id: str, code: Any, *, now: float) -> None:
            inner(corp_id, code, now=now)
            with self.lock:
                self.pushes.append((time.time(), list(code.listed)))
                taken = getattr(_tl, "batch_start", None) if getattr(_tl, "in_handler", False) else None
                if taken is not None:
                    self.handling.append(time.time() - taken)

        service._push = _push


_st = threading.local()  # the consumer thread's current batch and crossing-step event (Stages)


class Stages:
    """Where a rotation's time goes (product code unchanged: wrappers installed at run time). For
    the event whose step pushed each delisting update: callback received (the message's
    received_at) -> enqueued (SQS send answered) -> dequeued (its batch handed to on_events) ->
    its step started (pass 1 reaches it: the batch's earlier messages first) -> rotation decided
    (claim_rotation written) -> update_join_way sent -> answered; and, from the step's start to
    the answer, time spent pacing (rate-limit leases and waits) and in other WeCom calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enqueued: dict[str, float] = {}
        self.pushes: list[dict[str, Any]] = []
        self.batches: list[tuple[float, float, int]] = []  # (dequeued, done, messages)

    def install(self, app: Any) -> None:
        import dataclasses

        from chalicelib.group_codes import items as code_items
        from chalicelib.platform import consumer, queues
        from chalicelib.platform.router import ROUTER
        from chalicelib.wecom.client import WeComClient
        from chalicelib.wecom.events import event_from_dict

        send, first_pass, claim = queues.send, consumer._first_pass, code_items.claim_rotation
        pace, call, update = WeComClient._pace, WeComClient._send, WeComClient.update_join_way
        handler = app.handler_map["on_events"]
        consumer.load_capabilities()  # the steps register on the router at the first batch otherwise

        def on_events(event: Any, context: Any) -> Any:
            _st.dequeued, _st.index, _st.step = time.time(), 0, None
            try:
                return handler(event, context)
            finally:
                with self.lock:
                    self.batches.append((_st.dequeued, time.time(), len(event.get("Records", []))))

        def queues_send(spec: Any, message: Any, **kw: Any) -> Any:
            out = send(spec, message, **kw)
            if spec is queues.EVENTS and isinstance(message, queues.EventMessage) and not message.attempt:
                with self.lock:
                    self.enqueued[event_from_dict(message.event).identity()] = time.time()
            return out

        def _first_pass(body: str, *args: Any) -> Any:
            _st.index = getattr(_st, "index", 0) + 1
            return first_pass(body, *args)

        def timed(fn: Any) -> Any:
            def step(ctx: Any) -> Any:
                _st.step = {"identity": ctx.identity, "received": ctx.received_at_ms / 1000,
                            "dequeued": _st.dequeued, "position": _st.index, "started": time.time(),
                            "pacing": 0.0, "wecom": Counter()}
                try:
                    return fn(ctx)
                finally:
                    _st.step = None
            return step

        def claim_rotation(*a: Any, **kw: Any) -> Any:
            out = claim(*a, **kw)
            if getattr(_st, "step", None) is not None:
                _st.step.setdefault("decided", time.time())
            return out

        def _pace(client: Any, api: str) -> None:
            t = time.time()
            try:
                pace(client, api)
            finally:
                if getattr(_st, "step", None) is not None:
                    _st.step["pacing"] += time.time() - t

        def _send(client: Any, method: str, api: str, **kw: Any) -> Any:
            t = time.time()
            try:
                return call(client, method, api, **kw)
            finally:
                if getattr(_st, "step", None) is not None and "update_join_way" not in api:
                    _st.step["wecom"][api.rsplit("/", 1)[-1]] += time.time() - t

        def update_join_way(client: Any, way: Any) -> Any:
            sent = time.time()
            out = update(client, way)
            step = getattr(_st, "step", None)
            with self.lock:
                self.pushes.append({**(step or {}), "sent": sent, "answered": time.time(),
                                    "wecom": Counter(step["wecom"]) if step else Counter(),
                                    "listed": list(way.chat_id_list)})
            return out

        app.handler_map["on_events"] = on_events
        queues.send, consumer._first_pass, code_items.claim_rotation = queues_send, _first_pass, claim_rotation
        WeComClient._pace, WeComClient._send, WeComClient.update_join_way = _pace, _send, update_join_way
        for key, routes in ROUTER._routes.items():
            ROUTER._routes[key] = [dataclasses.replace(r, handler=timed(r.handler))
                                   if r.step == "group_codes.rotate_on_join" else r for r in routes]

    def report(self, crossings: list[str], pool_listed: list[str]) -> list[dict[str, Any]]:
        """The push that delisted each crossing group, with its stages; prints p50/p99 of each."""
        found, listed = {}, list(pool_listed)
        for push in sorted(self.pushes, key=lambda p: p["answered"]):
            for chat in crossings:
                if chat in listed and chat not in push["listed"] and chat not in found:
                    found[chat] = push
            listed = push["listed"]
        rows = [p for p in found.values() if "started" in p]
        for p in rows:
            p["enqueued"] = self.enqueued.get(p["identity"], p["received"])
        stages = [("received -> enqueued", "received", "enqueued"), ("enqueued -> dequeued (queue wait)", "enqueued",
                  "dequeued"), ("dequeued -> step started (earlier messages of the batch)", "dequeued", "started"),
                  ("step started -> rotation decided", "started", "decided"),
                  ("decided -> update_join_way sent", "decided", "sent"), ("sent -> answered", "sent", "answered"),
                  ("dequeued -> answered", "dequeued", "answered"), ("received -> answered", "received", "answered")]
        print(f"  stages of the {len(rows)} delisting pushes made by a crossing step (of {len(found)} delistings;"
              f" the others came from the minute tick or an edit):")
        for label, a, b in stages:
            d = [p[b] - p[a] for p in rows if a in p and b in p]
            print(f"    {label:<58} p50 {pct(d, 50) * 1e3:7.0f} ms  p99 {pct(d, 99) * 1e3:7.0f} ms")
        pacing = [p["pacing"] for p in rows]
        reads = Counter()
        for p in rows:
            reads.update(p["wecom"])
        print(f"    within the step: pacing p50 {pct(pacing, 50) * 1e3:.0f} ms p99 {pct(pacing, 99) * 1e3:.0f} ms;"
              f" other WeCom calls (s, summed): " + (", ".join(f"{k} {v:.2f}" for k, v in reads.items()) or "none")
              + f"; position in batch: {sorted(p['position'] for p in rows)}")
        return rows

    def throughput(self) -> tuple[float, float]:
        """(messages/s of one consumer while it handles a batch, batches in flight on average)."""
        if not self.batches:
            return float("nan"), float("nan")
        busy = sum(done - start for start, done, _ in self.batches)
        span = max(d for _, d, _ in self.batches) - min(s for s, _, _ in self.batches)
        return sum(n for _, _, n in self.batches) / max(busy, 1e-9), busy / max(span, 1e-9)


class Callers(aws_requests.AwsRequests):
    """The consumer's AWS requests by "operation <- product function" (--callers): where the
    requests per join come from. The nearest chalicelib frame outside the store's wrapper."""

    def __setitem__(self, key: str, value: int) -> None:
        from bench.welcome_burst import _side

        if _side() != "consumer":
            return
        frame, where = sys._getframe(1), "?"
        while frame is not None:
            path = frame.f_code.co_filename
            if "chalicelib" in path and "/store/table.py" not in path:
                where = f"{Path(path).parent.name}/{Path(path).stem}.{frame.f_code.co_name}"
                break
            frame = frame.f_back
        label = f"{key} <- {where}"
        super().__setitem__(label, self.get(label, 0) + 1)


def wait_drained(timeout: float) -> bool:
    from chalicelib.platform import aws, queues
    from chalicelib.platform.settings import get_settings

    url = queues.queue_url(get_settings().events_queue)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            attrs = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        except Exception:  # noqa: BLE001  (moto timing out on a loaded machine: ask again)
            time.sleep(1)
            continue
        if all(v == "0" for v in attrs.values()):
            return True
        time.sleep(0.2)
    return False


def fire(sb: Any, corp_id: str, config_id: str, args: Any) -> dict[str, Any]:
    if not args.rate:
        return sb.simulator.join_many(corp_id, config_id, args.customers, concurrency=args.threads)
    from concurrent.futures import ThreadPoolExecutor

    futures, t0 = [], time.time()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for i in range(args.customers):
            delay = t0 + i / args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(sb.simulator.join_group, corp_id, config_id))
        joins = [f.result() for f in futures]
    return {"joins": joins, "joined": len(joins), "refused": 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--threshold", type=int, default=190)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--threads", type=int, default=32, help="customers scanning at once")
    parser.add_argument("--rate", type=float, default=0.0, help="joins per second on schedule (0: all at once)")
    parser.add_argument("--pollers", type=int, default=4, help="pollers of the events queue")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 customers, threshold 20, 4 groups")
    parser.add_argument("--callers", action="store_true", help="also the consumer's AWS requests per join by "
                                                               "operation and product function")
    parser.add_argument("--aws", choices=("moto", "fake"), default="moto",
                        help="DynamoDB and SQS: moto's server (default), or bench/fake_aws.py in-process with "
                             "AWS's round trips (--dynamodb-ms, --sqs-ms): what the product's code costs when "
                             "AWS answers as fast as AWS")
    parser.add_argument("--dynamodb-ms", type=float, default=5.0, help="with --aws fake: per DynamoDB request")
    parser.add_argument("--sqs-ms", type=float, default=10.0, help="with --aws fake: per SQS request")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.threshold, args.groups, args.timeout = 60, 20, 4, 120.0
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").disabled = True

    import chalice.local
    import httpx

    from infra.local_stack import LocalStack, free_port

    chalice.local.ChaliceRequestHandler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    aws_requests.install()
    os.environ.pop("WECOM_API_BASE", None)
    stack = LocalStack(http_port=free_port(), moto_port=free_port(), sandbox_port=free_port(),
                       admin_key="admin-bench-key", events_pollers=args.pollers)
    probe, rotations, stages = Probe(), Rotations(), Stages()
    t_start, fake = time.time(), None
    try:
        stack.start()
        fake = use_fake_aws(args) if args.aws == "fake" else None
        probe.wrap_handler(stack.app)
        rotations.install()
        stages.install(stack.app)
        from chalicelib.platform.settings import get_settings

        events_queue = get_settings().events_queue
        for i, bridge in enumerate(b for b in stack.bridges if b.queue_name == events_queue):
            bridge.name = f"sqs-events-{bridge.queue_name}-{i}"  # the consumer side, for Counting
        demo = stack.register_demo_corp()
        corp_id, sb = demo["corp_id"], stack.sandbox_app
        pool = [sb.simulator.create_group(corp_id, "alice", f"Store {i}")["chat_id"] for i in range(args.groups)]
        wait_drained(60)
        resp = httpx.post(f"{stack.base_url}/api/v1/group-codes", timeout=60,
                          headers={"Authorization": f"Bearer {demo['api_key']}"},
                          json={"name": "Bench poster", "pool": pool, "threshold": args.threshold,
                                "auto_create": {"room_base_name": "Store auto "}})
        resp.raise_for_status()
        code = resp.json()
        updates0 = len(sb.requests(api="externalcontact/groupchat/update_join_way"))
        pace = f"{args.rate:g} joins/s" if args.rate else f"{args.threads} at once"
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.customers} customers, "
              f"{pace}; threshold {args.threshold}; pool of {args.groups} + auto-create", flush=True)
        callers = Callers()
        metered = Counter(fake.meter.requests) if fake is not None else None
        with Counting() as req:
            if args.callers:
                aws_requests._active.append(callers)
            t0 = time.time()
            result = fire(sb, corp_id, code["config_id"], args)
            t_fired = time.time()
            drained = wait_drained(args.timeout)
            t_done = time.time()
            if args.callers:
                aws_requests._active.remove(callers)
        if fake is not None:  # the fake is not botocore: its own meter counts (polling and all, per operation)
            req["fake"] = Counter(fake.meter.requests)
            req["fake"].subtract(metered)
        passed = report(args, sb, corp_id, code, pool, pool_listed=code["listed"], result=result, req=req,
                        rotations=rotations, updates0=updates0, span=(t0, t_fired, t_done), drained=drained,
                        stages=stages, pollers=args.pollers)
        if args.callers:
            print("  consumer requests per join by caller:")
            for label, count in callers.most_common():
                print(f"    {count / max(1, result['joined']):6.2f}  {label}")
    finally:
        if fake is not None:
            from chalicelib.platform import aws

            aws.use_clients(None)
        stack.stop()
    print(f"\n(total run {time.time() - t_start:.0f} s)")
    return 0 if passed else 1


def use_fake_aws(args: Any) -> Any:
    """DynamoDB and SQS answered by bench/fake_aws.py in this process, each request after AWS's
    round trip (assumed: --dynamodb-ms, --sqs-ms); KMS stays on moto's server. The table and
    queues are created on the fake before anything is stored (the stack's are left on moto)."""
    from bench.fake_aws import FakeAWS, with_latency
    from chalicelib.platform import aws, caches, queues
    from chalicelib.platform.settings import get_settings
    from chalicelib.store import schema

    fake, settings = FakeAWS(), get_settings()
    schema.create_table(fake.dynamodb, settings.table_name)
    queues.create_queues(fake.sqs, settings)
    aws.use_clients(with_latency(fake, dynamodb_seconds=args.dynamodb_ms / 1000, sqs_seconds=args.sqs_ms / 1000))
    caches.clear_all()
    print(f"AWS: bench/fake_aws.py in-process, {args.dynamodb_ms:g} ms per DynamoDB request and {args.sqs_ms:g} ms"
          f" per SQS request (assumed round trips; KMS on moto)", flush=True)
    return fake


def report(args: Any, sb: Any, corp_id: str, code: dict[str, Any], pool: list[str], *, pool_listed: list[str],
           result: dict[str, Any], req: dict[str, Any], rotations: Rotations, updates0: int,
           span: tuple[float, float, float], drained: bool, stages: Stages, pollers: int) -> bool:
    from chalicelib.store import counters

    t0, t_fired, t_done = span
    n = result["joined"]
    chats = sb.world.corp(corp_id).chats
    sizes = {c: len(chat.members) for c, chat in chats.items()}
    members = {c: list(chat.members) for c, chat in chats.items()}
    crossings = [c for c in pool if sizes.get(c, 0) >= args.threshold]
    truth_over = sum(max(0, sizes[c] - args.threshold) for c in pool if c in sizes)
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    counted = sum(int(r.get("over_threshold_joins", 0)) for r in counters.read(corp_id, day, day)
                  if r.get("dimension") == "group_code" and r.get("value") == code["code_id"])
    updates = len(sb.requests(api="externalcontact/groupchat/update_join_way")) - updates0
    # rotation latency: the crossing member's callback posted -> the push that delisted the group
    posted = {}
    for entry in sb.journal.entries("callback"):
        fields = entry.get("fields", {})
        for m in fields.get("MemChangeList") or []:
            posted[(fields.get("ChatId"), m)] = entry["at"]
    latencies, handling = [], rotations.handling
    for chat in crossings:
        crossing_member = members[chat][args.threshold - 1]
        at = posted.get((chat, crossing_member))
        left = next((t for t, listed in rotations.pushes if chat not in listed), None)
        if at is not None and left is not None:
            latencies.append(left - at)
    print(f"\n  joined {n}, refused {result['refused']}; largest group {max(sizes.values())} members"
          f" (cap 200); groups now {len(sizes)} ({len(sizes) - len(pool)} auto-created)"
          + ("" if drained else "   (TIMED OUT waiting for the consumer)"))
    print(f"  joins fired in {t_fired - t0:.1f} s; all handled after {t_done - t0:.1f} s:"
          f" {n / (t_done - t0):.1f} joins/s end to end")
    verdict = ("one per crossing" if updates == len(crossings) else "crossings seen together share an update"
               if updates < len(crossings) else "MORE updates than crossings")
    print(f"  threshold crossings {len(crossings)}, join-way updates {updates} [{verdict}]")
    print(f"  over-threshold joins: counted {counted}, sandbox truth {truth_over}"
          f" ({truth_over / max(1, len(crossings)):.1f} per crossing)")
    on_moto = "" if "fake" in req else ", on moto's server: its request time is printed below"
    print(f"  rotation latency (crossing callback posted -> join way updated): p50 {pct(latencies, 50) * 1e3:.0f} ms,"
          f" p99 {pct(latencies, 99) * 1e3:.0f} ms, max {max(latencies, default=float('nan')) * 1e3:.0f} ms"
          f" [{'meets' if latencies and pct(latencies, 99) < 1.0 else 'ABOVE'} the p99 < 1 s goal{on_moto}]")
    print(f"  rotations from the consumer taking their batch to the update: p50 {pct(handling, 50) * 1e3:.0f} ms,"
          f" p99 {pct(handling, 99) * 1e3:.0f} ms (the rest of the latency is the queue's backlog)")
    rows = stages.report(crossings, pool_listed)
    rate, busy = stages.throughput()
    handled = [p["answered"] - p["dequeued"] for p in rows]
    print(f"  consumer: {rate:.1f} joins/s per consumer while handling a batch, {busy:.1f} of {pollers} pollers busy on"
          f" average (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"  goal, as restated (docs/performance.md): p99 < 1 s from the dequeue of the rotating event to the join"
          f" way's update answered: p99 {pct(handled, 99) * 1e3:.0f} ms"
          f" [{'meets' if handled and pct(handled, 99) < 1.0 else 'ABOVE'}]; queue wait = backlog / (consumers x"
          f" {rate:.1f} joins/s): a burst of {n} waits up to {n / max(rate, 1e-9):.0f} s on one consumer,"
          f" {n / max(rate, 1e-9) / 10:.1f} s on 10 concurrent Lambdas")
    if "fake" in req:  # the fake's meter: every caller; polling = SQS's receives and deletes (+ this bench's checks)
        polling = {"sqs.ReceiveMessage", "sqs.DeleteMessageBatch", "sqs.DeleteMessage", "sqs.GetQueueAttributes"}
        ops = Counter({op: c for op, c in req["fake"].items() if op not in polling and c > 0})
        side, polled = "every caller but queue polling (the fake's meter; the minute tick's reads included)", \
            sum(c for op, c in req["fake"].items() if op in polling)
    else:
        ops = Counter()
        for name in ("callback", "consumer"):
            ops.update(req[name])
        side, polled = "callback + consumer handler", req["polling"].total
        mean_ms = req["consumer"].http_ms / max(1, req["consumer"].total)
        print(f"  moto's server answered the consumer's {req['consumer'].total} requests in {mean_ms:.0f} ms each on"
              f" average (DynamoDB in a region: single-digit ms; `--aws fake` runs this code on AWS's round trips)")
    per_join = sum(ops.values()) / max(1, n)
    print(f"  AWS requests per join ({side}): {per_join:.2f} [{'meets' if per_join <= 4 else 'ABOVE'} the <= 4 goal]")
    for op, count in sorted(ops.items(), key=lambda kv: -kv[1]):
        print(f"    {op:<34} {count / max(1, n):6.2f}")
    print(f"    queue polling (event source mapping): {polled / max(1, n):.2f} per join")
    return checks(args, sb, corp_id, code, pool, pool_listed=pool_listed, result=result, rotations=rotations,
                  sizes=sizes, crossings=crossings, counted=counted, truth_over=truth_over, updates=updates)


def checks(args: Any, sb: Any, corp_id: str, code: dict[str, Any], pool: list[str], *, pool_listed: list[str],
           result: dict[str, Any], rotations: Rotations, sizes: dict[str, int], crossings: list[str],
           counted: int, truth_over: int, updates: int) -> bool:
    """The simulator test's assertions (tests/functional/test_group_code_simulation.py), on this run."""
    from chalicelib.group_codes import items as code_items
    from chalicelib.group_codes import service

    stored = service.member_counts(corp_id, list(sizes))  # as the code's status shows them
    final = code_items.get(corp_id, code["code_id"], consistent=True)
    way = sb.world.corp(corp_id).join_ways[code["config_id"]]["chat_id_list"]
    delisted, listed = Counter(), list(pool_listed)
    for _, now_listed in rotations.pushes:
        delisted.update(c for c in listed if c not in now_listed)
        listed = now_listed
    results = [
        ("every customer ends in a group", result["joined"] == args.customers and result["refused"] == 0),
        ("no group ever exceeds 200 members", max(sizes.values()) <= 200),
        ("no group delisted twice (no double rotation, no flapping)", all(v == 1 for v in delisted.values())),
        ("at most one join-way update per crossing", updates <= len(crossings)),
        ("over-threshold joins counted = the sandbox's truth", counted == truth_over),
        ("stored member counts = the sandbox's truth", all(stored[c] == sizes[c] for c in sizes)),
        ("WeCom's join way lists what the code says, synced",
         final is not None and sorted(way) == sorted(final.listed) and final.synced_rotation == final.rotation),
    ]
    wrong = {c: (stored[c], sizes[c]) for c in sizes if stored[c] != sizes[c]}
    print("  checks (the simulator test's assertions):" + (f" stored/truth differ: {wrong}" if wrong else ""))
    for what, ok in results:
        print(f"    [{'ok' if ok else 'FAILED'}] {what}")
    return all(ok for _, ok in results)


if __name__ == "__main__":
    raise SystemExit(main())
