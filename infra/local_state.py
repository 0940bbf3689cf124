"""`make run`'s data across restarts: one JSON file (`.run/state.json`) written when the stack
stops cleanly (Ctrl-C, SIGTERM) and read back when it starts, before anything is served.

What it holds, and why each part:

- the DynamoDB table's items (a scan of moto): corps, API keys, channel codes, customers, stats;
- the secrets key (its id and its 32 bytes of material): corp secrets are sealed with a KMS data
  key under it, and moto makes keys up anew on every start, so without the same key the restored
  corps' secrets would never open (infra/moto_fixes.py lets a key be created with given material);
- the WeCom sandbox's world (corps, staff, customers, relations, tags, contact ways, tokens, its id
  counter) and its journal: the product's data names the sandbox's customers, tags and contact
  ways, and both sides hold the demo corp's secrets;
- the demo corp's API key (shown once, stored only hashed) and the admin key, so `.run/env` and
  scripts keep working.

Not kept: SQS messages (in flight, delayed or dead-lettered: work queued at the stop is dropped),
the sandbox's faults, request log and clock shift. A stop that is not clean (SIGKILL, a crash)
saves nothing, and the previous file stays.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import os
import types
import typing
from typing import Any

FORMAT = 1


# -- DynamoDB items (low-level attribute values; binary as base64) ------------------------------
def _encode_bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"cannot save {type(value).__name__}")


def _decode_bytes(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$b64"}:
        return base64.b64decode(obj["$b64"])
    return obj


def scan_table(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def load_table(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
        while requests:
            unprocessed = dynamodb.batch_write_item(RequestItems={table: requests})
            requests = unprocessed.get("UnprocessedItems", {}).get(table, [])


# -- the sandbox's world: its dataclasses, generically --------------------------------------------
def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _to_json(v) for k, v in value.items()}
        return {"$pairs": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot save {type(value).__name__} in the sandbox's state")


def _from_json(value: Any, hint: Any = Any) -> Any:
    """Rebuild what _to_json wrote, guided by the dataclasses' type hints."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        classes = [a for a in args if dataclasses.is_dataclass(a)]
        hint = classes[0] if classes and isinstance(value, dict) else Any
        origin, args = None, ()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: _from_json(value[f.name], hints[f.name])
                       for f in dataclasses.fields(hint) if f.init and f.name in value})
    if isinstance(value, dict) and set(value) == {"$tuple"}:
        return tuple(_from_json(v) for v in value["$tuple"])
    if isinstance(value, dict) and set(value) == {"$pairs"}:
        key_hint, value_hint = args if origin is dict and args else (Any, Any)
        return {_from_json(k, key_hint): _from_json(v, value_hint) for k, v in value["$pairs"]}
    if isinstance(value, dict):
        value_hint = args[1] if origin is dict and args else Any
        return {k: _from_json(v, value_hint) for k, v in value.items()}
    if isinstance(value, list):
        item_hint = args[0] if origin is list and args else Any
        return [_from_json(v, item_hint) for v in value]
    return value


def sandbox_state(sb: Any) -> dict[str, Any]:
    world = sb.world
    with world.lock:
        next_id = next(world._ids)
        world._ids = itertools.count(next_id)
        return {"corps": {cid: _to_json(c) for cid, c in world.corps.items()},
                "tokens": {t: _to_json(v) for t, v in world.tokens.items()},
                "next_id": next_id,
                "journal": sb.journal.entries()}


def restore_sandbox(sb: Any, state: dict[str, Any]) -> None:
    from sandbox.state import Corp, IssuedToken

    world = sb.world
    with world.lock:
        world.corps = {cid: _from_json(c, Corp) for cid, c in state["corps"].items()}
        world.tokens = {t: _from_json(v, IssuedToken) for t, v in state["tokens"].items()}
        world._ids = itertools.count(int(state["next_id"]))
    sb.journal.clear()
    for entry in state.get("journal", []):
        fields = {k: v for k, v in entry.items() if k not in ("kind", "seq")}
        sb.journal.record(entry["kind"], **fields)


# -- the file ----------------------------------------------------------------------------------
class StateFileError(RuntimeError):
    """The saved state cannot be read back; nothing was started."""


def read(path: str) -> dict[str, Any] | None:
    """The saved state, or None when there is no file."""
    try:
        with open(path) as f:
            state = json.load(f, object_hook=_decode_bytes)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateFileError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StateFileError(f"{path} is not a local state file of format {FORMAT}")
    return state


def write(path: str, state: dict[str, Any]) -> None:
    """Write atomically (a stop interrupted half way leaves the previous file whole); the
    previous file is kept as `<path>.previous`. Only its owner may read it: it holds keys."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"format": FORMAT, **state}, f, default=_encode_bytes)
    if os.path.exists(path):
        os.replace(path, f"{path}.previous")
    os.replace(tmp, path)
