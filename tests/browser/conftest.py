"""The browser suite's world: the whole local stack on free ports (tests.helpers.local_stack, as
tests/e2e start it) with the sandbox's demo corp registered and 1,000 more customers waiting in the
sandbox for a sync, and one headless Chromium (tests/browser/cdp.py) for the module. Screenshots go
to tests/browser/screenshots/ (ignored by git) for a reviewer to look at."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SEEDED_CUSTOMERS = 1000


def seed_customers(sb, corp_id: str, n: int) -> None:
    """n customers of the demo staff in the sandbox (WeCom's side only: a sync brings them in)."""
    from sandbox.state import Customer, Relation

    corp = sb.world.corp(corp_id)
    staff = ["alice", "bob", "carol"]
    t0 = int(time.time()) - 86400 * 30
    with sb.world.lock:
        for i in range(n):
            ext = f"wmseed{i:026d}"
            corp.customers[ext] = Customer(ext, f"Seeded {i}", type=1, gender=i % 3, unionid=f"oseed{i:023d}")
            corp.relations[(ext, staff[i % 3])] = Relation(staff[i % 3], ext, t0 + i * 60)


@contextlib.contextmanager
def running_stack(seeded: int = SEEDED_CUSTOMERS) -> Iterator:
    """The local stack on free ports with the demo corp registered and `seeded` customers waiting in the
    sandbox for a sync; the environment as it was afterwards (bench/console_load.py starts it too)."""
    from tests.helpers import local_stack

    with local_stack(admin_key="admin-browser-key") as local:
        local.register_demo_corp()
        seed_customers(local.sandbox_app, local.demo["corp_id"], seeded)
        yield local


@pytest.fixture(scope="module")
def stack():
    with running_stack() as local:
        yield local


@pytest.fixture(scope="module")
def browser():
    from tests.browser.cdp import Browser

    b = Browser()
    try:
        yield b
    finally:
        b.close()
