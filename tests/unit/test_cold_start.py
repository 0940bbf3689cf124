"""What a Lambda instance pays before its first callback: kept small by construction.

The figures are bench/cold_start.py's (docs/performance.md); these tests pin the properties
behind them, so a change that loses one fails here rather than only in the bench.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_IMPORT_APP = """
import json, sys
import app
from chalicelib.platform.model import Model

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

models = list(subclasses(Model))
print(json.dumps({
    "routes": sum(len(methods) for methods in app.app.routes.values()),
    "models": sorted(m.__module__ for m in models),
    "built": sorted(m.__qualname__ for m in models if m.__pydantic_complete__),
    "loaded": sorted(p for p in ("boto3", "botocore", "httpx", "Crypto") if p in sys.modules),
}))
"""


def test_importing_app_builds_no_model_and_loads_no_heavy_package():
    out = subprocess.run([sys.executable, "-c", _IMPORT_APP], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={"PATH": "", "AWS_DEFAULT_REGION": "us-east-1"})
    result = json.loads(out.stdout)
    assert result["routes"] > 30  # every operator route is registered...
    # ...naming its models lazily: the API's request and view models are not even defined (only
    # the spine's envelope and pages), and no model is built until a request validates one.
    assert set(result["models"]) <= {"chalicelib.api.core", "chalicelib.platform.model"}, result["models"]
    assert result["built"] == []
    assert result["loaded"] == []  # boto3, httpx and pycryptodome wait for their first use


def test_clients_only_for_the_services_chalicelib_declares(aws):
    from chalicelib.platform import aws as aws_clients

    for service in aws_clients.SERVICES:  # each declared service's model loads
        assert aws_clients.client(service).meta.service_model.service_name == service
    with pytest.raises(ValueError, match="SERVICES"):
        aws_clients.client("s3")


def test_session_does_not_list_botocore_data_to_find_a_service(aws, monkeypatch):
    """botocore lists ~450 service directories to check a name before loading its model."""
    import os

    from chalicelib.platform import aws as aws_clients
    from chalicelib.platform import caches

    caches.clear_all()
    listed: list[str] = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(str(path)) or real_listdir(path))
    aws_clients.client("dynamodb")
    assert len(listed) < 20, listed[:20]
