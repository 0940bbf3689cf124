"""Deeply nested JSON in any request body is a 400 (not a 500 from a RecursionError), and changes nothing."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import ADMIN, CORP_ID, register

DEPTH = 1000
BODIES = {
    "arrays": "[" * DEPTH + "]" * DEPTH,
    "objects": '{"a":' * DEPTH + "1" + "}" * DEPTH,
    "inside_a_field": '{"name": ' + "[" * DEPTH + "]" * DEPTH + "}",
    "ten_thousand": "[" * 10_000 + "]" * 10_000,
}


def _routes_with_a_body() -> list[tuple[str, str, str]]:
    import app  # noqa: F401  (registers every route)
    from chalicelib.api.core import ENDPOINTS

    return sorted({(spec.method, spec.path, spec.auth) for spec in ENDPOINTS if spec.body is not None})


def _table_count(settings) -> int:
    from chalicelib.platform import aws

    return aws.client("dynamodb").scan(TableName=settings.table_name, Select="COUNT")["Count"]


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_deeply_nested_bodies_are_400_on_every_route_with_a_body(shape, chalice_client, aws):
    corp_key = register(chalice_client)["api_key"]
    routes = _routes_with_a_body()
    assert {m for m, _, _ in routes} >= {"POST", "PATCH", "PUT"}
    before = _table_count(aws)
    for method, path, auth in routes:
        url = re.sub(r"\{\w+\}", "x1", path.replace("{corp_id}", CORP_ID).replace("{queue}", "events"))
        headers = ADMIN if auth == "admin" else {**ADMIN, "Authorization": f"Bearer {corp_key}"}
        resp = getattr(chalice_client.http, method.lower())(url, headers=headers, body=BODIES[shape])
        assert resp.status_code == 400, (method, path, resp.body)
        assert json.loads(resp.body)["error"]["code"] in ("invalid_request", "validation_error"), (method, path)
    assert _table_count(aws) == before
