"""Count the AWS requests botocore sends, keyed "service.Operation", through botocore's event hooks.

    from bench.aws_requests import count_aws_requests

    with count_aws_requests() as requests:
        ...                                   # code that calls AWS through boto3 / botocore
    requests          # Counter({"dynamodb.GetItem": 1, "kms.Decrypt": 1, "sqs.SendMessage": 1})
    requests.total    # 3 HTTP requests (retries count: each attempt is one request)
    requests.http_ms  # wall ms between each request's `before-send` and `before-parse` events

How: every botocore client created after `install()` gets two handlers on its own event emitter
(`client.meta.events`): `before-send` (registered first, so it runs before any stub that answers
the request itself, e.g. moto's `mock_aws`) counts the request and starts a clock; `before-parse`
(registered last; botocore emits it once the response body is read) stops it. So `http_ms` is the
round trip plus the server's work (moto's, locally), not botocore's own serialising or parsing.
Clients that already exist are not seen: pass them to `count_aws_requests(*clients)`.

Importing this module imports only the standard library, and `install()` does not import botocore:
when botocore is not loaded yet, it waits for `botocore.session` to be imported (a `sys.meta_path`
finder that patches `Session.create_client` right after the module runs), so a cold-start bench
can count requests without paying botocore's import before its clock starts.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["AwsRequests", "count_aws_requests", "install", "uninstall", "watch_client"]

_SEND_ID = "bench-aws-requests-before-send"
_PARSE_ID = "bench-aws-requests-before-parse"


class AwsRequests(Counter):
    """Requests by "service.Operation" (a Counter) plus the wall time spent waiting on them."""

    def __init__(self) -> None:
        super().__init__()
        self.http_ms = 0.0

    @property
    def total(self) -> int:
        return sum(self.values())


_active: list[AwsRequests] = []
_started = threading.local()
_lock = threading.Lock()
_installed = False


def _operation(event_name: str) -> str:
    # "before-send.dynamodb.GetItem" -> "dynamodb.GetItem" (service id hyphenised by botocore)
    return event_name.split(".", 1)[1]


def _on_before_send(event_name: str = "", **_: Any) -> None:
    key = _operation(event_name)
    for counter in list(_active):
        counter[key] += 1
    _started.at = time.perf_counter()
    return None  # never answer the request ourselves


def _on_before_parse(**_: Any) -> None:
    start = getattr(_started, "at", None)
    if start is None:
        return
    _started.at = None
    elapsed = (time.perf_counter() - start) * 1e3
    for counter in list(_active):
        counter.http_ms += elapsed


def watch_client(client: Any) -> Any:
    """Register the counting handlers on one client (idempotent); returns the client."""
    events = client.meta.events
    events.register_first("before-send", _on_before_send, unique_id=_SEND_ID)
    events.register_last("before-parse", _on_before_parse, unique_id=_PARSE_ID)
    return client


def _patch_session_module(module: Any) -> None:
    session_cls = module.Session
    if getattr(session_cls.create_client, "_bench_aws_requests", False):
        return
    original = session_cls.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        return watch_client(original(self, *args, **kwargs))

    create_client._bench_aws_requests = True  # type: ignore[attr-defined]
    create_client.__wrapped__ = original  # type: ignore[attr-defined]
    session_cls.create_client = create_client


class _PatchOnImport:
    """A meta-path finder that only acts on `botocore.session`: it lets the real finders locate
    the module, then wraps the loader so the module is patched as soon as it has run."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "botocore.session":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch_session_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)

        loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    """Make every botocore client created from now on countable (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        module = sys.modules.get("botocore.session")
        if module is not None:
            _patch_session_module(module)
        else:
            sys.meta_path.insert(0, _PatchOnImport())


def uninstall() -> None:
    """Undo `install()` for clients created from now on (tests; clients already watched keep
    their handlers, which count nothing outside a `count_aws_requests` block)."""
    global _installed
    with _lock:
        _installed = False
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PatchOnImport)]
        module = sys.modules.get("botocore.session")
        if module is not None:
            original = getattr(module.Session.create_client, "__wrapped__", None)
            if original is not None:
                module.Session.create_client = original


@contextmanager
def count_aws_requests(*clients: Any) -> Iterator[AwsRequests]:
    """Count the requests sent inside the block by clients created after `install()` (called
    here) and by `clients`. Nested blocks each count everything sent inside them."""
    install()
    for client in clients:
        watch_client(client)
    counter = AwsRequests()
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)
