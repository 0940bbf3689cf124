"""Cold-start cost in fresh interpreters: median of N runs per case.

    python bench/cold_start.py [--runs 7]

(a) ``import boto3``                     the floor every Lambda of ours pays
(b) ``import app``                       the Chalice app at the repo root (skipped if absent)
(c) protocol path                        ``import chalicelib.wecom.crypto`` + ``events``, then build
                                         ``CallbackCrypto``, ``decrypt_callback`` and ``parse_event``
                                         for one encrypted add_external_contact callback (this
                                         includes pycryptodome's lazy import and pydantic's deferred
                                         schema build). TODO(lead): extend to the full handler.

Each case runs in a new ``python`` process (``-X frozen_modules`` defaults, .pyc present after
one discarded warm-up run) that times itself with ``perf_counter`` and prints JSON; the process
wall time (interpreter start included) is shown too. Env: AWS_DEFAULT_REGION=us-east-1, fake
credentials, so nothing touches AWS.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "QDG6eK"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
PLAINTEXT = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>"
    "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
    "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
    "<UserID><![CDATA[zhangsan]]></UserID>"
    "<ExternalUserID><![CDATA[wmAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>"
    "<State><![CDATA[ch_2024spring]]></State>"
    "<WelcomeCode><![CDATA[CALLBACK_CODE_9f3c2a1b7e6d5c4b3a29]]></WelcomeCode></xml>"
)
CHILD_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "PYTHONPATH": str(ROOT),
}


def bench_cold_start_child(mode: str) -> dict[str, float]:
    """Run in the fresh interpreter: time one cold-start case, return milliseconds by phase."""
    t0 = time.perf_counter()
    if mode == "pass":
        return {"total": 0.0}
    if mode == "boto3":
        import boto3  # noqa: F401

        return {"total": (time.perf_counter() - t0) * 1e3}
    if mode == "app":
        import app  # noqa: F401

        return {"total": (time.perf_counter() - t0) * 1e3}
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


def build_callback() -> str:
    sys.path.insert(0, str(ROOT))
    from chalicelib.wecom.crypto import CallbackCrypto

    ts = str(int(time.time()))
    crypto = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)
    query, body = crypto.encrypt_callback(
        PLAINTEXT.format(ts=ts).encode(), timestamp=ts, nonce="1372623149", agent_id="1000002"
    )
    return json.dumps({"query": query, "body": base64.b64encode(body).decode()})


def run_case(mode: str, runs: int, extra_env: dict[str, str]) -> dict[str, float]:
    """Median per phase over `runs` fresh processes (+1 discarded warm-up), plus wall time."""
    env = {**os.environ, **CHILD_ENV, **extra_env}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    samples: dict[str, list[float]] = {}
    for i in range(runs + 1):
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
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(bench_cold_start_child(args.child)))
        return 0

    print(f"python {sys.version.split()[0]}, median of {args.runs} fresh interpreters per case")
    base = run_case("pass", args.runs, {})
    print(f"interpreter start (no imports):    wall {base['wall']:7.1f} ms")

    boto = run_case("boto3", args.runs, {})
    print(
        f"(a) import boto3:                  {boto['total']:7.1f} ms   "
        f"(wall {boto['wall']:.1f} ms)   = 1.00x boto3"
    )

    if (ROOT / "app.py").exists():
        app = run_case("app", args.runs, {})
        print(
            f"(b) import app:                    {app['total']:7.1f} ms   "
            f"(wall {app['wall']:.1f} ms)   = {app['total'] / boto['total']:.2f}x boto3"
        )
    else:
        print("(b) import app: app.py not found, skipped")

    proto = run_case("protocol", args.runs, {"BENCH_CALLBACK": build_callback()})
    print(
        f"(c) protocol path:                 {proto['total']:7.1f} ms   "
        f"(wall {proto['wall']:.1f} ms)   = {proto['total'] / boto['total']:.2f}x boto3"
    )
    print(
        f"    import crypto+events {proto['import']:.1f} ms, first verify+decrypt+parse "
        f"{proto['first_callback']:.1f} ms (lazy pycryptodome import, pydantic schema build)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
