"""boto3 clients, built lazily once per Lambda instance.

boto3 costs ~170 ms to import and ~50 ms per client, so nothing here runs at import time; a
client is made on first use and kept for the life of the instance. `AWS_ENDPOINT_URL` (moto's
server locally) is honoured by boto3 itself; we pass it explicitly so settings stay the one source.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from chalicelib.settings import get_settings


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return boto3.session.Session().client(
        service, endpoint_url=settings.aws_endpoint_url, config=config
    )


def reset_clients() -> None:
    """Tests switch between moto back-ends; forget the clients built for the last one."""
    client.cache_clear()
