"""Schemathesis against the OpenAPI document that `make run` serves, over real HTTP: every request
the document allows is taken (never refused as malformed), no answer is a server error, and every
answer's status, content type and body are the ones the document lists.

Bounded and deterministic: a fixed number of generated requests per operation (hypothesis
derandomized, no example database), the positive phase only, no timing in any check.

A schema-valid request may still be refused for what JSON Schema cannot say, and only that is
taken as accepted data: a reference to something that does not exist (unknown staff or tags,
a cursor this listing did not give out, an id WeCom does not know) and the rules between fields
or against the clock that `CROSS_FIELD` lists (each stated in the field's description).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

MAX_EXAMPLES = 8

# 400 codes that refuse a reference, not a shape.
REFERENCE_CODES = {"invalid_channel_code", "invalid_group_code", "unknown_tags", "wecom_error", "unknown_groups",
                   # handovers and churn alerts: staff, customers and segments that do not exist or are not
                   # in the state named (left / in service), a selection with nobody, a corp without its app
                   "unknown_staff", "unknown_customers", "unknown_segment", "staff_resigned", "staff_in_service",
                   "nothing_to_hand_over", "agent_required"}
# (method, path) -> fields (dotted, list indexes as N) whose rules relate them to another field or
# to the time of the request; a 400 `validation_error` naming only these is the documented refusal.
CROSS_FIELD: dict[tuple[str, str], set[str]] = {
    ("POST", "/api/v1/channel-codes"): {"valid_until", "schedule.N.end"},
    ("PATCH", "/api/v1/channel-codes/{state}"): {"valid_until", "schedule.N.end"},
    ("GET", "/api/v1/stats/contacts"): {"to"},
    ("GET", "/api/v1/stats/groups"): {"to"},
    ("POST", "/api/v1/group-codes"): {"windows.N", "windows.N.end"},
    ("PATCH", "/api/v1/group-codes/{code_id}"): {"windows.N", "windows.N.end"},
    ("POST", "/api/v1/customers/tags"): {"changes.N.remove"},
    ("POST", "/api/v1/handovers"): {"takeover_ids", "segment_id", "message"},
    ("POST", "/api/v1/handovers/unassigned"): {"takeover_ids"},
    ("PUT", "/api/v1/churn-alerts"): {"managers"},
    ("GET", "/api/v1/churn"): {"until"},
    ("POST", "/api/v1/customers/{customer_id}/tags"): {"remove"},
    ("POST", "/toolbar/{corp_id}/customers/{customer_id}/tags"): {"remove"},
    # send_at against the clock; {customer_name} and the Moments rules against the target's kind
    ("POST", "/api/v1/broadcasts"): {"send_at", "content.text", "content.attachments", "target.groups",
                                     "target.customers.filter.tags", "filter.added_to"},
    # SOP rules: a date against the clock and the zone (DST), the event against the target's kind,
    # reminders against the corp's agent id, a rule given twice, content against the target's kind
    **{(method, path): {"rules.N", "rules.N.when", "rules.N.whom", "rules.N.content.text",
                        "rules.N.content.attachments", "filter.tags", "filter.added_to"}
       for method, path in (("POST", "/api/v1/sop-calendars"), ("PATCH", "/api/v1/sop-calendars/{calendar_id}"))},
    **{(method, path): {"filter.tags", "filter.added_to"}
       for method, path in (("POST", "/api/v1/segments"), ("PATCH", "/api/v1/segments/{segment_id}"),
                            ("POST", "/api/v1/segments/preview"))},
}
PLACEHOLDER_RULE = "unknown placeholder(s)"


def _refusal(case: Any, response: Any) -> str | None:
    """Why this answer refuses a schema-valid request as malformed; None when it does not."""
    if response.status_code not in (400, 413, 422):
        return None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} without the error envelope"
    code = error.get("code")
    if code in REFERENCE_CODES:
        return None
    if code == "invalid_request" and "cursor" in (case.query or {}):
        return None
    if code == "validation_error":
        allowed = CROSS_FIELD.get((case.method.upper(), case.path), set())
        # message text: a {...} other than the known placeholders is refused (stated in the text's
        # description; a JSON Schema pattern for it would need lookarounds)
        details = [d for d in error.get("details") or [] if PLACEHOLDER_RULE not in d.get("message", "")]
        fields = {re.sub(r"\.\d+", ".N", d.get("field", "")) for d in details}
        if error.get("details") and fields <= allowed:
            return None
    return f"{response.status_code} {code}: {error.get('message')} {error.get('details') or ''}"


@pytest.fixture(scope="module")
def api(stack):
    """The demo corp of `make run` (its key), and things for the path ids to name."""
    import httpx

    from sandbox.demo import DEMO_STAFF

    demo = stack.register_demo_corp()
    corp = {"Authorization": f"Bearer {demo['api_key']}"}
    http = httpx.Client(base_url=stack.base_url, timeout=30)
    staff = [s["userid"] for s in DEMO_STAFF if s.get("activated", True)]
    tags = http.post("/api/v1/tags", headers=corp, json={"group_name": "fuzz", "names": ["seed"]})
    assert tags.status_code == 201, tags.text
    # A corp of its own for the corps operations: changing the demo corp's secret would cut it off WeCom.
    from tests.helpers import corp_body

    other = http.post("/api/v1/corps", headers={"Authorization": f"Bearer {stack.admin_key}"},
                      json=corp_body("wwfuzz"))
    assert other.status_code == 201, other.text
    code = http.post("/api/v1/channel-codes", headers=corp,
                     json={"name": "fuzz", "state": "fuzz-seed", "staff_ids": staff[:1]})
    assert code.status_code == 201, code.text
    return {
        "spec": http.get("/api/v1/openapi.json").json(),
        "base_url": stack.base_url,
        "keys": {"corp": demo["api_key"], "admin": stack.admin_key},
        "ids": {"corp_id": "wwfuzz", "state": "fuzz-seed", "toolbar_corp_id": demo["corp_id"],
                "tag_id": tags.json()["tags"][0]["tag_id"]},
    }


def _fuzz(op: Any, base_url: str, headers: dict[str, str], path_ids: dict[str, str]) -> list[str]:
    """MAX_EXAMPLES schema-valid requests to one operation: what went wrong, once each."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.specs.openapi import checks

    conformance = [checks.status_code_conformance, checks.content_type_conformance,
                   checks.response_schema_conformance]
    seen: list[str] = []

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(path_parameters=path_ids or None))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers)
        where = f"{case.method.upper()} {case.formatted_path} {case.query or ''} {case.body!r}"[:600]
        if response.status_code >= 500:
            seen.append(f"server error {response.status_code} {response.text[:300]} <- {where}")
            return
        refusal = _refusal(case, response)
        if refusal:
            seen.append(f"schema-valid request refused: {refusal} <- {where}")
        try:
            case.validate_response(response, checks=conformance, headers=headers)
        except Exception as exc:  # schemathesis's FailureGroup: the answer is not the documented one
            seen.append(f"answer does not match the document: {str(exc)[:500]} <- {where}")

    run()
    return list(dict.fromkeys(seen))


def test_the_api_takes_what_its_openapi_document_allows(api):
    import schemathesis

    import app  # noqa: F401 - registers every endpoint
    from chalicelib.api.core import ENDPOINTS

    auth = {(ep.method, ep.path): ep.auth for ep in ENDPOINTS}
    failures: list[str] = []
    for result in schemathesis.openapi.from_dict(api["spec"]).get_all_operations():
        op = result.ok()
        method = op.method.upper()
        who = auth.get((method, op.path), "public")
        headers = {} if who == "public" else {
            "Authorization": f"Bearer {api['keys']['admin' if who == 'admin' else 'corp']}"}
        # Real ids (except to delete them): the body is then checked past the lookup.
        path_ids = {} if method == "DELETE" else {
            p.name: api["ids"][p.name] for p in op.path_parameters if p.name in api["ids"]}
        if op.path.startswith("/toolbar/"):  # the chat toolbar names its corp in the path: one WeCom knows
            path_ids["corp_id"] = api["ids"]["toolbar_corp_id"]
        failures += [f"{method} {op.path}: {s}" for s in _fuzz(op, api["base_url"], headers, path_ids)]
    assert not failures, "\n".join(failures)
