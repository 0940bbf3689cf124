"""The operator console in headless Chromium against the local stack: what an operator does, from
sign-in to a broadcast, each step waiting for what the page shows (never for a fixed time)."""

from __future__ import annotations

import json
import re
import time

import httpx

from tests.browser.cdp import Browser
from tests.browser.conftest import SCREENSHOTS, SEEDED_CUSTOMERS

CORP_PAGES = ["dashboard", "channel-codes", "group-codes", "customers", "groups", "segments", "broadcasts", "sop",
              "handovers", "churn", "syncs"]
ADMIN_PAGES = ["dead-letters"]
LOAD_TIMES: dict[str, int] = {}
# API requests a page may make to show itself: each lists one page of what it shows (a customer list
# read 50 by 50 through 1,000 customers would be 20). Counted, not timed: the same on a busy machine.
API_BUDGET = 6


def api(stack, method: str, path: str, **kwargs):
    headers = {"Authorization": f"Bearer {stack.demo['api_key']}"}
    return httpx.request(method, f"{stack.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def open_page(browser, stack, page: str, arg: str = "") -> None:
    """Go to a page and wait until it has rendered (app.js sets main's data-page when done)."""
    browser.js("document.getElementById('main').removeAttribute('data-page')")
    target = json.dumps('#/' + page + ('/' + arg if arg else ''))
    browser.js(f"location.hash === {target} ? window.dispatchEvent(new HashChangeEvent('hashchange'))"
               f" : (location.hash = {target})")
    browser.wait(f"document.getElementById('main').dataset.page === {json.dumps(page)}")


def load_page(browser, stack, page: str, arg: str = "") -> dict:
    """Open a page and wait until it is drawn and every request it made has answered: its load time as
    the page measured it (route change to drawn), the wall time to idle seen from here, its API requests."""
    mark = len(browser.requests)
    started = time.monotonic()
    open_page(browser, stack, page, arg)
    drawn = len(browser.requests)  # made before it was drawn (a refresh every few seconds comes later)
    made = browser.settled(mark, drawn)
    calls = [r for r in made if "/api/v1/" in r["url"]]
    return {"page": page, "loaded_ms": int(browser.js("document.getElementById('main').dataset.loadedMs")),
            "idle_ms": round(1000 * (time.monotonic() - started)), "api_requests": len(calls),
            "api_bytes": sum(r["bytes"] for r in calls), "api_ms": max((r["ms"] or 0 for r in calls), default=0),
            "api": [f"{r['method']} {r['url'].split('/api/v1', 1)[1]}"
                                                                for r in calls]}


def within_budget(load: dict) -> None:
    """A page shows one page of each list: few API requests, and never the customers read to the end."""
    assert load["api_requests"] <= API_BUDGET, \
        f"{load['page']}: {load['api_requests']} API requests: {[u[:80] for u in load['api']]}"
    listed = [u for u in load["api"] if u.startswith("GET /customers?")]
    assert len(listed) <= 1 and not any("cursor=" in u for u in listed), \
        f"{load['page']} pages through the customers: {listed}"


def switch_language(browser, lang: str) -> None:
    """Choose the language and wait for the page it redraws (its requests are not the next page's)."""
    browser.js("document.getElementById('main').removeAttribute('data-page')")
    browser.fill("#lang", lang)
    browser.wait("!!document.getElementById('main').dataset.page")


def sign_in(browser, stack, key: str) -> None:
    browser.goto(f"{stack.base_url}/console")
    browser.wait("!!document.querySelector('#signin') || !!document.getElementById('main').dataset.page")
    if browser.js("!!document.getElementById('main').dataset.page"):  # signed in already (this tab)
        browser.click("#signout")
    browser.wait("!!document.querySelector('#signin input[name=api_key]')")
    browser.fill("#signin input[name=api_key]", key)
    browser.click("#signin button[type=submit]")
    browser.wait("!!document.getElementById('main').dataset.page")


def search_until(browser, form: str, condition: str, what: str, timeout: float = 90) -> None:
    """Submit a search form again until the page shows what it should, as an operator would."""
    deadline = time.monotonic() + timeout
    while not browser.js(condition):
        assert time.monotonic() < deadline, f"{what} never showed"
        time.sleep(0.5)  # polling interval, not an assertion
        browser.click(f"#{form} button[type=submit]")
        browser.wait(f"!document.querySelector('#{form} button[type=submit]').disabled")


def metric(browser, block: str, name: str) -> int:
    return int(browser.js(f"document.querySelector('[data-stats={block}] [data-metric={name}]').textContent"))


def test_a_wrong_key_is_refused_at_the_key_field_and_sign_out_forgets_the_key(browser, stack):
    browser.goto(f"{stack.base_url}/console")
    browser.wait("!!document.querySelector('#signin input[name=api_key]')")
    browser.fill("#signin input[name=api_key]", "scrm_not-a-key")
    browser.click("#signin button[type=submit]")
    shown = browser.wait("document.querySelector('[data-error-for=api_key]').textContent")
    said = httpx.get(f"{stack.base_url}/api/v1/dead-letters", timeout=30,
                     headers={"Authorization": "Bearer scrm_not-a-key"}).json()["error"]["message"]
    assert shown == said  # the API's own words, at the field
    browser.screenshot(str(SCREENSHOTS / "sign-in-refused.png"))

    sign_in(browser, stack, stack.demo["api_key"])
    assert browser.js("sessionStorage.getItem('scrm.console.key')") == stack.demo["api_key"]
    assert browser.js("localStorage.getItem('scrm.console.key')") is None  # the tab only
    browser.click("#signout")
    browser.wait("!!document.querySelector('#signin')")
    assert browser.js("sessionStorage.getItem('scrm.console.key')") is None


def test_dates_are_the_corps_not_the_browsers(browser, stack):
    """An operator abroad (the browser in New York) sees and picks the corp's days and times (Asia/Shanghai)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    corp_zone = ZoneInfo(api(stack, "GET", "/me").json()["corp"]["time_zone"])
    browser.send("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    try:
        sign_in(browser, stack, stack.demo["api_key"])
        switch_language(browser, "en")
        assert browser.js("document.getElementById('who').textContent") == f"Demo Corp · {corp_zone.key}"
        ui = "import(location.origin + '/console/ui.js')"
        assert browser.js(f"{ui}.then(m => m.fmtTime(1))") == "1/1/1970, 8:00:01 AM"  # NY: 7 PM the day before
        midnight = int(datetime(2026, 1, 31, tzinfo=corp_zone).timestamp())
        assert browser.js(f"{ui}.then(m => m.zonedEpoch('2026-01-31'))") == midnight
        assert browser.js(f"{ui}.then(m => m.zonedEpoch('2026-01-31T09:30'))") == midnight + 9 * 3600 + 1800
        before = datetime.now(corp_zone).date().isoformat()
        shown = browser.js(f"{ui}.then(m => m.today())")
        assert shown in {before, datetime.now(corp_zone).date().isoformat()}  # (either side of a midnight)
        open_page(browser, stack, "dashboard")
        assert browser.js("document.querySelector('#stats-range input[name=to]').value") == shown
    finally:
        browser.send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Shanghai"})


def test_a_bad_channel_code_shows_the_apis_error_at_its_field_and_creates_nothing(browser, stack):
    sign_in(browser, stack, stack.demo["api_key"])
    open_page(browser, stack, "channel-codes")
    before = api(stack, "GET", "/channel-codes").json()["items"]
    browser.fill("#channel-code-create input[name=name]", "No staff")
    browser.fill("#channel-code-create input[name=staff_ids]", "")
    browser.click("#channel-code-create button[type=submit]")
    shown = browser.wait("document.querySelector('#channel-code-create [data-error-for=staff_ids]').textContent")
    answer = api(stack, "POST", "/channel-codes", json={"name": "No staff", "staff_ids": [], "channel": None,
                                                        "store": None, "daily_cap": None}).json()["error"]
    assert answer["code"] == "validation_error"
    assert shown == next(d["message"] for d in answer["details"] if d["field"] == "staff_ids")
    assert browser.js("document.querySelector('#channel-code-create input[name=staff_ids]')"
                      ".getAttribute('aria-invalid')") == "true"
    browser.screenshot(str(SCREENSHOTS / "channel-code-error.png"))
    assert api(stack, "GET", "/channel-codes").json()["items"] == before

    open_page(browser, stack, "broadcasts")  # a broadcast with no segment: the error is at the segment
    browser.fill("#broadcast-create input[name=name]", "No segment")
    browser.fill("#broadcast-create textarea[name=text]", "Hi")
    browser.click("#broadcast-create button[type=submit]")
    shown = browser.wait("document.querySelector('#broadcast-create [data-error-for=segment_id]').textContent")
    answer = api(stack, "POST", "/broadcasts", json={"name": "No segment", "content": {"text": "Hi"},
                                                     "target": {"kind": "customers", "segment_id": ""}}).json()
    assert shown == next(d["message"] for d in answer["error"]["details"] if d["field"].endswith("segment_id"))
    assert api(stack, "GET", "/broadcasts").json()["items"] == []


def test_a_scan_of_a_new_channel_code_shows_the_customer_and_moves_the_chart(browser, stack):
    sign_in(browser, stack, stack.demo["api_key"])
    assert browser.js("document.getElementById('main').dataset.page") == "dashboard"
    browser.wait("!!document.querySelector('[data-stats=contacts] [data-metric=adds]')")
    adds_before = metric(browser, "contacts", "adds")

    open_page(browser, stack, "channel-codes")
    browser.fill("#channel-code-create input[name=name]", "Store 9 poster")
    browser.fill("#channel-code-create input[name=staff_ids]", "alice, bob")
    browser.fill("#channel-code-create input[name=state]", "store9-poster")
    browser.click("#channel-code-create button[type=submit]")
    browser.wait("document.getElementById('main').innerText.includes('store9-poster')")
    browser.screenshot(str(SCREENSHOTS / "channel-codes.png"))

    config_id = api(stack, "GET", "/channel-codes/store9-poster").json()["config_id"]
    scanned = httpx.post(f"{stack.wecom_api_base.rsplit('/cgi-bin', 1)[0]}/sandbox/corps/{stack.demo['corp_id']}"
                         "/simulate/scan_contact_way", json={"config_id": config_id, "name": "Lily Chen"}, timeout=30)
    assert scanned.status_code == 200, scanned.text
    customer = scanned.json()["external_userid"]

    open_page(browser, stack, "customers")
    browser.fill("#customer-search input[name=channel]", "store9-poster")
    # (its name is not known until WeCom's profile is read: its id is shown)
    search_until(browser, "customer-search", f"!!document.querySelector('main a[href=\"#/customers/{customer}\"]')",
                 "the scanned customer")
    created = api(stack, "POST", "/tags", json={"group_name": "source", "names": ["store-9"]})
    assert created.status_code in (200, 201), created.text
    tag_id = next(t["tag_id"] for g in api(stack, "GET", "/tags").json()["groups"] for t in g["tags"]
                  if t["name"] == "store-9")
    open_page(browser, stack, "customers", customer)
    browser.wait("!!document.querySelector('.timeline [data-kind=added]')")
    browser.fill("#customer-tags select[name=add]", tag_id)  # tag the customer from their profile
    browser.click("#customer-tags button[type=submit]")
    browser.wait("document.querySelector('.profile').innerText.includes('store-9')")
    assert tag_id in api(stack, "GET", f"/customers/{customer}").json()["tags"]
    browser.screenshot(str(SCREENSHOTS / "customer.png"))

    open_page(browser, stack, "dashboard")
    browser.wait(f"Number(document.querySelector('[data-stats=contacts] [data-metric=adds]').textContent) "
                 f"=== {adds_before + 1}")
    # the chart moved too: today's point of the adds line is drawn at the new count
    drawn = browser.js("[...document.querySelectorAll('[data-stats=contacts] ~ svg [data-series=adds] circle')]"
                       ".map(c => Number(c.dataset.value)).reduce((a, b) => a + b, 0)")
    assert drawn == adds_before + 1
    browser.click("[data-stats=contacts] ~ details summary")  # the numbers behind it, one click away
    assert browser.wait("document.querySelector('[data-stats=contacts] ~ details table') "
                        "&& document.querySelector('[data-stats=contacts] ~ details').open")
    browser.screenshot(str(SCREENSHOTS / "dashboard.png"))
    browser.fill("#stats-range select[name=by]", "channel")  # split by channel code: bars, one per code
    browser.click("#stats-range button[type=submit]")
    browser.wait("[...document.querySelectorAll('[data-stats=contacts] ~ svg [data-series=adds] rect')]"
                 ".some(r => r.querySelector('title').textContent.startsWith('store9-poster '))")
    browser.screenshot(str(SCREENSHOTS / "dashboard-by-channel.png"))


def test_a_segment_with_a_live_count_and_a_broadcast_scheduled_watched_and_one_cancelled(browser, stack):
    sign_in(browser, stack, stack.demo["api_key"])
    open_page(browser, stack, "segments")
    browser.fill("#segment-create input[name=name]", "Store 9 customers")
    browser.fill("#segment-create input[name=channels]", "store9-poster")
    browser.wait("document.querySelector('[data-preview-count]').textContent.startsWith('1 ')")
    browser.click("#segment-create button[type=submit]")
    browser.wait("document.getElementById('main').innerText.includes('Store 9 customers')")
    browser.screenshot(str(SCREENSHOTS / "segments.png"))

    open_page(browser, stack, "broadcasts")
    segment_id = next(s["segment_id"] for s in api(stack, "GET", "/segments").json()["items"]
                      if s["name"] == "Store 9 customers")
    browser.fill("#broadcast-create input[name=name]", "Store 9 opening")
    browser.fill("#broadcast-create select[name=segment_id]", segment_id)
    browser.wait("document.querySelector('[data-preview-count]').textContent.startsWith('1 ')")
    browser.fill("#broadcast-create textarea[name=text]", "Hello from {staff_name}")
    browser.click("#broadcast-create button[type=submit]")
    browser.wait("location.hash.startsWith('#/broadcasts/') && !!document.querySelector('[data-broadcast-status]')")
    # it progresses on its own (the page refreshes itself): planned, handed to WeCom, sent
    browser.wait("document.querySelector('[data-broadcast-status]').dataset.broadcastStatus === 'sent'")
    assert browser.js("document.querySelector('[data-count=sent]').textContent") == "1"
    browser.screenshot(str(SCREENSHOTS / "broadcast-sent.png"))

    open_page(browser, stack, "broadcasts")
    browser.fill("#broadcast-create input[name=name]", "Store 9 next week")
    browser.fill("#broadcast-create select[name=segment_id]", segment_id)
    browser.fill("#broadcast-create textarea[name=text]", "See you next week")
    browser.fill("#broadcast-create input[name=send_at]",
                 browser.js("new Date(Date.now() + 3 * 86400000 - new Date().getTimezoneOffset() * 60000)"
                            ".toISOString().slice(0, 16)"))
    browser.click("#broadcast-create button[type=submit]")
    browser.wait("document.querySelector('[data-broadcast-status]')?.dataset.broadcastStatus === 'scheduled'")
    browser.click("[data-broadcast-status] ~ * button, main button")
    browser.wait("document.querySelector('[data-broadcast-status]').dataset.broadcastStatus === 'cancelled'")
    browser.screenshot(str(SCREENSHOTS / "broadcast-cancelled.png"))


def test_a_group_shows_with_its_members_and_a_group_code_over_it_shows_its_fill(browser, stack):
    wecom = stack.wecom_api_base.rsplit("/cgi-bin", 1)[0]
    made = httpx.post(f"{wecom}/sandbox/corps/{stack.demo['corp_id']}/simulate/create_group", timeout=30,
                      json={"owner": "alice", "name": "Store 9 fans", "members": ["bob"]})
    assert made.status_code == 200, made.text
    chat_id = made.json()["chat_id"]
    sign_in(browser, stack, stack.demo["api_key"])
    # the create callback records the group; its name and members come from WeCom: a group sync reads them
    open_page(browser, stack, "syncs")
    browser.click("main .actions button:nth-of-type(2)")  # sync groups
    browser.wait("!document.querySelector('main .actions button:nth-of-type(2)').disabled")
    assert not browser.js("document.querySelector('main .form-error')?.textContent")
    open_page(browser, stack, "groups")
    search_until(browser, "group-search", "document.getElementById('main').innerText.includes('Store 9 fans')",
                 "the synced group")
    open_page(browser, stack, "groups", chat_id)
    browser.wait("document.getElementById('main').innerText.includes('bob')")
    browser.screenshot(str(SCREENSHOTS / "group.png"))

    open_page(browser, stack, "group-codes")
    browser.fill("#group-code-create input[name=name]", "Store 9 group")
    browser.fill("#group-code-create input[name=pool]", chat_id)
    browser.fill("#group-code-create input[name=threshold]", "100")
    browser.click("#group-code-create button[type=submit]")
    # its groups' fill against the threshold, and the rotation status
    browser.wait("document.querySelector('[data-status-for] .bar')?.getAttribute('aria-label') === "
                 + json.dumps(chat_id))
    assert browser.js("document.querySelector('[data-status-for] .bar').getAttribute('aria-valuemax')") == "100"
    browser.screenshot(str(SCREENSHOTS / "group-codes.png"))


def test_a_customer_sync_of_1000_customers_shows_its_progress(browser, stack):
    sign_in(browser, stack, stack.demo["api_key"])
    open_page(browser, stack, "syncs")
    browser.click("main .actions button")  # sync customers
    browser.wait("document.querySelector('[data-job-kind=customers]')?.dataset.jobStatus === 'done'")
    browser.screenshot(str(SCREENSHOTS / "syncs.png"))
    row = browser.js("document.querySelector('[data-job-kind=customers]').closest('tr').innerText")
    assert f"new_customers {SEEDED_CUSTOMERS}" in row  # its progress counts
    seen, cursor = 0, None
    while True:  # the seeded customers are all in: the pages below load over them
        page = api(stack, "GET", "/customers", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen >= SEEDED_CUSTOMERS


def assert_no_placeholders(browser, page: str) -> None:
    """No value left unfilled on the page (a null or undefined drawn as text)."""
    shown = browser.js("document.getElementById('main').innerText")
    assert not re.search(r"\b(null|undefined|NaN)", shown), f"{page}: {shown[:1500]}"


def simulate(stack, action: str, **body) -> dict:
    wecom = stack.wecom_api_base.rsplit("/cgi-bin", 1)[0]
    done = httpx.post(f"{wecom}/sandbox/corps/{stack.demo['corp_id']}/simulate/{action}", json=body, timeout=30)
    assert done.status_code == 200, done.text
    return done.json()


def new_customer_of_alice(stack, state: str) -> str:
    """A customer who scans a new channel code of alice's, once stored (its callback handled)."""
    made = api(stack, "POST", "/channel-codes", json={"name": state, "state": state, "staff_ids": ["alice"]})
    assert made.status_code == 201, made.text
    customer = simulate(stack, "scan_contact_way", config_id=made.json()["config_id"])["external_userid"]
    deadline = time.monotonic() + Browser.PATIENCE
    while api(stack, "GET", f"/customers/{customer}").status_code != 200:
        assert time.monotonic() < deadline, f"customer {customer} never stored"
        time.sleep(0.5)  # polling interval, not an assertion
    return customer


def field_error(browser, form: str, field: str) -> str:
    return browser.wait(f"document.querySelector('#{form} [data-error-for=\"{field}\"]').textContent")


def api_error(answer, field: str) -> str:
    return next(d["message"] for d in answer.json()["error"]["details"] if d["field"] == field)


def test_an_sop_calendar_is_refused_at_its_rule_then_created_sent_paused_and_resumed(browser, stack):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    state = "sop-poster"
    new_customer_of_alice(stack, state)
    sign_in(browser, stack, stack.demo["api_key"])
    open_page(browser, stack, "sop")
    zone = ZoneInfo(api(stack, "GET", "/me").json()["corp"]["time_zone"])
    due = (datetime.now(zone) + timedelta(seconds=150)).replace(second=0, microsecond=0)  # the next minutes
    rule = {"when": {"kind": "weekly", "weekday": 1, "time": ""},
            "whom": {"kind": "customers", "channel_code": state}, "content": {"text": "Welcome week, {staff_name}"}}
    fields = {"name": "Store onboarding", "rules.0.when": "weekly", "rules.0.when.weekday": "1",
              "rules.0.when.time": "", "rules.0.whom": "channel", "rules.0.whom.channel_code": state,
              "rules.0.content": rule["content"]["text"]}
    for name, value in fields.items():
        browser.fill(f'#sop-create [name="{name}"]', value)
    browser.click("#sop-create button[type=submit]")  # no time: the API's error at the rule's time
    shown = field_error(browser, "sop-create", "rules.0.when.time")
    answer = api(stack, "POST", "/sop-calendars", json={"name": "Store onboarding", "rules": [rule]})
    assert shown == api_error(answer, "rules.0.when.weekly.time")  # (the API names the kind of rule too)
    assert api(stack, "GET", "/sop-calendars").json()["items"] == []

    browser.click("#sop-create .actions button.secondary")  # a second rule: the first keeps its values
    browser.wait("!!document.querySelector('#sop-create [name=\"rules.1.when\"]')")
    kept = browser.js("document.querySelector('#sop-create [name=\"rules.0.content\"]').value")
    assert kept == fields["rules.0.content"]
    for name, value in {"rules.0.when": "date", "rules.0.when.date": due.date().isoformat(),
                        "rules.0.when.time": due.strftime("%H:%M"), "rules.1.when": "weekly",
                        "rules.1.when.weekday": "1", "rules.1.when.time": "09:00", "rules.1.whom": "channel",
                        "rules.1.whom.channel_code": state,
                        "rules.1.content": "Monday news"}.items():
        browser.fill(f'#sop-create [name="{name}"]', value)
    browser.click("#sop-create button[type=submit]")
    browser.wait("location.hash.startsWith('#/sop/') && !!document.querySelector('[data-calendar-status=active]')")
    browser.wait("document.querySelectorAll('[data-occurrence-status=pending]').length === 2")  # each rule's next
    # the date rule's time comes: the minute tick sends it as a broadcast, the page shows it (it refreshes itself)
    browser.wait("!!document.querySelector('[data-occurrence-status=done]')")
    assert browser.js("!!document.querySelector('[data-occurrence-status=done]').closest('tr')"
                      ".querySelector('a[href^=\"#/broadcasts/\"]')")
    browser.screenshot(str(SCREENSHOTS / "sop-calendar.png"))

    browser.click("[data-action=pause]")
    browser.wait("!!document.querySelector('[data-calendar-status=paused]')")
    browser.wait("document.querySelectorAll('[data-occurrence-status=pending]').length === 0")
    browser.click("[data-action=resume]")
    browser.wait("!!document.querySelector('[data-calendar-status=active]')")
    assert [c["status"] for c in api(stack, "GET", "/sop-calendars").json()["items"]] == ["active"]
    (rules_before,) = [c["rules"] for c in api(stack, "GET", "/sop-calendars").json()["items"]]
    browser.fill("#sop-edit [name=name]", "Store onboarding, week 1")  # edited: its rules sent as they are
    browser.click("#sop-edit button[type=submit]")
    browser.wait("document.querySelector('main .profile').innerText.includes('Store onboarding, week 1')")
    (edited,) = api(stack, "GET", "/sop-calendars").json()["items"]
    assert edited["name"] == "Store onboarding, week 1" and edited["rules"] == rules_before  # same ids, same schedule
    open_page(browser, stack, "sop")
    browser.wait("document.getElementById('main').innerText.includes('Store onboarding')")
    browser.screenshot(str(SCREENSHOTS / "sop-calendars.png"))


def test_a_handover_is_refused_at_its_takeovers_then_runs_and_shows_each_customer(browser, stack):
    customer = new_customer_of_alice(stack, "handover-poster")
    sign_in(browser, stack, stack.demo["api_key"])
    open_page(browser, stack, "handovers")
    for name, value in {"mode": "in_service", "from_staff_id": "alice", "takeover_ids": "alice", "source": "list",
                        "customer_ids": customer}.items():
        browser.fill(f"#handover-create [name={name}]", value)
    browser.click("#handover-create button[type=submit]")  # to the member herself: the API's error at the takeovers
    shown = field_error(browser, "handover-create", "takeover_ids")
    answer = api(stack, "POST", "/handovers", json={"mode": "in_service", "from_staff_id": "alice",
                                                     "takeover_ids": ["alice"], "customer_ids": [customer]})
    assert shown == api_error(answer, "takeover_ids")
    assert api(stack, "GET", "/handovers").json()["items"] == []

    browser.fill("#handover-create [name=takeover_ids]", "bob")
    browser.click("#handover-create button[type=submit]")
    browser.wait("location.hash.startsWith('#/handovers/') && !!document.querySelector('[data-entry-status]')")
    browser.wait("document.querySelector('[data-entry-status]').dataset.entryStatus === 'waiting'")
    simulate(stack, "complete_transfers", force=True)  # WeCom moves the customer (24 h later)
    browser.wait("document.querySelector('[data-entry-status]').dataset.entryStatus === 'done'")  # refreshed on its own
    assert browser.js("document.querySelector('[data-entry-status]').closest('tr').innerText").count(customer) == 1
    browser.wait("document.querySelector('main [data-handover-status]').dataset.handoverStatus === 'done'")
    assert_no_placeholders(browser, "handover")
    browser.screenshot(str(SCREENSHOTS / "handover.png"))


def test_churn_lists_a_lost_customer_and_its_alert_setting_is_refused_at_the_field(browser, stack):
    customer = new_customer_of_alice(stack, "churn-poster")
    simulate(stack, "customer_deletes_staff", external_userid=customer, userid="alice")
    sign_in(browser, stack, stack.demo["api_key"])
    open_page(browser, stack, "churn")
    browser.fill("#churn-search [name=kind]", "lost")
    search_until(browser, "churn-search", f"!!document.querySelector('main a[href=\"#/customers/{customer}\"]')",
                 "the lost customer")
    assert browser.js(f"document.querySelector('main a[href=\"#/customers/{customer}\"]').closest('tr')"
                      ".querySelector('[data-churn-kind]').dataset.churnKind") == "lost"

    before = api(stack, "GET", "/churn-alerts").json()
    browser.click("#churn-alerts [name=enabled]")  # on, telling nobody: the API's error at the managers
    browser.click("#churn-alerts [name=notify_staff]")
    browser.click("#churn-alerts button[type=submit]")
    shown = field_error(browser, "churn-alerts", "managers")
    answer = api(stack, "PUT", "/churn-alerts", json={**{k: v for k, v in before.items() if k != "pending"},
                                                      "enabled": True, "notify_staff": False, "managers": []})
    assert shown == api_error(answer, "managers")
    assert api(stack, "GET", "/churn-alerts").json() == before

    browser.fill("#churn-alerts [name=managers]", "bob")
    browser.click("#churn-alerts button[type=submit]")
    browser.wait("document.querySelector('#churn-alerts output.ok').textContent !== ''")
    after = api(stack, "GET", "/churn-alerts").json()
    assert (after["enabled"], after["notify_staff"], after["managers"]) == (True, False, ["bob"])
    browser.screenshot(str(SCREENSHOTS / "churn.png"))


def _check_page(browser, stack, page: str, label: str) -> None:
    errors_before = len(browser.console_errors)
    load = load_page(browser, stack, page)
    LOAD_TIMES[f"{label}:{page}"] = load["loaded_ms"]
    within_budget(load)
    assert_no_placeholders(browser, page)
    unlabelled = browser.js("""[...document.querySelectorAll('input, select, textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name || e.id)""")
    assert unlabelled == [], f"{page}: fields without a label: {unlabelled}"
    assert not browser.js("document.querySelector('main .form-error:not(:empty)')"), \
        browser.js("document.querySelector('main .form-error').textContent")
    assert browser.console_errors[errors_before:] == [], page
    browser.screenshot(str(SCREENSHOTS / f"{label}-{page}.png"))


def test_every_page_loads_without_console_errors_with_labelled_fields_in_both_languages_and_on_a_phone(
        browser, stack):
    for lang in ("en", "zh"):
        sign_in(browser, stack, stack.demo["api_key"])
        switch_language(browser, lang)
        for page in CORP_PAGES:
            _check_page(browser, stack, page, f"{lang}-desktop")
    browser.resize(390, 844, mobile=True)
    try:
        for page in CORP_PAGES:
            _check_page(browser, stack, page, "zh-phone")
        browser.click("#menu")
        browser.wait("getComputedStyle(document.getElementById('nav')).display !== 'none'")
        browser.screenshot(str(SCREENSHOTS / "zh-phone-menu.png"))
    finally:
        browser.resize(1280, 900)
    sign_in(browser, stack, stack.admin_key)
    for page in ADMIN_PAGES:
        _check_page(browser, stack, page, "admin")
    assert browser.js("window.__missingStrings") == []
    (SCREENSHOTS / "load-times.json").write_text(json.dumps(LOAD_TIMES, indent=1))
    print("console page load times (ms, with 1,000+ customers):", json.dumps(LOAD_TIMES))
