"""`make run` tells where the operator console is and which key signs in to it."""

from __future__ import annotations


def test_the_banner_names_the_console_url_and_the_demo_corps_key():
    from infra.local_stack import LocalStack

    stack = LocalStack(http_port=8123, admin_key="admin-x")
    stack.demo = {"corp_id": "wwdemo", "api_key": "scrm_demo-key"}
    lines = stack.banner().splitlines()
    console = next(line for line in lines if line.strip().startswith("console:"))
    assert "http://127.0.0.1:8123/console" in console and "scrm_demo-key" in console
    assert lines[-1].strip().startswith("local data:")  # still last (tests/e2e/test_local_stack_state.py)
