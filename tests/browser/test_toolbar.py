"""The staff chat-toolbar page (issue #15) in headless Chromium against the local stack: staff alice
opens the toolbar in a chat (the sandbox's WeCom client and its stand-in wx), the page signs her in
through WeCom's OAuth redirect, configures the JS-SDK with a signature the sandbox checks, and shows
the customer; she adds a tag; a customer of bob's shows nothing. Each step waits for what the page
shows (never for a fixed time)."""

from __future__ import annotations

import json
import re
import time

import httpx

from tests.browser.conftest import SCREENSHOTS


def api(stack, method: str, path: str, **kwargs):
    headers = {"Authorization": f"Bearer {stack.demo['api_key']}"}
    return httpx.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def customer_through_a_code(stack, staff: str, name: str, tag_ids: list[str]) -> tuple[str, dict]:
    code = api(stack, "POST", "/channel-codes", json={"name": f"{name}'s poster", "state": f"tb-{name.lower()}",
                                                     "staff_ids": [staff], "tag_ids": tag_ids,
                                                     "welcome": {"text": "Hi {customer_name}!"}})
    assert code.status_code == 201, code.text
    corp_id = stack.demo["corp_id"]
    ext = stack.sandbox_app.simulator.scan_contact_way(corp_id, code.json()["config_id"], name=name)["external_userid"]
    deadline = time.monotonic() + 90
    while ((api(stack, "GET", f"/customers/{ext}").json().get("profile") or {}).get("name") != name
           or not any(e["kind"] == "added" for e in api(stack, "GET", f"/customers/{ext}").json()["timeline"])):
        # the events queue's pollers add them (relation, tags; the name as the welcome reads it)
        assert time.monotonic() < deadline, f"{name} was never added"
        time.sleep(0.3)  # polling interval, not an assertion
    return ext, code.json()


def until(what: str, done, *, patience: float = 300):
    """Wait for the local stack's queue pollers (a message failing on a busy machine comes back
    after its visibility timeout, as on Lambda: hence minutes, not seconds)."""
    deadline = time.monotonic() + patience
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)  # polling interval, not an assertion


def in_a_group(stack, owner: str, name: str, ext: str) -> str:
    """`owner` creates a group and invites the customer (WeCom's create and add_member callbacks)."""
    corp_id, sim = stack.demo["corp_id"], stack.sandbox_app.simulator
    chat = sim.create_group(corp_id, owner, name)["chat_id"]
    sim.invite_to_group(corp_id, chat, owner, external_userid=ext)
    until(f"{ext} never joined {name}", lambda: ext in {
        m["member_id"] for m in (api(stack, "GET", f"/groups/{chat}").json().get("members") or [])})
    return chat


def sent_to(stack, name: str, channel: str) -> str:
    """A broadcast to the customers of one channel code, sent (the sends queue's pollers)."""
    b = api(stack, "POST", "/broadcasts", json={"name": name, "content": {"text": f"{name} from {{staff_name}}"},
                                                "target": {"kind": "customers", "filter": {"channels": [channel]}}})
    assert b.status_code == 201, b.text
    broadcast_id = b.json()["broadcast_id"]
    until(f"{name} was never sent",
          lambda: api(stack, "GET", f"/broadcasts/{broadcast_id}").json()["status"] == "sent")
    return broadcast_id


def test_alice_sees_her_customer_adds_a_tag_and_sees_nothing_of_bobs(browser, stack):
    corp_id = stack.demo["corp_id"]
    tags = api(stack, "POST", "/tags", json={"group_name": "toolbar", "names": ["vip", "new"]})
    assert tags.status_code == 201, tags.text
    vip, new = (t["tag_id"] for t in tags.json()["tags"])
    ann, _ = customer_through_a_code(stack, "alice", "Ann", [new])
    bea, _ = customer_through_a_code(stack, "bob", "Bea", [])
    chat = in_a_group(stack, "bob", "Ann's club", ann)  # bob's group: still Ann's, so alice sees it
    sale = sent_to(stack, "Spring sale", "tb-ann")

    stack.sandbox_app.open_toolbar(corp_id, "alice", external_userid=ann)
    browser.resize(390, 844, mobile=True)
    browser.goto(f"{stack.base_url}/toolbar/{corp_id}")
    assert browser.wait("document.getElementById('customer-name')?.textContent") == "Ann"
    assert "Ann's poster" in browser.js("document.getElementById('added').textContent")
    assert browser.js("[...document.querySelectorAll('#tags [data-tag]')].map(e => e.dataset.tag)") == [new]
    assert browser.js("[...document.querySelectorAll('#groups [data-group]')].map(e => e.dataset.group)") == [chat]
    assert "Ann's club" in browser.js("document.getElementById('groups').textContent")
    assert browser.js("[...document.querySelectorAll('#broadcasts [data-broadcast]')]"
                      ".map(e => [e.dataset.broadcast, e.dataset.status])") == [[sale, "sent"]]
    assert "Spring sale" in browser.js("document.getElementById('broadcasts').textContent")
    assert "code=" not in browser.js("location.href")  # the single-use code is gone from the URL
    assert not browser.js("document.getElementById('history')")  # no churn or handover: no such section
    browser.screenshot(str(SCREENSHOTS / "toolbar-customer.png"))

    browser.fill("#new-tag", vip)
    browser.click("#add-tag")
    browser.wait(f"!!document.querySelector('#tags [data-tag={json.dumps(vip)}]')")
    assert vip in stack.sandbox_app.world.corp(corp_id).relations[(ann, "alice")].tags  # WeCom's side
    timeline = api(stack, "GET", f"/customers/{ann}").json()["timeline"]
    assert [e["staff_id"] for e in timeline
            if e["kind"] == "tags_changed" and e["details"].get("added") == [vip]] == ["alice"]

    stack.sandbox_app.open_toolbar(corp_id, "alice", external_userid=bea)  # alice in a chat with bob's customer
    browser.goto(f"{stack.base_url}/toolbar/{corp_id}")
    assert browser.wait("document.getElementById('error')?.dataset.code") == "not_found"
    assert "Bea" not in browser.js("document.body.innerText")
    assert not browser.js("document.getElementById('customer-name')")
    browser.screenshot(str(SCREENSHOTS / "toolbar-refused.png"))
    assert not [e for e in browser.console_errors if "favicon" not in e and "404" not in e], browser.console_errors


def handed_over(stack, customer: str, from_staff: str, to_staff: str) -> None:
    """An in-service handover through the API, moved by the sandbox's WeCom (its 24 h, forced)."""
    h = api(stack, "POST", "/handovers", json={"mode": "in_service", "from_staff_id": from_staff,
                                                "takeover_ids": [to_staff], "customer_ids": [customer]})
    assert h.status_code == 202, h.text
    path = f"/handovers/{h.json()['handover_id']}"
    until("the handover never reached WeCom", lambda: api(stack, "GET", path).json()["status"] != "running")
    stack.sandbox_app.simulator.complete_transfers(stack.demo["corp_id"], force=True)
    until("the handover never ended", lambda: api(stack, "GET", path).json()["status"] == "done")
    until(f"{customer} never reached {to_staff}", lambda: any(
        r["staff_id"] == to_staff and r["status"] == "active"
        for r in api(stack, "GET", f"/customers/{customer}").json()["relations"]))


def test_bob_sees_the_handover_of_alices_customer_in_its_own_section_in_chinese(browser, stack):
    corp_id = stack.demo["corp_id"]
    cai, _ = customer_through_a_code(stack, "alice", "Cai", [])
    handed_over(stack, cai, "alice", "bob")

    stack.sandbox_app.open_toolbar(corp_id, "bob", external_userid=cai)
    browser.goto(f"{stack.base_url}/toolbar/{corp_id}?lang=zh")
    browser.js("sessionStorage.clear()")  # bob signs in: WeCom's OAuth again
    browser.goto(f"{stack.base_url}/toolbar/{corp_id}?lang=zh")
    assert browser.wait("document.getElementById('customer-name')?.textContent") == "Cai"
    history = browser.js("[...document.querySelectorAll('#history li')].map(e => [e.dataset.kind, e.textContent])")
    assert [k for k, _ in history] == ["transferred"], history
    assert "alice" in history[0][1] and "转接" in history[0][1]
    assert browser.js("document.getElementById('history-title').textContent") == "流失与转接记录"
    # one language: every heading and label of the page is Chinese (no English word left in them)
    words = browser.js("""[...document.querySelectorAll('h2, #added, [aria-label], option[value=""]')]
        .map(e => (e.getAttribute('aria-label') || e.textContent).replace(/Cai's poster|Cai|alice|bob/g, ''))""")
    assert words and not [w for w in words if re.search(r"[A-Za-z]{2,}", w)], words
    assert browser.js("document.documentElement.lang") == "zh-CN"
    browser.screenshot(str(SCREENSHOTS / "toolbar-history.png"))

    browser.goto(f"{stack.base_url}/toolbar/{corp_id}?lang=en")  # the same page in English
    assert browser.wait("document.getElementById('history-title')?.textContent") == "Churn and handover history"
    assert "handed over" in browser.js("document.querySelector('#history li').textContent")
