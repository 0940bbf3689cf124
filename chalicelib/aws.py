"""boto3 clients, built lazily once per Lambda instance.

boto3 costs ~170 ms to import and ~50 ms per client, so nothing here runs at import time; a
client is made on first use and kept for the life of the instance. `AWS_ENDPOINT_URL` (moto's
server locally) is honoured by boto3 itself; we pass it explicitly so settings stay the one source.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from chalicelib.settings import get_settings


@cache
def _session() -> Any:
    # One session for all clients: each new session reloads endpoint and partition data
    # (measured: three clients 135-150 ms with a session each, 66-84 ms sharing one).
    import boto3

    return boto3.session.Session()


_lock = threading.Lock()


@cache
def client(service: str) -> Any:
    with _lock:  # creating clients from one session is not thread-safe (the local stack has threads)
        return _new_client(service)


def _new_client(service: str) -> Any:
    from botocore.config import Config

    settings = get_settings()
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return _session().client(
        service, endpoint_url=settings.aws_endpoint_url, config=config
    )


def reset_clients() -> None:
    """Tests switch between moto back-ends; forget the clients built for the last one."""
    client.cache_clear()
    _session.cache_clear()
