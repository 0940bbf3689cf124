"""The API spine: admin-only registration, corp-scoped keys, validation, OpenAPI."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ADMIN, AES_KEY, CORP_ID, SECRET, TOKEN, corp_body, register


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def test_registration_needs_the_admin_key(chalice_client, aws):
    body = json.dumps(corp_body())
    no_key = chalice_client.http.post("/api/v1/corps", body=body, headers={"Content-Type": "application/json"})
    assert no_key.status_code == 401 and json.loads(no_key.body)["error"]["code"] == "unauthenticated"
    wrong = chalice_client.http.post("/api/v1/corps", body=body, headers=_auth("admin-wrong"))
    assert wrong.status_code == 401
    corp_key = register(chalice_client)["api_key"]
    as_corp = chalice_client.http.post("/api/v1/corps", body=json.dumps(corp_body("wwOther")),
                                       headers=_auth(corp_key))
    assert as_corp.status_code == 403 and json.loads(as_corp.body)["error"]["code"] == "admin_key_required"


def test_registration_returns_callback_url_and_key_but_never_secrets(chalice_client, aws):
    created = register(chalice_client)
    assert created["callback_url"].endswith(f"/wecom/{CORP_ID}/callback")
    assert created["api_key"].startswith("scrm_")
    raw = json.dumps(created)
    for secret in (TOKEN, AES_KEY, SECRET):
        assert secret not in raw
    got = chalice_client.http.get(f"/api/v1/corps/{CORP_ID}", headers=_auth(created["api_key"]))
    assert got.status_code == 200
    for secret in (TOKEN, AES_KEY, SECRET):
        assert secret not in got.body.decode()


def test_secrets_are_stored_encrypted(chalice_client, aws):
    from chalicelib.platform import aws as clients

    register(chalice_client)
    dump = json.dumps(clients.client("dynamodb").scan(TableName=aws.table_name)["Items"])
    for secret in (TOKEN, AES_KEY, SECRET):
        assert secret not in dump
    # and the API key is stored only as its hash
    assert "scrm_" not in dump


def test_registering_twice_is_a_conflict(chalice_client, aws):
    register(chalice_client)
    again = chalice_client.http.post("/api/v1/corps", headers=ADMIN, body=json.dumps(corp_body()))
    assert again.status_code == 409 and json.loads(again.body)["error"]["code"] == "corp_exists"


@pytest.mark.parametrize("override,field", [
    ({"encoding_aes_key": "short"}, "encoding_aes_key"),
    ({"callback_token": "has spaces!"}, "callback_token"),
    ({"corp_id": "bad id/with slash"}, "corp_id"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"unexpected": 1}, "unexpected"),
])
def test_invalid_registration_is_400_and_writes_nothing(override, field, chalice_client, aws):
    from chalicelib.platform import aws as clients

    resp = chalice_client.http.post("/api/v1/corps", headers=ADMIN, body=json.dumps(corp_body(**override)))
    assert resp.status_code == 400
    err = json.loads(resp.body)["error"]
    assert err["code"] == "validation_error" and any(field in d["field"] for d in err["details"])
    assert clients.client("dynamodb").scan(TableName=aws.table_name, Select="COUNT")["Count"] == 0


def test_malformed_json_is_400(chalice_client, aws):
    resp = chalice_client.http.post("/api/v1/corps", headers=ADMIN, body="{nope")
    assert resp.status_code == 400 and json.loads(resp.body)["error"]["code"] == "invalid_request"


def test_a_corp_key_cannot_see_or_change_another_corp(chalice_client, aws):
    key_a = register(chalice_client, "wwCorpA")["api_key"]
    key_b = register(chalice_client, "wwCorpB")["api_key"]
    assert chalice_client.http.get("/api/v1/corps/wwCorpA", headers=_auth(key_a)).status_code == 200
    assert chalice_client.http.get("/api/v1/corps/wwCorpB", headers=_auth(key_a)).status_code == 404
    steal = chalice_client.http.post("/api/v1/corps/wwCorpB/api-keys", headers=_auth(key_a),
                                     body=json.dumps({"label": "mine now"}))
    assert steal.status_code == 404
    assert chalice_client.http.get("/api/v1/corps", headers=_auth(key_b)).status_code == 403
    own = chalice_client.http.post("/api/v1/corps/wwCorpB/api-keys", headers=_auth(key_b),
                                   body=json.dumps({"label": "ci"}))
    assert own.status_code == 201
    new_key = json.loads(own.body)["api_key"]
    assert chalice_client.http.get("/api/v1/corps/wwCorpB", headers=_auth(new_key)).status_code == 200


def test_corp_list_paginates_with_a_cursor(chalice_client, aws):
    for i in range(5):
        register(chalice_client, f"wwPage{i}")
    seen, cursor = [], None
    while True:
        url = "/api/v1/corps?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = json.loads(chalice_client.http.get(url, headers=ADMIN).body)
        assert len(page["items"]) <= 2
        seen += [c["corp_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"wwPage{i}" for i in range(5)]
    bad = chalice_client.http.get("/api/v1/corps?cursor=Zm9v", headers=ADMIN)
    assert bad.status_code == 400


def test_openapi_is_public_and_describes_the_endpoints(chalice_client, aws):
    resp = chalice_client.http.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    spec = json.loads(resp.body)
    assert spec["openapi"].startswith("3.")
    assert "post" in spec["paths"]["/api/v1/corps"]
    body_ref = spec["paths"]["/api/v1/corps"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body_ref["$ref"].rsplit("/", 1)[-1]
    assert "encoding_aes_key" in spec["components"]["schemas"][name]["properties"]


def test_dead_letters_can_be_seen_and_redriven_by_the_admin(chalice_client, aws):
    from chalicelib.platform import aws as clients
    from chalicelib.platform import queues

    sqs = clients.client("sqs")
    dlq = queues.queue_url(queues.dlq_name(aws.events_queue))
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"poison": i}))
    corp_key = register(chalice_client)["api_key"]
    assert chalice_client.http.get("/api/v1/dead-letters", headers=_auth(corp_key)).status_code == 403
    summary = json.loads(chalice_client.http.get("/api/v1/dead-letters", headers=ADMIN).body)
    assert {q["queue"]: q["dead_letters"] for q in summary["queues"]} == {"events": 3, "sends": 0, "sync": 0}
    peek = json.loads(chalice_client.http.get("/api/v1/dead-letters/events?limit=2", headers=ADMIN).body)
    assert len(peek["messages"]) == 2 and "poison" in peek["messages"][0]["body"]
    assert chalice_client.http.get("/api/v1/dead-letters/nope", headers=ADMIN).status_code == 404
    moved = chalice_client.http.post("/api/v1/dead-letters/events/redrive", headers=ADMIN,
                                     body=json.dumps({"max_messages": 2}))
    assert json.loads(moved.body) == {"queue": "events", "moved": 2}
    back = sqs.receive_message(QueueUrl=queues.queue_url(aws.events_queue), MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["poison"] for m in back) in ([0, 1], [0, 2], [1, 2])


def test_callback_url_is_where_the_api_is_reached(chalice_client, aws, monkeypatch):
    """In AWS the API's address is only known from the request (API Gateway's host and stage);
    SCRM_PUBLIC_BASE_URL overrides it (a custom domain)."""
    headers = {**ADMIN, "Host": "abc123.execute-api.ap-east-1.amazonaws.com", "X-Forwarded-Proto": "https"}
    created = chalice_client.http.post("/api/v1/corps", headers=headers, body=json.dumps(corp_body("wwUrl1")))
    assert json.loads(created.body)["callback_url"] == (
        "https://abc123.execute-api.ap-east-1.amazonaws.com/wecom/wwUrl1/callback")
    monkeypatch.setenv("SCRM_PUBLIC_BASE_URL", "https://scrm.brand.example")
    from chalicelib.platform import caches

    caches.clear_all()
    created = chalice_client.http.post("/api/v1/corps", headers=headers, body=json.dumps(corp_body("wwUrl2")))
    assert json.loads(created.body)["callback_url"] == "https://scrm.brand.example/wecom/wwUrl2/callback"


def test_openapi_describes_the_lazily_loaded_acquisition_endpoints(chalice_client, aws):
    spec = json.loads(chalice_client.http.get("/api/v1/openapi.json").body)
    schemas = spec["components"]["schemas"]

    def schema(ref: dict) -> dict:
        return schemas[ref["$ref"].rsplit("/", 1)[-1]]

    create = spec["paths"]["/api/v1/channel-codes"]["post"]
    assert "staff_ids" in schema(create["requestBody"]["content"]["application/json"]["schema"])["properties"]
    listing = spec["paths"]["/api/v1/customers"]["get"]
    page = schema(listing["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"items", "next_cursor"}
    assert {p["name"] for p in listing["parameters"]} >= {"tag", "staff_id", "channel", "status", "cursor"}
    assert "from" in {p["name"] for p in spec["paths"]["/api/v1/stats/contacts"]["get"]["parameters"]}


def test_me_tells_a_key_its_corp_time_zone_agent_and_role(chalice_client, aws):
    def registered(body: dict) -> str:
        resp = chalice_client.http.post("/api/v1/corps", headers=ADMIN, body=json.dumps(body))
        assert resp.status_code == 201, resp.body
        return json.loads(resp.body)["api_key"]

    plain = registered(corp_body("wwNoAgent", name="Plain", time_zone="Europe/Berlin"))
    with_agent = registered(corp_body("wwAgent", name="With app", agent_id="1000002"))

    me = chalice_client.http.get("/api/v1/me", headers=_auth(plain))
    assert me.status_code == 200, me.body
    assert json.loads(me.body) == {"role": "corp", "corp": {"corp_id": "wwNoAgent", "name": "Plain",
                                                            "time_zone": "Europe/Berlin", "agent_configured": False}}
    corp = json.loads(chalice_client.http.get("/api/v1/me", headers=_auth(with_agent)).body)["corp"]
    assert corp["corp_id"] == "wwAgent" and corp["time_zone"] == "Asia/Shanghai" and corp["agent_configured"] is True

    admin = chalice_client.http.get("/api/v1/me", headers=ADMIN)
    assert admin.status_code == 200 and json.loads(admin.body) == {"role": "admin", "corp": None}
    for headers in ({}, _auth("scrm_unknown")):
        refused = chalice_client.http.get("/api/v1/me", headers=headers)
        assert refused.status_code == 401 and json.loads(refused.body)["error"]["code"] == "unauthenticated"


def test_me_is_in_the_openapi_document_with_its_typed_answer(chalice_client, aws):
    spec = json.loads(chalice_client.http.get("/api/v1/openapi.json").body)
    op = spec["paths"]["/api/v1/me"]["get"]
    assert set(op["responses"]) >= {"200", "401"}
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][ref]["properties"]) == {"role", "corp"}
