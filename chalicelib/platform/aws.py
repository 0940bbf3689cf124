"""boto3 clients, built lazily once per Lambda instance.

boto3 costs ~80 ms to import and 5-25 ms per client (bench/cold_start.py), so nothing here runs
at import time; a client is made on first use and kept for the life of the instance.
`AWS_ENDPOINT_URL` (moto's server locally) is honoured by boto3 itself; we pass it explicitly so
settings stay the one source.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from chalicelib.platform import caches
from chalicelib.platform.settings import get_settings

# The AWS services chalicelib calls. botocore checks that a service exists before loading its
# model by listing every service directory it ships (~450 directories, ~2,800 stat calls: ~10 ms
# of each cold start); these are known, so the session's loader only needs to know them.
SERVICES = ("dynamodb", "kms", "sqs", "ssm")


@cache
def _session() -> Any:
    # One session for all clients: each new session reloads endpoint and partition data
    # (measured: three clients 135-150 ms with a session each, 66-84 ms sharing one).
    import boto3
    import botocore.session
    from botocore.loaders import Loader

    class KnownServicesLoader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            return list(SERVICES)

    core = botocore.session.get_session()
    data_path = core.get_config_variable("data_path")  # AWS_DATA_PATH, as botocore's own loader
    extra = [os.path.expanduser(p) for p in (data_path or "").split(os.pathsep) if p]
    core.register_component("data_loader", KnownServicesLoader(extra_search_paths=extra))
    return boto3.session.Session(botocore_session=core)


_lock = threading.Lock()
_factory: Callable[[str], Any] | None = None


def use_clients(factory: Callable[[str], Any] | None) -> None:
    """Benches and tests: answer some services in-process (bench/fake_aws.py). `factory(service)`
    returns the stand-in, or None to leave that service to boto3; None as the factory restores
    boto3 for all. Consulted only when a client is built (then cached): nothing on the hot path."""
    global _factory
    _factory = factory
    client.cache_clear()


@cache
def client(service: str) -> Any:
    if service not in SERVICES:
        raise ValueError(f"add {service!r} to chalicelib.platform.aws.SERVICES (and to the IAM policy)")
    with _lock:  # creating clients from one session is not thread-safe (the local stack has threads)
        return _new_client(service)


def _new_client(service: str) -> Any:
    if _factory is not None and (stand_in := _factory(service)) is not None:
        return stand_in
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


def _clear() -> None:
    """Tests switch between moto back-ends; forget the clients built for the last one."""
    client.cache_clear()
    _session.cache_clear()


caches.register("aws:clients", _clear)
