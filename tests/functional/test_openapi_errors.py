"""The OpenAPI document's errors: each operation lists every status and `code` it can answer, each
in the error envelope; what the app really answers (bad requests, WeCom failing, conflicts) is
among them; and the codes come from the code (register_error, map_exception), not from a list."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import ADMIN, CORP_ID, register

ENVELOPE = {"$ref": "#/components/schemas/ErrorResponse"}
CODES = "/api/v1/channel-codes"


@pytest.fixture
def spec(chalice_client, aws):
    resp = chalice_client.http.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return json.loads(resp.body)


def documented(spec: dict, method: str, path: str) -> dict[int, set[str]]:
    responses = spec["paths"][path][method.lower()]["responses"]
    return {int(status): set(r["x-error-codes"]) for status, r in responses.items() if int(status) >= 400}


def endpoints() -> list:
    import app  # noqa: F401 - registers every endpoint
    from chalicelib.api import core

    return list(core.ENDPOINTS)


def wecom_sample(cls: type) -> Exception:
    from chalicelib.wecom import errors

    if issubclass(cls, errors.ApiError):
        return cls(0)  # map_exception tells them apart by class
    if issubclass(cls, errors.WeComTimeout):
        return cls("timed out", maybe_executed=False)
    return cls("down")


# --- the document ----------------------------------------------------------------------------------


def test_creating_a_channel_code_documents_every_error_it_can_answer(spec):
    errors = documented(spec, "POST", CODES)
    assert {400, 401, 403, 409, 413, 429, 500, 502} <= set(errors)
    assert {"invalid_request", "validation_error", "invalid_channel_code", "wecom_error"} <= errors[400]
    assert errors[401] == {"unauthenticated"} and errors[403] == {"corp_key_required"}
    assert "state_taken" in errors[409]
    assert errors[413] == {"body_too_large"}
    assert errors[429] == {"wecom_rate_limited"}
    assert errors[502] == {"wecom_error", "wecom_unavailable"}
    description = spec["paths"][CODES]["post"]["responses"]["429"]["description"]
    assert "45009" in description and "retry_after" in description


def test_public_operations_document_no_key_errors(spec):
    for path in ("/api/v1/openapi.json", "/api/v1/health"):
        op = spec["paths"][path]["get"]
        assert not {401, 403} & set(documented(spec, "GET", path)), path
        assert "security" not in op and "200" in op["responses"]


def test_every_error_response_is_the_envelope_and_names_its_codes(spec):
    schemas = spec["components"]["schemas"]
    envelope = schemas["ErrorResponse"]
    assert envelope["required"] == ["error"]
    body = schemas[envelope["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]
    assert set(body["required"]) == {"code", "message"} and "details" in body["properties"]
    count = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                count += 1
                assert response["content"] == {"application/json": {"schema": ENVELOPE}}, (method, path, status)
                assert response["x-error-codes"], (method, path, status)
                for code in response["x-error-codes"]:
                    assert f"`{code}`" in response["description"], (method, path, status, code)
    assert count > 100


def test_every_code_a_view_raises_is_documented_under_the_status_map_exception_gives_it(spec):
    """Expectations from the registry and map_exception, applied to what each view raises."""
    from chalicelib.api import core, openapi
    from chalicelib.wecom import errors as wecom

    registry = core.registered_errors()
    reader = openapi.RaiseReader()
    seen: set[tuple[int, str]] = set()
    missing = []
    for ep in endpoints():
        errors = documented(spec, ep.method, ep.path)
        for effect in reader.raises(ep.view):
            if isinstance(effect, openapi.Raised):
                expected = (effect.status, effect.code)
            elif issubclass(effect, wecom.WeComError):
                answer = core.map_exception(wecom_sample(effect))
                expected = (answer.status, answer.code)
            else:
                expected = next(((s, c) for t, s, c in registry if issubclass(effect, t)), None)
                if expected is None:
                    continue  # unmapped: a 500
            seen.add(expected)
            if expected[1] not in errors.get(expected[0], set()):
                missing.append((ep.method, ep.path, effect, expected))
    assert not missing, missing
    # Every registered mapping is raised by some route (else it is dead, or the reader cannot see
    # the raise: then that route names it in endpoint(errors=...)).
    unseen = {(s, c) for _, s, c in registry} - seen
    assert not unseen, unseen


def test_operations_name_wecom_errors_exactly_when_wecom_can_fail_them(spec):
    calls_wecom = [("POST", CODES), ("PATCH", f"{CODES}/{{state}}"), ("DELETE", f"{CODES}/{{state}}"),
                   ("POST", "/api/v1/tags"), ("PATCH", "/api/v1/tags/{tag_id}"), ("DELETE", "/api/v1/tags/{tag_id}"),
                   ("POST", "/api/v1/tags/sync"), ("POST", "/api/v1/customers/{customer_id}/tags")]
    for method, path in calls_wecom:
        errors = documented(spec, method, path)
        assert errors[429] == {"wecom_rate_limited"} and errors[502] == {"wecom_error", "wecom_unavailable"}, path
    # Bulk tagging reports WeCom's refusals per relation in a 200; the others never call WeCom.
    no_wecom = [("POST", "/api/v1/customers/tags"), ("POST", "/api/v1/customer-syncs"), ("GET", CODES),
                ("GET", f"{CODES}/{{state}}"), ("PUT", "/api/v1/welcome/default"), ("POST", "/api/v1/corps")]
    for method, path in no_wecom:
        errors = documented(spec, method, path)
        assert 429 not in errors and 502 not in errors and "wecom_error" not in errors.get(400, ()), path
    # delete_channel_code takes WeCom's "invalid" for "already gone": no 400 from WeCom there.
    assert "wecom_error" not in documented(spec, "DELETE", f"{CODES}/{{state}}").get(400, set())


def test_the_wecom_errcodes_in_the_description_map_as_stated(spec):
    from chalicelib.api import core
    from chalicelib.wecom import errors

    lines = re.findall(r"^- (\d{3}) `(\w+)`: WeCom answered errcode ([^(;]+?)(?: or any|;| \()",
                       spec["info"]["description"], re.MULTILINE)
    assert {(s, c) for s, c, _ in lines} == {("400", "wecom_error"), ("429", "wecom_rate_limited"),
                                             ("502", "wecom_error")}
    checked = 0
    for status, code, listed in lines:
        for part in listed.split(", "):
            first, _, last = part.partition("-") if not part.startswith("-") else (part, "", "")
            for errcode in {int(first), int(last or first)}:
                answer = core.map_exception(errors.from_errcode(errcode))
                assert (answer.status, answer.code) == (int(status), code), errcode
                checked += 1
    assert checked > 20
    assert core.map_exception(errors.from_errcode(45009)).status == 429
    assert "502 `wecom_unavailable`" in spec["info"]["description"]
    assert "404 `not_found`" in spec["info"]["description"]  # API Gateway, outside the operations


def test_an_endpoint_may_declare_errors_the_reader_cannot_see():
    from chalicelib.api import core, openapi

    ep = core.EndpointSpec("POST", "/api/v1/probe", "probe", "corp", None, None, None, 200,
                           errors=(core.WECOM, "chalicelib.platform.errors:StateTaken", (418, "teapot", "short")))
    errors = openapi.operation_errors(ep)
    assert set(errors[409]) == {"state_taken"} and errors[418] == {"teapot": ["short"]}
    assert set(errors[429]) == {"wecom_rate_limited"} and set(errors[502]) == {"wecom_error", "wecom_unavailable"}
    assert set(errors[400]) == {"wecom_error"} and set(errors[401]) == {"unauthenticated"}


# What the reader makes of code (these are read, never run).
def _swallows_wecom():
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors

    try:
        corps.wecom_client("ww").get_corp_tag_list()
    except errors.WeComError:
        return None


def _reraises_wecom():
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import errors

    try:
        corps.wecom_client("ww").get_corp_tag_list()
    except errors.WeComError:
        raise


def _renames_a_tag():
    from chalicelib.tags import service as tags

    tags.rename("ww", "tag", None)


def test_the_reader_follows_calls_and_honours_except_clauses():
    from chalicelib.api import openapi
    from chalicelib.tags import service as tags
    from chalicelib.wecom import errors

    reader = openapi.RaiseReader()
    assert reader.raises(_swallows_wecom) == frozenset()
    assert {errors.FrequencyLimited, errors.InvalidArgument, errors.WeComUnavailable} <= reader.raises(_reraises_wecom)
    renamed = reader.raises(_renames_a_tag)
    assert {tags.TagNotFound, tags.TagExists, errors.FrequencyLimited} <= renamed


# --- what the app answers ---------------------------------------------------------------------------


def _path(ep, value: str) -> str:
    path = ep.path
    for name in ep.path_params:
        path = path.replace(f"{{{name}}}", value)
    return path


def test_what_the_app_answers_to_bad_requests_is_documented(chalice_client, aws, spec):
    from chalicelib.api import core

    corp_key = register(chalice_client)["api_key"]
    admin_key = ADMIN["Authorization"].partition(" ")[2]
    own_key = {"admin": admin_key, "corp": corp_key, "any": corp_key, "public": None}
    wrong_key = {"admin": corp_key, "corp": admin_key}
    answered = []

    def send(ep, what, *, key, path=None, body=b"", query="", expect=None):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        resp = chalice_client.http.request(ep.method, (path or _path(ep, "probe1")) + query, headers=headers,
                                           body=body)
        if expect is not None:
            assert resp.status_code == expect, (ep.method, ep.path, what, resp.body)
        if resp.status_code >= 400:
            code = json.loads(resp.body)["error"]["code"]
            answered.append((ep.method, ep.path, what, resp.status_code, code))

    for ep in endpoints():
        key = own_key[ep.auth]
        if ep.auth != "public":
            send(ep, "no key", key=None, expect=401)
        if ep.auth in wrong_key:
            send(ep, "the other kind of key", key=wrong_key[ep.auth], expect=403)
        if ep.path_params:
            send(ep, "an id no resource has", key=key, path=_path(ep, "x" * 129), expect=404)
        if ep.body is not None:
            send(ep, "body too large", key=key, body=b"x" * (core.MAX_BODY_BYTES + 1), expect=413)
            send(ep, "body not JSON", key=key, body=b"{nope", expect=400)
            send(ep, "body of the wrong shape", key=key, body=b"[]", expect=400)
        if ep.query is not None:
            send(ep, "unknown query parameter", key=key, query="?no_such_parameter=1")
            send(ep, "foreign cursor", key=key, query="?cursor=Zm9v")
    assert len(answered) > 60
    undocumented = [a for a in answered if a[4] not in documented(spec, a[0], a[1]).get(a[3], set())]
    assert not undocumented, undocumented


def _create_code(world, state: str) -> tuple[int, dict]:
    return world.call("POST", CODES, {"name": "Probe", "state": state, "staff_ids": ["alice"]})


@pytest.mark.parametrize("fault", [
    {"kind": "errcode", "errcode": 45009},  # frequency limit
    {"kind": "errcode", "errcode": 40058},  # invalid argument
    {"kind": "errcode", "errcode": 60020},  # IP not trusted: configuration
    {"kind": "http", "status": 503},  # no usable answer
])
def test_wecom_failing_answers_as_map_exception_says_and_as_documented(world, spec, fault):
    from chalicelib.api import core
    from chalicelib.wecom import errors

    world.sb.faults.add(path="externalcontact/add_contact_way", count=None, rate=1.0, **fault)
    status, body = _create_code(world, "wecom-fails")
    if fault["kind"] == "errcode":
        expected = core.map_exception(errors.from_errcode(fault["errcode"]))
    else:
        expected = core.map_exception(errors.WeComUnavailable("HTTP 503", status_code=503))
    assert (status, body["error"]["code"]) == (expected.status, expected.code)
    assert expected.code in documented(spec, "POST", CODES)[expected.status]


def test_conflicts_answer_as_documented(world, spec):
    assert _create_code(world, "twice")[0] == 201
    status, body = _create_code(world, "twice")
    assert (status, body["error"]["code"]) == (409, "state_taken")
    assert "state_taken" in documented(spec, "POST", CODES)[409]

    world.tag("source", "poster")
    status, body = world.call("POST", "/api/v1/tags", {"group_name": "source", "names": ["poster"]})
    assert (status, body["error"]["code"]) == (409, "tag_exists")
    assert "tag_exists" in documented(spec, "POST", "/api/v1/tags")[409]

    assert world.call("POST", "/api/v1/customer-syncs")[0] == 202
    status, body = world.call("POST", "/api/v1/customer-syncs")
    assert (status, body["error"]["code"]) == (409, "sync_running")
    assert "sync_running" in documented(spec, "POST", "/api/v1/customer-syncs")[409]


def test_bulk_tagging_reports_wecom_per_relation_so_documents_no_wecom_status(world, spec):
    tag = world.tag("source", "limited")[0]
    status, code = _create_code(world, "bulk")
    assert status == 201, code
    customer = world.sb.simulator.scan_contact_way(CORP_ID, code["config_id"], name="Pat")["external_userid"]
    world.pump()
    world.sb.faults.add("errcode", path="externalcontact/mark_tag", errcode=45009, count=None, rate=1.0)

    change = {"customer_id": customer, "staff_id": "alice", "add": [tag]}
    status, body = world.call("POST", "/api/v1/customers/tags", {"changes": [change]})
    assert status == 200 and body["results"][0]["status"] == "failed"
    assert not {429, 502} & set(documented(spec, "POST", "/api/v1/customers/tags"))

    status, body = world.call("POST", f"/api/v1/customers/{customer}/tags", {"staff_id": "alice", "add": [tag]})
    assert (status, body["error"]["code"]) == (429, "wecom_rate_limited")
    assert "wecom_rate_limited" in documented(spec, "POST", "/api/v1/customers/{customer_id}/tags")[429]


def test_a_body_whose_fields_all_have_defaults_is_documented_as_optional(chalice_client):
    import json

    spec = json.loads(chalice_client.http.get("/api/v1/openapi.json").body)
    assert spec["paths"]["/api/v1/corps/{corp_id}/api-keys"]["post"]["requestBody"]["required"] is False
    assert spec["paths"]["/api/v1/channel-codes"]["post"]["requestBody"]["required"] is True


def test_a_refused_optional_field_is_named_as_sent_once(world):
    """An optional field (`Id | None` in the model) refused for its value is named by its path as the
    client wrote it, once: not with pydantic's union members ("segment_id.constrained-str") nor with
    a second "Input should be None" for the None member (the console puts errors at the field named)."""
    for path, body, field in [
        ("/api/v1/broadcasts", {"name": "x", "content": {"text": "Hi"},
                                "target": {"kind": "customers", "segment_id": ""}}, "target.customers.segment_id"),
        ("/api/v1/segments", {"name": "x", "filter": {"staff_ids": []}}, "filter.staff_ids"),
    ]:
        status, answer = world.call("POST", path, body)
        assert status == 400 and answer["error"]["code"] == "validation_error", answer
        assert [d["field"] for d in answer["error"]["details"]] == [field], answer
