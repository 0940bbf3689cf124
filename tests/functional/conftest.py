from __future__ import annotations

import pytest


@pytest.fixture
def chalice_client(aws):
    """The real app behind chalice's test client, on moto in-process."""
    from chalice.test import Client

    from chalicelib import corps
    from chalicelib.api import core

    corps.forget_runtime()
    core.reset_admin_key()
    import app as app_module

    with Client(app_module.app) as client:
        yield client
    corps.forget_runtime()
