"""Managing corps after registration: settings and secrets (PATCH), API keys (list, revoke), and
the dead-letter redrive with its defaults. Through the real routes (chalice's test client, moto)."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import pytest

from tests.helpers import ADMIN, AES_KEY, CORP_ID, SECRET, TOKEN, contact_xml, register

NEW_TOKEN = "rotatedtoken456"
NEW_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
NEW_SECRET = "contact-secret-rotated"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def _call(client, method: str, path: str, key_headers: dict[str, str], body=None):
    kwargs = {"headers": key_headers}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    resp = getattr(client.http, method.lower())(path, **kwargs)
    return resp.status_code, (json.loads(resp.body) if resp.body else None)


def _callback(client, *, token: str, aes_key: str, corp_id: str = CORP_ID) -> int:
    from chalicelib.wecom.crypto import CallbackCrypto

    crypto = CallbackCrypto(token=token, encoding_aes_key=aes_key, receive_id=corp_id)
    params, body = crypto.encrypt_callback(contact_xml(corp_id=corp_id), timestamp=str(int(time.time())),
                                           nonce=uuid.uuid4().hex[:10])
    resp = client.http.post(f"/wecom/{corp_id}/callback?{urlencode(params)}", body=body,
                            headers={"Content-Type": "text/xml"})
    return resp.status_code


def _table_dump(aws) -> list:
    from chalicelib.platform import aws as clients

    return clients.client("dynamodb").scan(TableName=aws.table_name)["Items"]


def _secrets(corp_id: str = CORP_ID) -> dict[str, str]:
    from chalicelib.corps import items as corp_items
    from chalicelib.platform import sealing as secrets

    return secrets.unseal(corp_items.get_corp(corp_id).sealed_secrets, corp_id=corp_id).plain()


# -- PATCH /corps/{corp_id} -------------------------------------------------------------------------
def test_patch_changes_settings_and_reseals_secrets_but_never_returns_them(chalice_client, aws):
    key = register(chalice_client)["api_key"]
    status, body = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key),
                         {"name": "Renamed Brand", "time_zone": "Europe/Berlin", "contact_secret": NEW_SECRET})
    assert status == 200, body
    assert body["name"] == "Renamed Brand" and body["time_zone"] == "Europe/Berlin"
    assert body["updated_at"] >= body["created_at"]
    assert body["callback_url"].endswith(f"/wecom/{CORP_ID}/callback")
    raw = json.dumps(body)
    for secret in (TOKEN, AES_KEY, SECRET, NEW_SECRET):
        assert secret not in raw
    assert _secrets() == {"callback_token": TOKEN, "encoding_aes_key": AES_KEY, "contact_secret": NEW_SECRET}
    dump = json.dumps(_table_dump(aws))
    assert NEW_SECRET not in dump and SECRET not in dump  # sealed, not stored in the clear
    _, got = _call(chalice_client, "GET", f"/api/v1/corps/{CORP_ID}", _auth(key))
    assert got["name"] == "Renamed Brand" and got["time_zone"] == "Europe/Berlin"
    # the admin key may change any corp
    status, body = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", ADMIN, {"name": "By Admin"})
    assert status == 200 and body["name"] == "By Admin"


def test_after_patching_callback_secrets_new_values_are_accepted_and_old_refused(chalice_client, aws):
    key = register(chalice_client)["api_key"]
    assert _callback(chalice_client, token=TOKEN, aes_key=AES_KEY) == 200  # caches the corp's runtime
    status, _ = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key),
                      {"callback_token": NEW_TOKEN, "encoding_aes_key": NEW_AES_KEY})
    assert status == 200
    assert _callback(chalice_client, token=NEW_TOKEN, aes_key=NEW_AES_KEY) == 200
    assert _callback(chalice_client, token=TOKEN, aes_key=AES_KEY) in (400, 401)
    assert _callback(chalice_client, token=NEW_TOKEN, aes_key=AES_KEY) in (400, 401)
    assert _callback(chalice_client, token=TOKEN, aes_key=NEW_AES_KEY) in (400, 401)
    # a token alone: the AES key set before stays
    _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key), {"callback_token": TOKEN})
    assert _callback(chalice_client, token=TOKEN, aes_key=NEW_AES_KEY) == 200
    assert _callback(chalice_client, token=NEW_TOKEN, aes_key=NEW_AES_KEY) in (400, 401)


def test_an_instance_holding_the_old_token_reloads_the_corp_instead_of_refusing(chalice_client, aws):
    """PATCH ran on another instance: this one still caches the old token. A callback signed with
    the new one makes it reload the corp (at most every REFRESH_AFTER s) rather than lose it."""
    from chalicelib.corps import registry as corps

    key = register(chalice_client)["api_key"]
    assert _callback(chalice_client, token=TOKEN, aes_key=AES_KEY) == 200  # caches the old secrets
    stale = corps._runtime[CORP_ID]
    status, _ = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key),
                      {"callback_token": NEW_TOKEN, "encoding_aes_key": NEW_AES_KEY})
    assert status == 200

    def as_another_instance(loaded_seconds_ago: float) -> None:
        corps.forget(CORP_ID)
        corps._runtime[CORP_ID] = stale
        corps._loaded_at[CORP_ID] = time.monotonic() - loaded_seconds_ago

    as_another_instance(loaded_seconds_ago=2)  # loaded just now: a bad signature is just refused
    assert _callback(chalice_client, token=NEW_TOKEN, aes_key=NEW_AES_KEY) == 401
    as_another_instance(loaded_seconds_ago=corps.REFRESH_AFTER + 1)
    assert _callback(chalice_client, token=NEW_TOKEN, aes_key=NEW_AES_KEY) == 200
    assert _callback(chalice_client, token=TOKEN, aes_key=AES_KEY) == 401  # and no reload loop


def test_a_new_contact_secret_gets_its_own_token_and_client(chalice_client, aws):
    """Tokens are cached per secret: the old secret's token is never read with the new secret, and
    an instance still holding the old secret cannot store its token over the new one's."""
    from chalicelib.corps import registry as corps
    from chalicelib.store import get_table
    from chalicelib.store.tokens import DynamoTokenCache

    key = register(chalice_client)["api_key"]
    old_client = corps.wecom_client(CORP_ID)
    cache = DynamoTokenCache(get_table())
    cache.store(CORP_ID, old_client.app, access_token="token-of-old-secret", expires_at=time.time() + 7200,
                holder="test")
    # name and time zone leave the token and its secret alone
    _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key), {"name": "Same Secret"})
    assert corps.wecom_client(CORP_ID).app == old_client.app
    status, _ = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key),
                      {"contact_secret": NEW_SECRET})
    assert status == 200
    new_client = corps.wecom_client(CORP_ID)
    assert new_client is not old_client and new_client.app == corps.token_app(NEW_SECRET) != old_client.app
    assert cache.get(CORP_ID, new_client.app) is None  # the old secret's token is not this one's
    assert NEW_SECRET not in new_client.app  # a fingerprint names the secret, never the secret


def test_wecom_calls_use_a_new_contact_secret_at_once(world):
    """The old secret's token is not reused: a wrong secret fails on the next call, a right one works."""
    status, body = world.call("POST", "/api/v1/tags/sync")
    assert status in (200, 201, 202), body  # a token for SECRET is now stored and held in memory
    status, _ = world.call("PATCH", f"/api/v1/corps/{CORP_ID}", {"contact_secret": "not-the-apps-secret"})
    assert status == 200
    status, body = world.call("POST", "/api/v1/tags/sync")
    assert status == 502 and body["error"]["code"] == "wecom_error", body
    assert body["error"]["details"]["errcode"] == 40001
    world.sb.world.corps[CORP_ID].apps["contact"].secret = NEW_SECRET  # reset in WeCom's admin console
    status, _ = world.call("PATCH", f"/api/v1/corps/{CORP_ID}", {"contact_secret": NEW_SECRET})
    assert status == 200
    status, body = world.call("POST", "/api/v1/tags/sync")
    assert status in (200, 201, 202), body


@pytest.mark.parametrize("patch,field", [
    ({"encoding_aes_key": "short"}, "encoding_aes_key"),
    ({"encoding_aes_key": NEW_AES_KEY + "x"}, "encoding_aes_key"),
    ({"callback_token": "has spaces!"}, "callback_token"),
    ({"contact_secret": ""}, "contact_secret"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"agent_id": "1000002"}, "agent_id"),
    ({"corp_id": "wwOther"}, "corp_id"),
    ({"name": "Fine", "unexpected": 1}, "unexpected"),
])
def test_invalid_patch_is_400_and_changes_nothing(patch, field, chalice_client, aws):
    key = register(chalice_client)["api_key"]
    before = _table_dump(aws)
    status, body = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key), patch)
    assert status == 400
    assert body["error"]["code"] == "validation_error"
    assert any(field in d["field"] for d in body["error"]["details"])
    assert _table_dump(aws) == before


def test_empty_or_malformed_patch_is_400(chalice_client, aws):
    key = register(chalice_client)["api_key"]
    for raw in ("{}", "{nope", "[]"):
        status, body = _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key), raw)
        assert status == 400 and body["error"]["code"] in ("invalid_request", "validation_error"), raw


def test_a_corp_key_cannot_patch_another_corp(chalice_client, aws):
    key_a = register(chalice_client, "wwCorpA")["api_key"]
    register(chalice_client, "wwCorpB")
    status, body = _call(chalice_client, "PATCH", "/api/v1/corps/wwCorpB", _auth(key_a),
                         {"callback_token": "stolen1"})
    assert status == 404 and body["error"]["code"] == "not_found"
    assert _secrets("wwCorpB")["callback_token"] == TOKEN
    status, _ = _call(chalice_client, "PATCH", "/api/v1/corps/wwNobody", ADMIN, {"name": "x"})
    assert status == 404
    status, _ = _call(chalice_client, "PATCH", "/api/v1/corps/wwCorpA", {"Content-Type": "application/json"},
                      {"name": "x"})
    assert status == 401


# -- API keys ---------------------------------------------------------------------------------------
def _list_keys(client, corp_id: str, headers: dict[str, str], **params) -> tuple[int, dict]:
    query = f"?{urlencode(params)}" if params else ""
    return _call(client, "GET", f"/api/v1/corps/{corp_id}/api-keys{query}", headers)


def test_api_keys_are_listed_with_ids_and_hints_never_keys_or_hashes(chalice_client, aws):
    from chalicelib.api.core import hash_api_key

    initial = register(chalice_client)["api_key"]
    status, created = _call(chalice_client, "POST", f"/api/v1/corps/{CORP_ID}/api-keys", _auth(initial),
                            {"label": "ci"})
    assert status == 201
    assert created["api_key"].startswith("scrm_") and created["last4"] == created["api_key"][-4:]
    assert created["key_id"].startswith("ak_") and created["label"] == "ci"
    status, page = _list_keys(chalice_client, CORP_ID, _auth(initial))
    assert status == 200 and page["next_cursor"] is None
    assert [k["label"] for k in page["items"]] == ["initial", "ci"]  # in the order issued
    assert set(page["items"][0]) == {"key_id", "label", "created_at", "last4", "current"}
    assert [k["current"] for k in page["items"]] == [True, False]
    assert page["items"][0]["last4"] == initial[-4:] and page["items"][1]["key_id"] == created["key_id"]
    raw = json.dumps(page)
    for secret in (initial, created["api_key"], hash_api_key(initial), hash_api_key(created["api_key"])):
        assert secret not in raw
    status, as_admin = _list_keys(chalice_client, CORP_ID, ADMIN)
    assert status == 200 and [k["current"] for k in as_admin["items"]] == [False, False]


def test_api_key_list_paginates_with_a_cursor(chalice_client, aws):
    register(chalice_client)
    for i in range(4):
        _call(chalice_client, "POST", f"/api/v1/corps/{CORP_ID}/api-keys", ADMIN, {"label": f"k{i}"})
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        status, page = _list_keys(chalice_client, CORP_ID, ADMIN, **params)
        assert status == 200 and len(page["items"]) <= 2
        seen += [k["label"] for k in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["initial", "k0", "k1", "k2", "k3"]
    register(chalice_client, "wwOther")
    _, other = _list_keys(chalice_client, "wwOther", ADMIN, limit=1)
    _, first = _list_keys(chalice_client, CORP_ID, ADMIN, limit=1)
    status, _ = _list_keys(chalice_client, "wwOther", ADMIN, cursor=first["next_cursor"])
    assert status == 400  # a cursor of one corp's list does not page through another's
    assert _list_keys(chalice_client, CORP_ID, ADMIN, limit=0)[0] == 400


def test_a_revoked_key_is_refused_at_once(chalice_client, aws):
    initial = register(chalice_client)["api_key"]
    _, created = _call(chalice_client, "POST", f"/api/v1/corps/{CORP_ID}/api-keys", _auth(initial),
                       {"label": "leaked"})
    leaked = created["api_key"]
    assert _call(chalice_client, "GET", f"/api/v1/corps/{CORP_ID}", _auth(leaked))[0] == 200
    status, body = _call(chalice_client, "DELETE", f"/api/v1/corps/{CORP_ID}/api-keys/{created['key_id']}",
                         _auth(initial))
    assert status == 204 and body is None
    status, body = _call(chalice_client, "GET", f"/api/v1/corps/{CORP_ID}", _auth(leaked))
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    _, page = _list_keys(chalice_client, CORP_ID, _auth(initial))
    assert [k["label"] for k in page["items"]] == ["initial"]
    # revoking again, or an id that never existed: 404
    assert _call(chalice_client, "DELETE", f"/api/v1/corps/{CORP_ID}/api-keys/{created['key_id']}",
                 _auth(initial))[0] == 404
    assert _call(chalice_client, "DELETE", f"/api/v1/corps/{CORP_ID}/api-keys/ak_nope", ADMIN)[0] == 404


def test_a_corp_key_cannot_revoke_itself_but_the_admin_key_can(chalice_client, aws):
    initial = register(chalice_client)["api_key"]
    _, page = _list_keys(chalice_client, CORP_ID, _auth(initial))
    own_id = page["items"][0]["key_id"]
    status, body = _call(chalice_client, "DELETE", f"/api/v1/corps/{CORP_ID}/api-keys/{own_id}", _auth(initial))
    assert status == 409 and body["error"]["code"] == "cannot_revoke_own_key"
    assert _call(chalice_client, "GET", f"/api/v1/corps/{CORP_ID}", _auth(initial))[0] == 200
    assert _call(chalice_client, "DELETE", f"/api/v1/corps/{CORP_ID}/api-keys/{own_id}", ADMIN)[0] == 204
    assert _call(chalice_client, "GET", f"/api/v1/corps/{CORP_ID}", _auth(initial))[0] == 401


def test_a_corp_key_cannot_list_or_revoke_another_corps_keys(chalice_client, aws):
    key_a = register(chalice_client, "wwCorpA")["api_key"]
    key_b = register(chalice_client, "wwCorpB")["api_key"]
    _, page_b = _list_keys(chalice_client, "wwCorpB", _auth(key_b))
    b_id = page_b["items"][0]["key_id"]
    status, body = _list_keys(chalice_client, "wwCorpB", _auth(key_a))
    assert status == 404 and body["error"]["code"] == "not_found"
    assert _call(chalice_client, "DELETE", f"/api/v1/corps/wwCorpB/api-keys/{b_id}", _auth(key_a))[0] == 404
    # nor through its own corp's path with the other corp's key id
    assert _call(chalice_client, "DELETE", f"/api/v1/corps/wwCorpA/api-keys/{b_id}", _auth(key_a))[0] == 404
    assert _call(chalice_client, "GET", "/api/v1/corps/wwCorpB", _auth(key_b))[0] == 200


def test_openapi_describes_the_corp_admin_routes(chalice_client, aws):
    spec = json.loads(chalice_client.http.get("/api/v1/openapi.json").body)
    paths = spec["paths"]
    assert "patch" in paths["/api/v1/corps/{corp_id}"]
    assert {"get", "post"} <= set(paths["/api/v1/corps/{corp_id}/api-keys"])
    assert "204" in paths["/api/v1/corps/{corp_id}/api-keys/{key_id}"]["delete"]["responses"]
    assert "requestBody" in paths["/api/v1/dead-letters/{queue}/redrive"]["post"]


# -- dead letters -----------------------------------------------------------------------------------
def test_redrive_takes_an_empty_body_as_the_defaults(chalice_client, aws):
    from chalicelib.platform import aws as clients
    from chalicelib.platform import queues

    sqs = clients.client("sqs")
    dlq = queues.queue_url(queues.dlq_name(aws.events_queue))
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"poison": i}))
    resp = chalice_client.http.post("/api/v1/dead-letters/events/redrive",
                                    headers={"Authorization": ADMIN["Authorization"]})
    assert resp.status_code == 200, resp.body
    assert json.loads(resp.body) == {"queue": "events", "moved": 3}
    status, body = _call(chalice_client, "POST", "/api/v1/dead-letters/sync/redrive", ADMIN, "")
    assert status == 200 and body == {"queue": "sync", "moved": 0}
    status, body = _call(chalice_client, "POST", "/api/v1/dead-letters/sync/redrive", ADMIN, {})
    assert status == 200 and body == {"queue": "sync", "moved": 0}
    status, body = _call(chalice_client, "POST", "/api/v1/dead-letters/sync/redrive", ADMIN, {"max_messages": 0})
    assert status == 400 and body["error"]["code"] == "validation_error"
    status, body = _call(chalice_client, "POST", "/api/v1/dead-letters/sync/redrive", ADMIN, "{nope")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert _call(chalice_client, "POST", "/api/v1/dead-letters/nope/redrive", ADMIN)[0] == 404


def test_concurrent_secret_updates_do_not_undo_each_other(chalice_client, aws):
    """Secrets are written only over the sealed blob they were opened from."""
    from chalicelib.corps import items as corp_items
    from chalicelib.platform import sealing as secrets

    register(chalice_client)
    stale = corp_items.get_corp(CORP_ID).sealed_secrets
    resealed = secrets.seal(secrets.CorpSecrets(callback_token=TOKEN, encoding_aes_key=AES_KEY,
                                                contact_secret=SECRET), corp_id=CORP_ID)
    assert corp_items.update_corp(CORP_ID, sealed_secrets=resealed, expected_nonce=stale["nonce"],
                                  updated_at=1) is not None
    with pytest.raises(corp_items.CorpChanged):  # a second writer that read the same stale blob
        corp_items.update_corp(CORP_ID, sealed_secrets=stale, expected_nonce=stale["nonce"], updated_at=2)
    assert corp_items.get_corp(CORP_ID).sealed_secrets == resealed
    assert corp_items.update_corp("wwNobody", name="x", updated_at=3) is None


def test_secret_changes_are_logged_by_field_name_only(chalice_client, aws, caplog):
    key = register(chalice_client)["api_key"]
    with caplog.at_level("DEBUG"):
        _call(chalice_client, "PATCH", f"/api/v1/corps/{CORP_ID}", _auth(key),
              {"callback_token": NEW_TOKEN, "encoding_aes_key": NEW_AES_KEY, "contact_secret": NEW_SECRET})
    assert "callback_token" in caplog.text
    for secret in (NEW_TOKEN, NEW_AES_KEY, NEW_SECRET, key):
        assert secret not in caplog.text


def test_a_body_whose_fields_all_have_defaults_may_be_left_out(chalice_client, aws):
    """POST /corps/{id}/api-keys: `label` has a default, so no body issues a key (as `{}` does);
    a body that is there must still be JSON, and a required body is still required."""
    key = register(chalice_client)["api_key"]
    resp = chalice_client.http.post(f"/api/v1/corps/{CORP_ID}/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 201, resp.body
    assert json.loads(resp.body)["api_key"]
    status, body = _call(chalice_client, "POST", f"/api/v1/corps/{CORP_ID}/api-keys", _auth(key), "not json")
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body = _call(chalice_client, "POST", "/api/v1/corps", ADMIN, "")
    assert status == 400 and "required" in body["error"]["message"]
