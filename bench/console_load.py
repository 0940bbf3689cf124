"""The operator console's pages, each opened in headless Chromium on the local stack with 1,000 customers.

    python bench/console_load.py [--customers 1000] [--rounds 3] [--json]

Starts the local stack as the browser tests do (tests/browser/conftest.py `running_stack`: moto's
server, the WeCom sandbox, `chalice local`, the queue pollers; the demo corp registered), puts
`--customers` customers of the demo staff in the sandbox and syncs them in (POST /customer-syncs,
waited for until done), signs in to the console with the demo corp's key and opens every page
`--rounds` times in turn (the first round loads the page's modules, later ones have them cached, as
an operator moving between pages does). Per page it prints the median and worst of:

- loaded: the page's own measure (app.js, `main.dataset.loadedMs`): from the route change to the page
  drawn (its module imported, its API requests answered, the DOM built);
- idle: from the route change, seen from here over the DevTools protocol, until the page is drawn and
  every request it made has answered (includes the protocol's round trips and 0.1 s polling);
- slowest API: the longest of the page's API requests, sent to last byte (the server's share);
- API requests and bytes (encoded, headers included) the page made to show itself (a refresh every
  few seconds, after it is drawn, is not counted). The browser test checks these against a budget
  (tests/browser/test_console.py `API_BUDGET`); this bench only measures.

The figures are the machine's: on a shared 2-core machine, run it when it is quiet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sync_customers(stack, expected: int, timeout: float = 900) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {stack.demo['api_key']}"}
    started = httpx.post(f"{stack.base_url}/api/v1/customer-syncs", headers=headers, json={}, timeout=30)
    started.raise_for_status()
    job_id = started.json()["job_id"]
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{stack.base_url}/api/v1/customer-syncs/{job_id}", headers=headers, timeout=30).json()
        if job["status"] != "running":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the customer sync did not finish in {timeout} s: {job}")
        time.sleep(1)  # polling interval
    if job["status"] != "done" or job["progress"].get("new_customers", 0) < expected:
        raise RuntimeError(f"the customer sync did not bring the customers in: {job}")
    return job


def measure(customers: int, rounds: int) -> dict:
    import os

    from tests.browser.cdp import Browser
    from tests.browser.conftest import running_stack
    from tests.browser.test_console import ADMIN_PAGES, CORP_PAGES, load_page, sign_in, switch_language

    load = [os.getloadavg()[0]]
    with running_stack(customers) as stack:
        t0 = time.monotonic()
        job = sync_customers(stack, customers)
        synced_s = time.monotonic() - t0
        browser = Browser()
        try:
            loads: dict[str, list[dict]] = {}
            for key, pages in ((stack.demo["api_key"], CORP_PAGES), (stack.admin_key, ADMIN_PAGES)):
                sign_in(browser, stack, key)
                switch_language(browser, "en")
                for _ in range(rounds):
                    for page in pages:
                        loads.setdefault(page, []).append(load_page(browser, stack, page))
            errors = list(browser.console_errors)
        finally:
            browser.close()
    def spread(runs: list[dict], key: str) -> dict:
        return {"median": statistics.median(r[key] for r in runs), "max": max(r[key] for r in runs)}

    pages = {}
    for page, runs in loads.items():
        pages[page] = {
            "loaded_ms": spread(runs, "loaded_ms"), "idle_ms": spread(runs, "idle_ms"),
            "api_ms": spread(runs, "api_ms"),
            "api_requests": max(r["api_requests"] for r in runs),
            "api_bytes": max(r["api_bytes"] for r in runs),
            "api": runs[-1]["api"],
        }
    load.append(os.getloadavg()[0])
    return {"customers": customers, "rounds": rounds, "load": [round(x, 1) for x in load],
            "sync_s": round(synced_s, 1), "sync": job["progress"],
            "console_errors": errors, "pages": pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(args.customers, args.rounds)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['customers']} customers synced in {result['sync_s']} s ({result['sync']}); "
          f"{result['rounds']} rounds per page; load average before / after: {result['load']}")
    print(f"{'page':<15} {'loaded ms (median / max)':>25} {'idle ms (median / max)':>24} "
          f"{'slowest API ms (median / max)':>30} {'API requests':>13} {'API bytes':>10}")
    for page, p in result["pages"].items():
        print(f"{page:<15} {p['loaded_ms']['median']:>12.0f} / {p['loaded_ms']['max']:<10} "
              f"{p['idle_ms']['median']:>11.0f} / {p['idle_ms']['max']:<10} "
              f"{p['api_ms']['median']:>17.0f} / {p['api_ms']['max']:<10} {p['api_requests']:>13} {p['api_bytes']:>10}")
    for page, p in result["pages"].items():
        print(f"  {page}: {', '.join(p['api'])}")
    if result["console_errors"]:
        print("console errors:", *result["console_errors"], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
