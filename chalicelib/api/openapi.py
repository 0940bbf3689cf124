"""GET /api/v1/openapi.json: generated from the registered endpoints and their pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from chalicelib.api.core import ENDPOINTS, ErrorResponse, resolve

_cache: dict[str, Any] = {}

_ERRORS = {
    "400": "invalid request (code: invalid_request / validation_error)",
    "401": "missing or unknown API key (code: unauthenticated)",
    "403": "key not allowed here (code: admin_key_required / corp_key_required / forbidden)",
    "404": "not found (code: not_found)",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def build() -> dict[str, Any]:
    if "spec" in _cache:
        return _cache["spec"]
    pairs: list[tuple[Any, Any]] = [(ErrorResponse, "serialization")]
    for ep in ENDPOINTS:
        ep.body, ep.query, ep.response = resolve(ep.body), resolve(ep.query), resolve(ep.response)
        if ep.body is not None:
            pairs.append((ep.body, "validation"))
        if isinstance(ep.response, type):
            pairs.append((ep.response, "serialization"))
    pairs = list(dict.fromkeys(pairs))
    key_map, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})

    def schema_of(model: Any, mode: str) -> dict[str, Any]:
        return key_map[(model, mode)]

    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": f"{ep.method.lower()}_{ep.path.strip('/').replace('/', '_')}"
            .replace("{", "").replace("}", "").replace("-", "_"),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in ep.path_params
            ],
            "responses": {},
        }
        if ep.query is not None:
            qschema = TypeAdapter(ep.query).json_schema()
            for name, prop in qschema.get("properties", {}).items():
                op["parameters"].append(
                    {"name": name, "in": "query", "required": name in qschema.get("required", []),
                     "schema": prop}
                )
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(ep.body, "validation")}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if isinstance(ep.response, type):
            ok["content"] = {"application/json": {"schema": schema_of(ep.response, "serialization")}}
        op["responses"][str(ep.status)] = ok
        for status, text in _ERRORS.items():
            if ep.auth == "public" and status in ("401", "403"):
                continue
            op["responses"][status] = {
                "description": text,
                "content": {"application/json": {"schema": _ref("ErrorResponse")}},
            }
        if ep.auth != "public":
            op["security"] = [{"bearer": []}]
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "WeCom SCRM operator API",
            "version": "1",
            "description": "Bearer API keys: an admin key registers corps; each corp key sees only its corp.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    _cache["spec"] = spec
    return spec
