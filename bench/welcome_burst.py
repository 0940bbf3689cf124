"""Welcome path under load, through the whole local stack: simulated adds -> HTTP callback ->
SQS "events" -> on_events consumer -> WeCom sandbox send_welcome_msg.

    python bench/welcome_burst.py [--burst 500] [--rate 20 --seconds 15] [--pollers 1] [--quick]

Starts `infra.local_stack.LocalStack` in-process on free ports (moto server, WeCom sandbox,
`chalice local`, one poller thread per queue), registers the demo corp, creates one channel code
for alice, bob and carol with a welcome text that uses {customer_name} (so each welcome also reads
the customer's name: externalcontact/get), warms the path up with a few adds, then runs two phases:

- burst:  N customers scan at once (`sandbox.simulator.scan_contact_way` from a thread pool);
- steady: R scans per second for S seconds, each fired on schedule from a thread pool.

Per phase it prints: adds/s, latency p50 / p99 / max, welcomes missed, AWS requests per add by
service.Operation (split: callback side / consumer handler / queue polling, i.e. what Lambda's
event source mapping does in AWS), and the handler CPU ms per add.

Latency = from the sandbox issuing the welcome code (the add: `WelcomeCode.issued_at`) to the
sandbox journal recording the welcome (`at` of the "welcome" entry): what the customer sees.
Missed = adds whose welcome never reached the journal (the product also counts them:
`welcomes_missed`). A breakdown (sandbox -> callback enqueued, queue wait, wait behind the other
messages of the batch, handling) shows where the time goes when a goal is not met.

AWS requests: counted with botocore's event hooks (bench/aws_requests.py; installed before the
stack builds any client), and attributed by thread: `chalice local` request threads = callback
(API Gateway -> Lambda in AWS), an "sqs-events*" thread inside the `on_events` handler =
consumer, the same thread outside it = queue polling (ReceiveMessage / DeleteMessageBatch, done
by the event source mapping in AWS; billed as SQS requests, but no Lambda time). The schedules
thread and this bench's own checks are "other" and not per add.

Handler CPU: `time.thread_time()` around each `on_events` invocation (the entry of
`app.handler_map` is wrapped here, nothing in the product changes), summed over the phase,
divided by its adds. moto's server, the sandbox and chalice local run in other threads of this
process, so their CPU is not in the figure; botocore's and httpx's client-side work is.

moto's TransactWriteItems copies the whole table once per item; the local stack corrects that
(infra/moto_fixes.py) and `--stock-moto` keeps it. (The sandbox's HTTP server used to stall each
answer ~44 ms on Nagle + delayed ACK; fixed in sandbox/server.py.) The stack runs moto's server
in a child process, off this process's GIL (`--moto-thread` puts it back in a thread), and 4
pollers of the events queue (`--pollers K`): Lambda scales consumers out, one thread cannot.
Everything is bounded: each phase waits at most --timeout seconds for its welcomes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import aws_requests  # noqa: E402  (stdlib only; must come before any boto3 client)

STAFF = ("alice", "bob", "carol")
WELCOME = {"text": "Hi {customer_name}, welcome to Store 7! Show this message for 10% off.",
           "attachments": [{"type": "link", "title": "10% off", "url": "https://brand.example/c/7"}]}


# -- AWS requests by side ------------------------------------------------------------------------
_tl = threading.local()


def _side() -> str:
    name = threading.current_thread().name
    if name.startswith("sqs-events"):
        return "consumer" if getattr(_tl, "in_handler", False) else "polling"
    if "process_request_thread" in name:  # chalice local's ThreadingMixIn request threads
        return "callback"
    return "other"


class SideRequests(aws_requests.AwsRequests):
    """An `AwsRequests` that only counts requests sent from threads of one side, and also keeps
    the wait per service.Operation (`op_ms`)."""

    def __init__(self, side: str) -> None:
        self.side = side
        self._ms = 0.0
        self.op_ms: Counter = Counter()
        super().__init__()

    @property  # type: ignore[override]
    def http_ms(self) -> float:
        return self._ms

    @http_ms.setter
    def http_ms(self, value: float) -> None:
        if _side() == self.side:
            op = getattr(_tl, "op", None)
            if op is not None:
                self.op_ms[op] += value - self._ms
            self._ms = value

    def __setitem__(self, key: str, value: int) -> None:
        if _side() == self.side:
            _tl.op = key  # the request this thread is sending (before-send)
            super().__setitem__(key, value)


class Counting:
    """Counters for one phase: one per side, registered with bench.aws_requests' hooks."""

    SIDES = ("callback", "consumer", "polling", "other")

    def __enter__(self) -> dict[str, SideRequests]:
        aws_requests.install()
        self.counters = {s: SideRequests(s) for s in self.SIDES}
        aws_requests._active.extend(self.counters.values())
        return self.counters

    def __exit__(self, *exc: Any) -> None:
        for c in self.counters.values():
            aws_requests._active.remove(c)


# -- instrumentation of the consumer (wrappers installed at run time, product code unchanged) -----
class Probe:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cpu_s = 0.0
        self.batches = 0
        self.messages: list[dict[str, Any]] = []
        self.handled_codes: set[str] = set()

    def reset(self) -> None:
        with self.lock:
            self.cpu_s, self.batches = 0.0, 0
            self.messages = []

    def wrap_handler(self, app: Any) -> None:
        inner = app.handler_map["on_events"]

        def on_events(event: Any, context: Any) -> Any:
            _tl.in_handler, _tl.batch_start = True, time.time()
            cpu0 = time.thread_time()
            try:
                return inner(event, context)
            finally:
                cpu = time.thread_time() - cpu0
                _tl.in_handler = False
                with self.lock:
                    self.cpu_s += cpu
                    self.batches += 1

        app.handler_map["on_events"] = on_events

    def wrap_messages(self) -> None:
        """Time each message from its first pass (parse, dedupe, welcome) to its commit: the
        consumer handles a batch in two passes (chalicelib/platform/consumer.py handle_batch)."""
        from chalicelib.platform import consumer

        prepare, finish = consumer._prepare, consumer._finish

        def record(info: dict[str, Any], outcome: str) -> None:
            with self.lock:
                self.messages.append({**info, "end": time.time(), "outcome": outcome})
                if info["code"]:
                    self.handled_codes.add(info["code"])

        def _prepare(body: str, *args: Any) -> Any:
            start = time.time()
            result = prepare(body, *args)
            msg = json.loads(body)
            info = {"code": (msg.get("event") or {}).get("welcome_code"),
                    "received": msg["received_at_ms"] / 1000,
                    "batch_start": getattr(_tl, "batch_start", start), "start": start}
            if isinstance(result, str):
                record(info, result)
            else:
                result.bench_info = info
            return result

        def _finish(work: Any) -> str:
            outcome = "error"
            try:
                outcome = finish(work)
                return outcome
            finally:
                record(work.bench_info, outcome)

        consumer._prepare = _prepare
        consumer._finish = _finish


# -- the bench -----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.probe = Probe()
        self.stack: Any = None
        self.corp_id = ""
        self.config_id = ""
        self.state = ""
        self.seq = 0
        self.seq_lock = threading.Lock()

    # setup
    def start(self) -> None:
        import chalice.local

        from infra.local_stack import LocalStack, free_port

        # chalice local prints one line per request to stderr: not at hundreds of adds
        chalice.local.ChaliceRequestHandler.log_message = lambda *a, **k: None  # type: ignore[method-assign]

        aws_requests.install()  # before the stack builds its boto3 clients
        if self.args.stock_moto:
            os.environ["SCRM_STOCK_MOTO"] = "1"  # the local stack applies infra/moto_fixes.py otherwise
        os.environ.pop("WECOM_API_BASE", None)
        self.stack = LocalStack(http_port=free_port(), moto_port=free_port(), sandbox_port=free_port(),
                                admin_key="admin-bench-key", moto_in_process=self.args.moto_thread,
                                events_pollers=self.args.pollers)
        self.stack.start()
        app = self.stack.app
        self.probe.wrap_handler(app)
        self.probe.wrap_messages()
        from chalicelib.platform.settings import get_settings

        events_queue = get_settings().events_queue
        for i, bridge in enumerate(b for b in self.stack.bridges if b.queue_name == events_queue):
            bridge.name = f"sqs-events-{bridge.queue_name}-{i}"  # (already running; name only)
        demo = self.stack.register_demo_corp()
        self.corp_id = demo["corp_id"]
        import httpx

        resp = httpx.post(f"{self.stack.base_url}/api/v1/channel-codes", timeout=30,
                          headers={"Authorization": f"Bearer {demo['api_key']}"},
                          json={"name": "Store 7 poster", "store": "store-7", "channel": "poster",
                                "staff_ids": list(STAFF), "welcome": WELCOME})
        resp.raise_for_status()
        code = resp.json()
        self.config_id, self.state = code["config_id"], code["state"]

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()

    # adds
    def scan(self) -> dict[str, Any]:
        with self.seq_lock:
            self.seq += 1
            n = self.seq
        sim = self.stack.sandbox_app.simulator
        result = sim.scan_contact_way(self.corp_id, self.config_id, name=f"Customer {n:05d}",
                                      userid=STAFF[n % len(STAFF)])
        code = result["welcome_code"]
        corp = self.stack.sandbox_app.world.corp(self.corp_id)
        result["issued_at"] = corp.welcome_codes[code].issued_at
        return result

    def wait_handled(self, codes: list[str], timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.probe.lock:
                if all(c in self.probe.handled_codes for c in codes):
                    return True
            time.sleep(0.05)
        return False

    def process_cpu(self) -> dict[str, float]:
        """CPU seconds of this process (everything but moto, unless --moto-thread) and of moto's."""
        out = {"stack process": time.process_time()}
        for server in self.stack._servers if self.stack else []:
            proc = getattr(server, "proc", None)
            if proc is not None:
                try:
                    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    out["moto process"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                except (OSError, IndexError, ValueError):
                    pass
        return out

    def drain(self, timeout: float) -> bool:
        """Wait until the events queue is empty (between phases, so one does not leak into the
        next)."""
        from chalicelib.platform import queues
        from chalicelib.platform.settings import get_settings

        deadline = time.time() + timeout
        while time.time() < deadline:
            if queues.depth(get_settings().events_queue).empty:
                return True
            time.sleep(0.2)
        return False

    def counters(self) -> dict[str, int]:
        from chalicelib.store import counters

        day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        rows = [r for r in counters.read(self.corp_id, day, day) if r.get("dimension") == "corp"]
        row = rows[0] if rows else {}
        return {k: int(row.get(k, 0)) for k in ("adds", "welcomes_sent", "welcomes_missed")}

    def warm_up(self) -> None:
        scans = [self.scan() for _ in range(3)]
        if not self.wait_handled([s["welcome_code"] for s in scans], 30):
            raise SystemExit("warm-up adds were not handled in 30 s: the stack is not working")

    def run_phase(self, label: str, fire: Any) -> dict[str, Any]:
        self.probe.reset()
        before = self.counters()
        cpu0 = self.process_cpu()
        with Counting() as req:
            t0 = time.time()
            scans = fire()
            t_fired = time.time()
            codes = [s["welcome_code"] for s in scans]
            complete = self.wait_handled(codes, self.args.timeout)
            t_done = time.time()
        cpu1 = self.process_cpu()
        after = self.counters()
        journal = {e["welcome_code"]: e for e in self.stack.sandbox_app.journal.welcomes()}
        latencies, missing = [], []
        for s in scans:
            entry = journal.get(s["welcome_code"])
            if entry is None:
                missing.append(s)
            else:
                latencies.append(entry["at"] - s["issued_at"])
        n = len(scans)
        undelivered = sum(1 for s in scans if not all(c["delivered"] for c in s["callbacks"]))
        callback_retries = sum(len(c["statuses"]) - 1 for s in scans for c in s["callbacks"])
        last = max((journal[s["welcome_code"]]["at"] for s in scans if s["welcome_code"] in journal),
                   default=t_done)
        first = min(s["issued_at"] for s in scans)
        with self.probe.lock:
            msgs = [m for m in self.probe.messages if m["code"] in set(codes)]
            cpu_s, batches = self.probe.cpu_s, self.probe.batches
        issued = {s["welcome_code"]: s["issued_at"] for s in scans}
        breakdown = {
            "sandbox->enqueued": [m["received"] - issued[m["code"]] for m in msgs],
            "queue wait": [m["batch_start"] - m["received"] for m in msgs],
            "behind batch": [m["start"] - m["batch_start"] for m in msgs],
            "handling": [m["end"] - m["start"] for m in msgs],
        }
        return {
            "label": label, "adds": n, "complete": complete, "fire_s": t_fired - t0,
            "span_s": last - first, "latencies": latencies, "missed": len(missing),
            "undelivered": undelivered, "callback_retries": callback_retries,
            "counters": {k: after[k] - before[k] for k in after},
            "requests": {k: (Counter(v), v.http_ms, Counter(v.op_ms)) for k, v in req.items()},
            "cpu_ms": cpu_s * 1e3, "batches": batches,
            "process_cpu_ms": {k: (cpu1[k] - cpu0[k]) * 1e3 for k in cpu0}, "breakdown": breakdown,
            "outcomes": Counter(m["outcome"] for m in msgs),
        }

    def burst(self, n: int) -> dict[str, Any]:
        def fire() -> list[dict[str, Any]]:
            with ThreadPoolExecutor(max_workers=self.args.threads, thread_name_prefix="scan") as pool:
                return list(pool.map(lambda _: self.scan(), range(n)))
        return self.run_phase(f"burst of {n}", fire)

    def steady(self, rate: float, seconds: float) -> dict[str, Any]:
        total = max(1, int(round(rate * seconds)))

        def fire() -> list[dict[str, Any]]:
            futures = []
            with ThreadPoolExecutor(max_workers=self.args.threads, thread_name_prefix="scan") as pool:
                t0 = time.time()
                for i in range(total):
                    delay = t0 + i / rate - time.time()
                    if delay > 0:
                        time.sleep(delay)
                    futures.append(pool.submit(self.scan))
                return [f.result() for f in futures]
        return self.run_phase(f"steady {rate:g} adds/s for {seconds:g} s", fire)


def report(r: dict[str, Any]) -> None:
    n = r["adds"]
    lat = r["latencies"]
    print(f"\n== {r['label']} ==")
    print(f"  adds fired in {r['fire_s']:.2f} s; first add -> last welcome {r['span_s']:.2f} s"
          f" = {n / r['span_s'] if r['span_s'] > 0 else float('nan'):.1f} adds/s end to end"
          + ("" if r["complete"] else "   (TIMED OUT waiting for the consumer)"))
    print(f"  latency add -> welcome: p50 {pct(lat, 50) * 1e3:.0f} ms, p99 {pct(lat, 99) * 1e3:.0f} ms,"
          f" max {max(lat) * 1e3 if lat else float('nan'):.0f} ms")
    c = r["counters"]
    print(f"  welcomes missed: {r['missed']} of {n}   (product counters: adds {c['adds']},"
          f" welcomes_sent {c['welcomes_sent']}, welcomes_missed {c['welcomes_missed']});"
          f" callbacks undelivered {r['undelivered']}, re-sent {r['callback_retries']}")
    print(f"  consumer: {r['batches']} batches ({n / r['batches'] if r['batches'] else 0:.1f} msgs/batch),"
          f" outcomes {dict(r['outcomes'])}")
    print("  where the time goes (per add, ms):     p50      p99      max")
    for name, values in r["breakdown"].items():
        if values:
            print(f"    {name:<32} {pct(values, 50) * 1e3:8.0f} {pct(values, 99) * 1e3:8.0f}"
                  f" {max(values) * 1e3:8.0f}")
    print(f"  handler CPU (thread_time in on_events): {r['cpu_ms'] / n:.2f} ms per add"
          f" ({r['cpu_ms']:.0f} ms total)")
    print("  whole local stack CPU per add: " + ", ".join(
        f"{k} {v / n:.1f} ms" for k, v in r["process_cpu_ms"].items())
        + " (moto, chalice local, sandbox and simulated customers included)")
    reqs = r["requests"]
    per_add_total = (sum(reqs["callback"][0].values()) + sum(reqs["consumer"][0].values())) / n
    print(f"  AWS requests per add (callback + consumer handler): {per_add_total:.2f}"
          f"   [{'meets' if per_add_total <= 5 else 'ABOVE'} the <= 5 goal]")
    ops = sorted({op for side in ("callback", "consumer", "polling") for op in reqs[side][0]})
    print(f"    {'service.Operation':<32} {'callback':>9} {'consumer':>9} {'polling':>9}"
          "   ms waiting on moto per request")
    for op in ops:
        waits = [reqs[s][2][op] / reqs[s][0][op] for s in ("callback", "consumer", "polling") if reqs[s][0][op]]
        print(f"    {op:<32} " + " ".join(f"{reqs[s][0][op] / n:9.2f}" for s in ("callback", "consumer", "polling"))
              + f"   {sum(waits) / len(waits):8.1f}")
    print(f"    {'total':<32} " + " ".join(f"{sum(reqs[s][0].values()) / n:9.2f}"
                                         for s in ("callback", "consumer", "polling")))
    print("    waiting on moto, ms per add:     " + " ".join(
        f"{reqs[s][1] / n:9.1f}" for s in ("callback", "consumer", "polling")))
    other = reqs["other"][0]
    if other:
        print(f"    not per add (other queues' pollers, schedules, bench): {dict(other)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=500, help="adds in the burst (0: skip)")
    parser.add_argument("--rate", type=float, default=20.0, help="steady adds per second (0: skip)")
    parser.add_argument("--seconds", type=float, default=15.0, help="steady phase length")
    parser.add_argument("--pollers", type=int, default=4,
                        help="pollers of the events queue (the local stack's default: 4)")
    parser.add_argument("--threads", type=int, default=32, help="scan thread pool size")
    parser.add_argument("--timeout", type=float, default=120.0, help="max wait per phase, s")
    parser.add_argument("--stock-moto", action="store_true",
                        help="keep moto's whole-table copy per transaction item (see infra/moto_fixes.py)")
    parser.add_argument("--moto-thread", action="store_true",
                        help="run moto's server in a thread of this process (the stack's default: a child process)")
    parser.add_argument("--quick", action="store_true", help="smoke run: burst 30, 10/s for 3 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.burst, args.rate, args.seconds, args.timeout = 30, 10.0, 3.0, 60.0
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for name in ("chalicelib.welcome.steps", "chalicelib.platform.consumer"):  # missed / deferred welcomes
        logging.getLogger(name).setLevel(logging.WARNING)

    logging.getLogger("werkzeug").disabled = True  # moto's server logs each request
    bench = Bench(args)
    results = []
    t_start = time.time()
    try:
        bench.start()
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; local stack on free ports;"
              f" events pollers: {args.pollers}; scan threads: {args.threads}", flush=True)
        bench.warm_up()
        if args.burst:
            results.append(bench.burst(args.burst))
            report(results[-1])
            if not bench.drain(args.timeout):
                print("(events queue still not empty: the next phase starts on a backlog)")
        if args.rate and args.seconds:
            results.append(bench.steady(args.rate, args.seconds))
            report(results[-1])
    finally:
        bench.stop()
    print(f"\n(total run {time.time() - t_start:.0f} s)")
    ok = all(r["complete"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
