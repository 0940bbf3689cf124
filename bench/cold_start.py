"""Cold-start cost in fresh interpreters: median of N runs per case.

    python bench/cold_start.py [--runs 7] [--warm 3] [--importtime] [--no-cffi]

(a) ``import boto3``                     the floor every Lambda of ours pays
(a') the stack's floor                   nothing of ours: ``import chalice``, ``from pydantic import
                                         BaseModel``, ``import boto3`` and one session's DynamoDB,
                                         KMS and SQS clients, plain (no request): what any callback
                                         handler on this stack pays before its own code runs, given
                                         the design's pydantic models and KMS-sealed corp secrets.
(b) ``import app``                       the Chalice app at the repo root (skipped if absent)
(c) protocol path                        ``import chalicelib.wecom.crypto`` + ``events``, then build
                                         ``CallbackCrypto``, ``decrypt_callback`` and ``parse_event``
                                         for one encrypted add_external_contact callback (this
                                         includes pycryptodome's lazy import and pydantic's deferred
                                         schema build).
(c') full handler                        ``import app``, then one POST callback through the real
                                         Lambda entry point ``app.app(apigw_proxy_event, context)``:
                                         corp lookup (DynamoDB GetItem + KMS Decrypt), verify,
                                         decrypt, parse, SQS send; then ``--warm`` more callbacks
                                         in the same process (the warm path).
(d) AWS requests per callback            counted in the (c') children with botocore event hooks
                                         (bench/aws_requests.py), by service.Operation.

Each case runs in a new ``python`` process (``-X frozen_modules`` defaults, .pyc present after
one discarded warm-up run) that times itself with ``perf_counter`` and prints JSON; the process
wall time (interpreter start included) is shown too. Env: AWS_DEFAULT_REGION=us-east-1, fake
credentials, so nothing touches AWS.

AWS for (c'): moto's state lives in the process that runs it, and a child that started moto
in-process would have imported moto (hence boto3, botocore, ...) before its clock starts, hiding
exactly the cost we measure. So this parent runs ``moto.server.ThreadedMotoServer`` on a free
local port and sets it up with chalicelib's own functions (``store.schema.create_table``,
``queues.create_queues``, ``secrets.ensure_local_key``, ``secrets.seal`` +
``store.corps.create_corp``, as ``POST /api/v1/corps`` does); children only get
``AWS_ENDPOINT_URL``. Each child imports nothing of ours (nor boto3) before its clock starts; it
builds no AWS client during setup either. The round trips to the local server (HTTP on loopback
plus moto's own work, served by a thread of this parent) are time a Lambda would spend waiting
on AWS instead: the child measures it between botocore's ``before-send`` and ``before-parse``
events and reports the handler time with and without it ("CPU-only"); the child's
``time.process_time()`` over the same span is printed as a cross-check.

``--no-cffi`` hides cffi from every child: pycryptodome uses cffi (parsing its C declarations with
pycparser, ~10 ms more on the first AES) whenever cffi is importable, which it is here only because
moto's ``cryptography`` pulls it in; the Lambda package (requirements.txt + the runtime's boto3)
has no cffi, so ``--no-cffi`` is the closer picture of production.

``--profile`` also runs one (c') child under cProfile and shows where our part goes: the time
spent in our own code (chalicelib/, app.py) by module, the pydantic validators built on the path
(and which models), botocore's client creation and loading of service models, and imports.

``--instructions`` runs (a), (a'), (a'') — the floor plus the three requests a cold callback makes,
in plain boto3 — and (c') once each under valgrind's callgrind and compares instructions executed:
the same count for the same code whatever else the machine runs.

``--importtime`` also runs one (c') child under ``python -X importtime`` and lists, for the import
phase and the first-callback phase apart, the import time by top-level package (self times
summed) and the largest top-level imports.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.samples import AES_KEY, CORP_ID, DEPLOYMENT_ENV, NONCE, PLAINTEXT, TOKEN  # noqa: E402  (stdlib only)

CHILD_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "PYTHONPATH": str(ROOT),
}
# What the deployed function reads; the parent sets moto up with the same names.
HANDLER_ENV = DEPLOYMENT_ENV
RESOURCE = "/wecom/{corp_id}/callback"
# Packages whose loading (c') reports: the callback path needs boto3/botocore, pydantic and
# pycryptodome; httpx and its stack (WeCom API client) must stay unloaded.
WATCH = ("boto3", "botocore", "pydantic", "Crypto", "cffi", "zoneinfo", "httpx", "httpcore", "anyio",
         "h11")
PHASE_MARK = "## bench phase: "


class _LambdaContext:
    """What chalice keeps as ``app.lambda_context``; the callback path reads none of it."""

    function_name = "scrm-dev"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:scrm-dev"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/scrm-dev"
    log_stream_name = "2024/01/01/[$LATEST]bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


class _Hide:
    """A meta-path finder that makes the named top-level packages unimportable (--no-cffi)."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"hidden by bench --no-cffi: {name}", name=name)
        return None


def _phase(name: str) -> None:
    """Mark a phase boundary in stderr (read by --importtime; costs nothing otherwise)."""
    if os.environ.get("BENCH_MARK_PHASES"):
        print(PHASE_MARK + name, file=sys.stderr, flush=True)


def bench_cold_start_child(mode: str) -> dict:
    """Run in the fresh interpreter: time one cold-start case, return milliseconds by phase."""
    if mode == "handler":
        return _handler_child()
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "pass":
        return {"total": 0.0}
    if mode == "boto3":
        import boto3  # noqa: F401

        return {"total": (time.perf_counter() - t0) * 1e3, "cpu": (time.process_time() - c0) * 1e3}
    if mode == "app":
        import app  # noqa: F401

        return {"total": (time.perf_counter() - t0) * 1e3}
    if mode == "floor":
        import boto3
        import chalice.app  # noqa: F401
        from pydantic import BaseModel  # noqa: F401

        session = boto3.session.Session()
        for service in ("dynamodb", "kms", "sqs"):
            session.client(service, endpoint_url="http://127.0.0.1:9")
        return {"total": (time.perf_counter() - t0) * 1e3, "cpu": (time.process_time() - c0) * 1e3}
    if mode == "floor_requests":
        # (a''): the floor plus the three requests a cold callback makes, plain boto3, nothing of
        # ours: the corp's item, its data key unsealed by KMS, the event sent to SQS.
        import base64 as b64
        import json as js

        import boto3
        import chalice.app  # noqa: F401
        from pydantic import BaseModel  # noqa: F401

        session = boto3.session.Session()
        ddb, kms, sqs = (session.client(s) for s in ("dynamodb", "kms", "sqs"))
        item = ddb.get_item(TableName=os.environ["SCRM_TABLE_NAME"],
                            Key={"PK": {"S": f"CORP#{CORP_ID}"}, "SK": {"S": "CORP"}})["Item"]
        sealed = item["sealed_secrets"]["M"]
        kms.decrypt(CiphertextBlob=b64.b64decode(sealed["data_key"]["S"]), EncryptionContext={"corp_id": CORP_ID})
        sqs.send_message(QueueUrl=os.environ["SCRM_EVENTS_QUEUE_URL"], MessageBody=js.dumps({"corp_id": CORP_ID}))
        return {"total": (time.perf_counter() - t0) * 1e3, "cpu": (time.process_time() - c0) * 1e3}
    if mode == "protocol":
        callback = json.loads(os.environ["BENCH_CALLBACK"])
        from chalicelib.wecom.crypto import CallbackCrypto
        from chalicelib.wecom.events import AddExternalContact, parse_event

        t1 = time.perf_counter()
        crypto = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)
        plaintext = crypto.decrypt_callback(**callback["query"], body=base64.b64decode(callback["body"]))
        event = parse_event(plaintext)
        t2 = time.perf_counter()
        if not isinstance(event, AddExternalContact):
            raise SystemExit(f"unexpected event {event!r}")
        return {
            "import": (t1 - t0) * 1e3,
            "first_callback": (t2 - t1) * 1e3,
            "total": (t2 - t0) * 1e3,
        }
    raise SystemExit(f"unknown mode {mode!r}")


def _handler_child() -> dict:
    """(c') + (d): import app, one cold callback through the Lambda entry point, then warm ones.

    Before the clock: only the standard library and bench/aws_requests.py (stdlib only; its hook
    waits for botocore to be imported by the code under test)."""
    from bench.aws_requests import count_aws_requests, install

    install()
    events = json.loads(os.environ["BENCH_EVENTS"])
    context = _LambdaContext()

    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    _phase("import")
    t0, c0 = time.perf_counter(), time.process_time()
    import app

    t1, c1 = time.perf_counter(), time.process_time()
    loaded_import = [p for p in WATCH if p in sys.modules]
    _phase("first_callback")
    with count_aws_requests() as first:
        response = app.app(events[0], context)
    t2, c2 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_PROFILE"])
        _dump_built_models(os.environ["BENCH_PROFILE"] + ".models")
    loaded_callback = [p for p in WATCH if p in sys.modules]
    _phase("warm")
    _check(response)

    warm_ms, warm_http, warm_cpu, warm_counts = [], [], [], []
    for event in events[1:]:
        s, sc = time.perf_counter(), time.process_time()
        with count_aws_requests() as requests:
            response = app.app(event, context)
        warm_ms.append((time.perf_counter() - s) * 1e3)
        warm_cpu.append((time.process_time() - sc) * 1e3)
        warm_http.append(requests.http_ms)
        warm_counts.append(dict(requests))
        _check(response)
    return {
        "import": (t1 - t0) * 1e3,
        "import_cpu": (c1 - c0) * 1e3,
        "first_callback": (t2 - t1) * 1e3,
        "first_http": first.http_ms,
        "first_process": (c2 - c1) * 1e3,
        "total": (t2 - t0) * 1e3,
        "warm_callback": statistics.median(warm_ms) if warm_ms else 0.0,
        "warm_http": statistics.median(warm_http) if warm_http else 0.0,
        "warm_process": statistics.median(warm_cpu) if warm_cpu else 0.0,
        "counts_first": dict(first),
        "counts_warm": warm_counts,
        "loaded_import": loaded_import,
        "loaded_callback": loaded_callback,
        "loaded_warm": [p for p in WATCH if p in sys.modules],
    }


def _dump_built_models(path: str) -> None:
    """Which of our pydantic models had their validator built by import + the first callback."""
    from pydantic import BaseModel

    built = sorted({f"{obj.__module__}.{obj.__qualname__}" for name, module in list(sys.modules.items())
                    if name.startswith("chalicelib") for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == name
                    and obj.__pydantic_complete__})
    Path(path).write_text(json.dumps(built))


def _check(response: dict) -> None:
    if response.get("statusCode") != 200:
        raise SystemExit(f"callback answered {response.get('statusCode')}: {response.get('body')}")


def build_callback() -> str:
    sys.path.insert(0, str(ROOT))
    from chalicelib.wecom.crypto import CallbackCrypto

    ts = str(int(time.time()))
    crypto = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)
    query, body = crypto.encrypt_callback(
        PLAINTEXT.format(ts=ts).encode(), timestamp=ts, nonce=NONCE, agent_id="1000002"
    )
    return json.dumps({"query": query, "body": base64.b64encode(body).decode()})


# -- (c') local AWS: moto server in this process, set up with chalicelib's own functions ----------
def start_local_aws() -> tuple[object, dict[str, str]]:
    """Start moto's server on a free port, create table, queues, KMS key and the bench corp;
    return (server, env the children need)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**HANDLER_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    os.environ.update(CHILD_ENV)
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    sys.path.insert(0, str(ROOT))

    from chalicelib.api.core import hash_api_key, new_api_key
    from chalicelib.corps import items as corp_items
    from chalicelib.platform import aws, caches, queues, settings
    from chalicelib.platform import sealing as secrets
    from chalicelib.store import schema

    caches.clear_all()
    s = settings.get_settings()
    assert s.aws_endpoint_url == env["AWS_ENDPOINT_URL"], s
    schema.create_table(aws.client("dynamodb"), s.table_name)
    urls = queues.create_queues(aws.client("sqs"), s)
    # As infra/ deploys it: the queue URL in the environment (CloudFormation's Ref).
    env[f"{settings.EVENTS_QUEUE}_URL"] = os.environ[f"{settings.EVENTS_QUEUE}_URL"] = urls[s.events_queue]
    secrets.ensure_local_key(aws.client("kms"), s.kms_key_id)
    # What POST /api/v1/corps does (chalicelib.corps.routes.create_corp), minus the HTTP layer.
    now = int(time.time())
    sealed = secrets.seal(
        secrets.CorpSecrets(callback_token=TOKEN, encoding_aes_key=AES_KEY,
                            contact_secret="bench-contact-secret"),
        corp_id=CORP_ID,
    )
    corp_items.create_corp(
        corp_items.CorpItem(corp_id=CORP_ID, name="Bench Brand", time_zone="Asia/Shanghai",
                            sealed_secrets=sealed, created_at=now),
        corp_items.ApiKeyItem(key_hash=hash_api_key(new_api_key()), corp_id=CORP_ID,
                              label="initial", created_at=now),
    )
    return server, env


def proxy_event(corp_id: str, query: dict[str, str], body: str) -> dict:
    """An API Gateway REST (v1) Lambda proxy event, as API Gateway sends it to the function."""
    path = f"/wecom/{corp_id}/callback"
    request_id = str(uuid.uuid4())
    headers = {
        "Accept": "*/*",
        "Content-Type": "text/xml",
        "Host": "abc123defg.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "Mozilla/4.0",
        "X-Amzn-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
        "X-Forwarded-For": "101.226.103.0",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    now = time.time()
    return {
        "resource": RESOURCE,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": dict(query),
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": {"corp_id": corp_id},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "r3s0ur",
            "resourcePath": RESOURCE,
            "httpMethod": "POST",
            "extendedRequestId": request_id[:16],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/api{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "api",
            "domainPrefix": "abc123defg",
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": "101.226.103.0", "userAgent": "Mozilla/4.0"},
            "domainName": "abc123defg.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123defg",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def handler_events(count: int) -> Callable[[], dict[str, str]]:
    """Fresh callbacks for each child (the handler refuses timestamps over 5 minutes old)."""
    from chalicelib.wecom.crypto import CallbackCrypto

    crypto = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)

    def make() -> dict[str, str]:
        events = []
        for i in range(count):
            ts = str(int(time.time()))
            xml = PLAINTEXT.format(ts=ts).replace("CALLBACK_CODE_", f"CALLBACK_CODE_{i}_").encode()
            query, body = crypto.encrypt_callback(xml, timestamp=ts, nonce=uuid.uuid4().hex[:10],
                                                  agent_id="1000002")
            events.append(proxy_event(CORP_ID, query, body.decode()))
        return {"BENCH_EVENTS": json.dumps(events)}

    return make


def run_case(mode: str, runs: int, extra_env: dict[str, str] | Callable[[], dict[str, str]]) -> dict:
    """Median per numeric phase over `runs` fresh processes (+1 discarded warm-up), plus wall
    time; other values (request counts) are collected as a list, one entry per run."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    samples: dict[str, list] = {}
    for i in range(runs + 1):
        env = {**os.environ, **CHILD_ENV, **(extra_env() if callable(extra_env) else extra_env)}
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = (time.perf_counter() - start) * 1e3
        if out.returncode != 0:
            raise SystemExit(f"child {mode} failed:\n{out.stderr}")
        if i == 0:
            continue  # warm-up: writes .pyc files
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["wall"] = wall
        for key, value in result.items():
            samples.setdefault(key, []).append(value)
    return {
        key: statistics.median(values) if all(isinstance(v, (int, float)) for v in values) else values
        for key, values in samples.items()
    }


# -- reporting --------------------------------------------------------------------------------------
def _same(values: list) -> tuple[object, bool]:
    first = json.dumps(values[0], sort_keys=True)
    return values[0], all(json.dumps(v, sort_keys=True) == first for v in values)


def print_request_table(full: dict, runs: int) -> None:
    first, first_same = _same(full["counts_first"])
    warm_runs = full["counts_warm"]  # per run: list of per-callback dicts
    per_callback = [c for run in warm_runs for c in run]
    warm, warm_same = _same(per_callback) if per_callback else ({}, True)
    ops = sorted(set(first) | set(warm))
    print(f"(d) AWS requests per callback (botocore before-send hooks; same in all {runs} runs: "
          f"{'yes' if first_same and warm_same else 'NO, see below'})")
    print(f"    {'service.Operation':28s} {'first (cold)':>12s} {'warm':>6s}")
    for op in ops:
        print(f"    {op:28s} {first.get(op, 0):12d} {warm.get(op, 0):6d}")
    print(f"    {'total':28s} {sum(first.values()):12d} {sum(warm.values()):6d}"
          f"   (warm: {len(per_callback)} callbacks over {runs} processes)")
    if not (first_same and warm_same):
        print(f"    first per run: {full['counts_first']}")
        print(f"    warm per run:  {warm_runs}")
    minimum = {"sqs.SendMessage": 1}
    verdict = "meets" if warm_same and warm == minimum else "MISSES"
    print(f"    warm path {verdict} the minimum of one SQS SendMessage per callback")


def print_handler(full: dict, boto: dict, floor: dict) -> None:
    b = boto["total"]
    cpu_first = full["first_callback"] - full["first_http"]
    cpu_total = full["import"] + cpu_first
    print(
        f"(c') full handler, import app + first callback via app.app(proxy_event, context):\n"
        f"    import app                     {full['import']:7.1f} ms   = {full['import'] / b:.2f}x boto3"
        f"   (goal <= 1.5x)\n"
        f"    first callback (cold)          {full['first_callback']:7.1f} ms   of which "
        f"{full['first_http']:.1f} ms waiting on local moto (HTTP + moto's work)\n"
        f"    import + first callback        {full['total']:7.1f} ms   = {full['total'] / b:.2f}x boto3"
        f"   (wall {full['wall']:.1f} ms)\n"
        f"    ... CPU-only (minus AWS waits) {cpu_total:7.1f} ms   = {cpu_total / b:.2f}x boto3"
        f"   = floor {floor['total'] / b:.2f}x {(cpu_total - floor['total']) / b:+.2f}x"
        f"   (goal: within +0.30x of the floor measured in the same run)\n"
        f"    cross-check, process CPU time: import {full['import_cpu']:.1f} ms + first callback "
        f"{full['first_process']:.1f} ms = {(full['import_cpu'] + full['first_process']) / b:.2f}x"
        f" boto3 wall\n"
        f"    ... CPU time against CPU time (steadier on a busy machine): ours "
        f"{full['import_cpu'] + full['first_process']:.1f} ms = "
        f"{(full['import_cpu'] + full['first_process']) / boto['cpu']:.2f}x boto3's {boto['cpu']:.1f} ms, "
        f"floor {floor['cpu'] / boto['cpu']:.2f}x "
        f"{(full['import_cpu'] + full['first_process'] - floor['cpu']) / boto['cpu']:+.2f}x\n"
        f"    warm callback (median)         {full['warm_callback']:7.1f} ms   of which "
        f"{full['warm_http']:.1f} ms waiting on moto; CPU-only {full['warm_callback'] - full['warm_http']:.1f}"
        f" ms (process CPU {full['warm_process']:.1f} ms)"
    )
    after_import = full["loaded_import"][-1]
    after_first = full["loaded_callback"][-1]
    after_warm = full["loaded_warm"][-1]
    print(f"    loaded by import app: {', '.join(after_import) or '-'}; added by the first callback: "
          f"{', '.join(p for p in after_first if p not in after_import) or '-'}; added later: "
          f"{', '.join(p for p in after_warm if p not in after_first) or '-'}; never: "
          f"{', '.join(p for p in WATCH if p not in after_warm) or '-'}")
    print(
        "    note: the waits are loopback HTTP to moto's server (a thread of this bench) plus moto's\n"
        "    own handling; in Lambda they are AWS round trips instead (same-region DynamoDB/SQS/KMS:\n"
        "    a few ms each, plus a TLS handshake per new client). 'CPU-only' = handler wall time\n"
        "    minus the before-send..before-parse spans, i.e. what our code and botocore cost."
    )


# -- --importtime ---------------------------------------------------------------------------------
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def importtime_report(extra_env: Callable[[], dict[str, str]], top: int = 12) -> None:
    env = {**os.environ, **CHILD_ENV, **extra_env(), "BENCH_MARK_PHASES": "1"}
    cmd = [sys.executable, "-X", "importtime", str(Path(__file__).resolve()), "--child", "handler"]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"importtime child failed:\n{out.stderr[-4000:]}")
    phases: dict[str, list[tuple[int, int, int, str]]] = {}
    phase = None
    for line in out.stderr.splitlines():
        if line.startswith(PHASE_MARK):
            phase = line[len(PHASE_MARK):]
            continue
        m = _IMPORTTIME.match(line)
        if m and phase:
            self_us, cum_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
            phases.setdefault(phase, []).append((self_us, cum_us, indent // 2, name))
    print("\n-X importtime in one (c') child (times inflated by -X importtime itself):")
    for phase in ("import", "first_callback", "warm"):
        rows = phases.get(phase, [])
        total = sum(cum for _, cum, level, _ in rows if level == 0) / 1e3
        print(f"  phase {phase}: {len(rows)} modules, {total:.1f} ms importing")
        if not rows:
            continue
        by_pkg: dict[str, int] = {}
        for self_us, _, _, name in rows:
            by_pkg[name.split(".")[0]] = by_pkg.get(name.split(".")[0], 0) + self_us
        pkgs = sorted(by_pkg.items(), key=lambda kv: -kv[1])[:top]
        print("    by package (self): " + ", ".join(f"{p} {us / 1e3:.1f}" for p, us in pkgs))
        roots = sorted((r for r in rows if r[2] <= 1), key=lambda r: -r[1])[:top]
        print("    largest imports, nesting level 0-1 (cumulative ms): "
              + ", ".join(f"{name} {cum / 1e3:.1f}" for _, cum, _, name in roots))


# -- --profile ------------------------------------------------------------------------------------
def profile_report(extra_env: Callable[[], dict[str, str]], top: int = 10) -> None:
    """One (c') child under cProfile (which inflates every figure; read the shares, not the ms)."""
    import pstats
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "handler.prof")
        env = {**os.environ, **CHILD_ENV, **extra_env(), "BENCH_PROFILE": path}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "handler"]
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"profile child failed:\n{out.stderr[-4000:]}")
        stats = pstats.Stats(path).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
        built = json.loads(Path(path + ".models").read_text())
    total = max(ct for (_, _, _, ct, _) in stats.values())

    def cum(pred: Callable[[str, str], bool]) -> float:
        """Cumulative time of the outermost calls matching `pred` (nested matches not recounted)."""
        hits = {k for k in stats if pred(k[0], k[2])}
        return sum(v[3] for k, v in stats.items() if k in hits and not any(c in hits for c in v[4]))

    ours: dict[str, float] = {}
    for (file, _, _), (_, _, tottime, _, _) in stats.items():
        rel = Path(file).resolve()
        if rel.is_relative_to(ROOT / "chalicelib") or rel == ROOT / "app.py":
            key = str(rel.relative_to(ROOT))
            ours[key] = ours.get(key, 0.0) + tottime
    rows = [
        ("our code (self time in chalicelib/ + app.py)", sum(ours.values())),
        ("pydantic: building validators on the path", cum(lambda f, n: "pydantic" in f and n in (
            "complete_model_class", "model_rebuild", "_model_schema", "rebuild"))),
        ("pydantic: defining model classes (metaclass)", cum(
            lambda f, n: f.endswith("_model_construction.py") and n == "__new__")),
        ("botocore: creating clients", cum(lambda f, n: f.endswith("botocore/session.py") and n == "create_client")),
    ]
    print(f"\ncProfile of one (c') child, import app + first callback ({total * 1e3:.0f} ms under the profiler;"
          " shares, not absolute figures):")
    for label, seconds in rows:
        print(f"    {label:48s} {seconds * 1e3:7.1f} ms  {100 * seconds / total:5.1f}%")
    print("    our code by module (self): " + ", ".join(
        f"{name} {sec * 1e3:.1f}" for name, sec in sorted(ours.items(), key=lambda kv: -kv[1])[:top]))
    print(f"    our models built on the path ({len(built)}): {', '.join(m.split('chalicelib.')[-1] for m in built)}")


# -- --instructions ---------------------------------------------------------------------------------
def instructions_report(extra_env: Callable[[], dict[str, str]]) -> None:
    """Each case once under valgrind's callgrind, which counts instructions executed: the same
    count for the same code and inputs whatever else the machine runs (wall times of separate
    interpreters moved by ±0.5x of a boto3 import between consecutive runs on a shared machine)."""
    counts = {}
    for mode in ("pass", "boto3", "floor", "floor_requests", "handler"):
        env = {**os.environ, **CHILD_ENV, **extra_env()}
        child = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
        subprocess.run(child, env=env, cwd=ROOT, capture_output=True, check=False)  # .pyc files
        env = {**os.environ, **CHILD_ENV, **extra_env()}
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *child],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or not found:
            raise SystemExit(f"callgrind child {mode} failed:\n{out.stderr[-2000:]}")
        counts[mode] = int(found.group(1)) - (counts.get("pass") or 0)
    b = counts["boto3"]
    print(f"\ninstructions executed (valgrind callgrind; interpreter start subtracted; 1.00x = import boto3, "
          f"{b / 1e6:.0f}M):\n"
          f"    (a') the stack's floor                          {counts['floor'] / b:.2f}x\n"
          f"    (a'') the floor + the cold callback's 3 requests {counts['floor_requests'] / b:.2f}x   "
          f"(plain boto3: GetItem, KMS Decrypt, SQS SendMessage)\n"
          f"    (c') ours, import app + first callback          {counts['handler'] / b:.2f}x   "
          f"= floor {(counts['handler'] - counts['floor']) / b:+.2f}x, "
          f"= floor with requests {(counts['handler'] - counts['floor_requests']) / b:+.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warm", type=int, default=3, help="warm callbacks after the first (c')")
    parser.add_argument("--importtime", action="store_true",
                        help="also break (c') down with python -X importtime")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions under valgrind (steady on a busy machine)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one (c') child: where our part of the cold start goes")
    parser.add_argument("--no-cffi", action="store_true",
                        help="hide cffi from the children, as in the Lambda package")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        if os.environ.get("BENCH_HIDE"):
            sys.meta_path.insert(0, _Hide(set(os.environ["BENCH_HIDE"].split(","))))
        print(json.dumps(bench_cold_start_child(args.child)))
        return 0

    if args.no_cffi:
        CHILD_ENV["BENCH_HIDE"] = "cffi"
    # The Lambda package ships .pyc files (infra/package.py); a shell with PYTHONDONTWRITEBYTECODE
    # set would otherwise make every child compile our sources again (seen: +0.2x "of ours").
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    compileall.compile_dir(str(ROOT / "chalicelib"), quiet=1)
    compileall.compile_file(str(ROOT / "app.py"), quiet=1)
    print(f"python {sys.version.split()[0]}, median of {args.runs} fresh interpreters per case"
          + (", cffi hidden (as in the Lambda package)" if args.no_cffi else ""))
    base = run_case("pass", args.runs, {})
    print(f"interpreter start (no imports):    wall {base['wall']:7.1f} ms")

    boto = run_case("boto3", args.runs, {})
    print(
        f"(a) import boto3:                  {boto['total']:7.1f} ms   "
        f"(wall {boto['wall']:.1f} ms)   = 1.00x boto3"
    )

    floor = run_case("floor", args.runs, {})
    print(
        f"(a') the stack's floor:            {floor['total']:7.1f} ms   "
        f"(wall {floor['wall']:.1f} ms)   = {floor['total'] / boto['total']:.2f}x boto3"
        f"   (chalice + pydantic + boto3 + 3 clients, nothing of ours)"
    )

    if not (ROOT / "app.py").exists():
        print("(b) import app: app.py not found, skipped")
    else:
        app = run_case("app", args.runs, {})
        print(
            f"(b) import app:                    {app['total']:7.1f} ms   "
            f"(wall {app['wall']:.1f} ms)   = {app['total'] / boto['total']:.2f}x boto3"
        )

    proto = run_case("protocol", args.runs, {"BENCH_CALLBACK": build_callback()})
    print(
        f"(c) protocol path:                 {proto['total']:7.1f} ms   "
        f"(wall {proto['wall']:.1f} ms)   = {proto['total'] / boto['total']:.2f}x boto3"
    )
    print(
        f"    import crypto+events {proto['import']:.1f} ms, first verify+decrypt+parse "
        f"{proto['first_callback']:.1f} ms (lazy pycryptodome import, pydantic schema build)"
    )

    if not (ROOT / "app.py").exists():
        print("(c') full handler: app.py not found, skipped")
        return 0
    server, aws_env = start_local_aws()
    try:
        events = handler_events(1 + max(0, args.warm))

        def child_env() -> dict[str, str]:
            return {**aws_env, **events()}

        full = run_case("handler", args.runs, child_env)
        print_handler(full, boto, floor)
        print_request_table(full, args.runs)
        if args.importtime:
            importtime_report(child_env)
        if args.profile:
            profile_report(child_env)
        if args.instructions:
            instructions_report(child_env)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
