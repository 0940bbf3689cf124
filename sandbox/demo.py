"""The demo corp that ``make run`` / ``python -m sandbox --seed-demo`` registers.

Fixed, published credentials (sandbox only, never a real corp): the product's local stack
registers the same values so callbacks verify end to end.
"""

from __future__ import annotations

from typing import Any

from sandbox.app import Sandbox

DEMO_CORP_ID = "wwdemo000000000001"
DEMO_SECRET = "demo-contact-secret-0000000000000000000001"
DEMO_CALLBACK_TOKEN = "demoCallbackToken0001"
DEMO_AES_KEY = "DemoEncodingAESKey0000000000000000000000001"  # 43 characters
DEMO_AGENT_ID = "1000002"
DEMO_STAFF = (
    {"userid": "alice", "name": "Alice Wang"},
    {"userid": "bob", "name": "Bob Li"},
    {"userid": "carol", "name": "Carol Zhang"},
    {"userid": "dave", "name": "Dave Chen (not activated)", "activated": False},
)


def seed_demo(sandbox: Sandbox, *, callback_url: str | None = None) -> dict[str, Any]:
    """Register the demo corp (idempotent: an existing one is replaced) and return its details."""
    assert len(DEMO_AES_KEY) == 43
    corp = sandbox.register_corp(
        DEMO_CORP_ID, name="Demo Corp", secrets={"contact": DEMO_SECRET},
        callback_token=DEMO_CALLBACK_TOKEN, encoding_aes_key=DEMO_AES_KEY,
        callback_url=callback_url, agent_id=DEMO_AGENT_ID, staff=[dict(s) for s in DEMO_STAFF])
    return corp.public()


def describe(seeded: dict[str, Any]) -> str:
    lines = [
        "WeCom sandbox demo corp:",
        f"  corp_id          {seeded['corp_id']}",
        f"  secret (contact) {seeded['secrets']['contact']}",
        f"  callback token   {seeded['callback_token']}",
        f"  EncodingAESKey   {seeded['encoding_aes_key']}",
        f"  agent id         {seeded['agent_id']}",
        f"  callback_url     {seeded['callback_url'] or '(none yet: POST /sandbox/corps/<id>)'}",
        "  staff            " + ", ".join(
            s["userid"] + ("" if s["activated"] else " (not activated)") for s in seeded["staff"]),
    ]
    return "\n".join(lines)
