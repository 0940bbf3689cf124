"""``python -m sandbox --port 8700 [--seed-demo] [--callback-url URL]``: the WeCom sandbox."""

from __future__ import annotations

import argparse
import threading

from sandbox.app import Sandbox
from sandbox.demo import describe, seed_demo
from sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed-demo", action="store_true", help="register the demo corp")
    parser.add_argument("--callback-url", default=None, help="the demo corp's callback URL")
    args = parser.parse_args(argv)
    sb = Sandbox(public_url=f"http://{args.host}:{args.port}")
    server = serve(args.port, host=args.host, sandbox=sb)
    print(f"WeCom sandbox on {server.url}  (API base {server.url}/cgi-bin, control {server.url}/sandbox)")
    if args.seed_demo:
        print(describe(seed_demo(sb, callback_url=args.callback_url)), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
