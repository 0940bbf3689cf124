from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def stack():
    """The whole local stack (moto server, sandbox, chalice local, queue workers) on free ports."""
    from tests.helpers import local_stack

    with local_stack(admin_key="admin-e2e-key") as local:
        yield local
