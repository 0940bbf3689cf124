"""Group codes, broadcasts and SOP calendars probed from outside in, as a new operator or an attacker
would use them (README and the OpenAPI document only): each refusal is a clear 4xx naming its field,
before WeCom is touched and with nothing stored."""

from __future__ import annotations

import pytest

from tests.functional.test_group_codes import CODES, groups

WELCOME_API = "externalcontact/group_welcome_template"


def _code_calls(world) -> list[str]:
    return [r["api"] for r in world.sb.requests() if r["api"].startswith((WELCOME_API, "externalcontact/groupchat/"
                                                                                      "add_join_way"))]


@pytest.mark.parametrize("welcome, field", [
    ({"image": {}}, "image"),  # neither media_id nor pic_url: WeCom's 44004
    ({"image": {"picurl": "https://x/p.png"}}, "image.picurl"),  # a typo of pic_url, silently dropped
    ({"image": {"pic_url": "ftp://x/p.png"}}, "image.pic_url"),
    ({"link": {"title": "", "url": "https://x"}}, "link.title"),
    ({"link": {"title": "t", "url": "not a url"}}, "link.url"),
    ({"miniprogram": {"title": "t", "pic_media_id": "", "appid": "wx1", "page": "p"}}, "miniprogram.pic_media_id"),
    ({"file": {"media_id": ""}}, "file.media_id"),
    ({"text": {"content": "hi", "contnet": "typo"}}, "text.contnet"),
])
def test_a_group_welcome_wecom_cannot_take_is_refused_at_its_field_before_wecom_is_touched(world, welcome, field):
    """README: a welcome over WeCom's limits is 400 `validation_error`, refused before WeCom is
    touched; on create and on PUT /welcome alike, with nothing stored."""
    pool = groups(world, 2)
    status, code = world.call("POST", CODES, {"name": "Store", "pool": pool, "threshold": 5})
    assert status == 201, code
    before = _code_calls(world)
    status, answer = world.call("POST", CODES, {"name": "Other", "pool": pool, "threshold": 5, "welcome": welcome})
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert [d["field"] for d in answer["error"]["details"]] == [f"welcome.{field}"], answer
    status, answer = world.call("PUT", f"{CODES}/{code['code_id']}/welcome", welcome)
    assert (status, answer["error"]["code"]) == (400, "validation_error"), answer
    assert [d["field"] for d in answer["error"]["details"]] == [field], answer
    assert _code_calls(world) == before
    status, listed = world.call("GET", CODES)
    assert [(c["code_id"], c["welcome"]) for c in listed["items"]] == [(code["code_id"], None)]

