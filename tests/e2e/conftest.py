from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def stack():
    """The whole local stack (moto server, sandbox, chalice local, queue workers) on free ports."""
    from infra.local_stack import LocalStack, free_port
    from tests.conftest import reset_caches

    saved = dict(os.environ)
    os.environ.pop("WECOM_API_BASE", None)
    local = LocalStack(http_port=free_port(), moto_port=free_port(), sandbox_port=free_port(),
                       admin_key="admin-e2e-key")
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        reset_caches()
