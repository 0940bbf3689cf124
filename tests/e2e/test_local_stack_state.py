"""`make run` keeps its data across restarts: what it held at Ctrl-C (the corp, its API key, the
customers, on both sides: the SCRM and the WeCom sandbox) is there again after a restart, the
corp's sealed secrets still open (a new callback is verified and answered), and `--fresh` starts
empty. Over the real command, as a developer runs it, with the state file in a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from infra.local_stack import ROOT, free_port


class Run:
    """`python -m infra.local_stack --state <tmp>/state.json` in the background."""

    def __init__(self, state: str, *extra: str) -> None:
        self.ports = {"SCRM_HTTP_PORT": free_port(), "SCRM_MOTO_PORT": free_port(),
                      "SCRM_SANDBOX_PORT": free_port()}
        env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}}
        for name in ("WECOM_API_BASE", "SCRM_ADMIN_KEY", "SCRM_LOCAL_STATE"):
            env.pop(name, None)
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.local_stack", "--state", state, *extra],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.banner: list[str] = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line.rstrip("\n"))
            if line.lstrip().startswith("local data:"):
                break
        assert self.banner and self.banner[-1].lstrip().startswith("local data:"), self.banner
        self.env = dict(line.removeprefix("export ").split("=", 1)
                        for line in open(os.path.join(os.path.dirname(state), "env")).read().splitlines())
        self.scrm = httpx.Client(base_url=self.env["SCRM"], timeout=30,
                                 headers={"Authorization": f"Bearer {self.env['KEY']}"})
        self.wecom = httpx.Client(base_url=self.env["WECOM"], timeout=30)

    @property
    def data_line(self) -> str:
        return self.banner[-1].split("local data:", 1)[1].strip()

    def stop(self) -> str:
        """Ctrl-C, as at the terminal; what it printed after the banner."""
        self.scrm.close()
        self.wecom.close()
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, out
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def scan(self, name: str, config_id: str) -> str:
        resp = self.wecom.post(f"/sandbox/corps/{self.env['CORP']}/simulate/scan_contact_way",
                               json={"config_id": config_id, "name": name})
        assert resp.status_code == 200, resp.text
        return resp.json()["external_userid"]

    def welcomed(self, customer: str, timeout: float = 30) -> dict:
        """The customer as the SCRM shows it, once added, tagged and welcomed."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            resp = self.scrm.get(f"/api/v1/customers/{customer}")
            if resp.status_code == 200:
                body = resp.json()
                kinds = {e["kind"] for e in body["timeline"]}
                if body["tags"] and {"added", "welcome_sent"} <= kinds:
                    return body
            time.sleep(0.25)
        raise AssertionError(f"{customer} not added, tagged and welcomed in {timeout:.0f} s")


@pytest.fixture
def runs():
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


def test_make_run_keeps_corp_key_and_customers_across_a_restart_and_fresh_starts_empty(tmp_path, runs):
    state = str(tmp_path / "state.json")

    # 1. A first start: empty, and says so. A tag, a channel code and a customer who scanned it.
    first = Run(state)
    runs.append(first)
    assert first.data_line.startswith("starting empty (no "), first.banner
    resp = first.scrm.post("/api/v1/tags", json={"group_name": "source", "names": ["store-7"]})
    assert resp.status_code == 201, resp.text
    tag = resp.json()["tags"][0]["tag_id"]
    resp = first.scrm.post("/api/v1/channel-codes", json={
        "name": "Store 7 poster", "state": "store7-poster", "staff_ids": ["alice"], "tag_ids": [tag],
        "welcome": {"text": "Hi {customer_name}, welcome!"}})
    assert resp.status_code == 201, resp.text
    config_id = resp.json()["config_id"]
    lily = first.scan("Lily Chen", config_id)
    first.welcomed(lily)
    first_env = dict(first.env)
    out = first.stop()
    assert "saved " in out and "1 sandbox customers to " in out, out
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"  # it holds keys

    # 2. A restart on other ports: says what it restored; the corp, its API key (the same one,
    # in .run/env too), the admin key and the customer are there, on both sides.
    second = Run(state)
    runs.append(second)
    assert second.data_line.startswith("restored "), second.banner
    assert " 1 sandbox corps and 1 sandbox customers from " in second.data_line
    assert second.env["KEY"] == first_env["KEY"] and second.env["SCRM_ADMIN_KEY"] == first_env["SCRM_ADMIN_KEY"]
    assert second.env["SCRM"] != first_env["SCRM"]  # other ports: nothing reached the first run
    assert second.scrm.get(f"/api/v1/corps/{second.env['CORP']}").status_code == 200
    customer = second.scrm.get(f"/api/v1/customers/{lily}").json()
    assert customer["profile"]["name"] == "Lily Chen" and customer["tags"] == [tag]
    sandbox_state = second.wecom.get(f"/sandbox/corps/{second.env['CORP']}/state").json()
    assert [c["external_userid"] for c in sandbox_state["customers"]] == [lily]
    welcomes = second.wecom.get("/sandbox/journal", params={"kind": "welcome"}).json()["entries"]
    assert [w["external_userid"] for w in welcomes] == [lily]

    # The corp's sealed secrets open after the restart (the KMS key came back with them): a new
    # customer's callback is verified, decrypted and handled, and the sandbox's ids go on
    # rather than repeat.
    max_ = second.scan("Max Wu", config_id)
    assert max_ != lily
    assert second.welcomed(max_)["profile"]["name"] == "Max Wu"
    welcomes = second.wecom.get("/sandbox/journal", params={"kind": "welcome"}).json()["entries"]
    assert welcomes[-1]["text"] == "Hi Max Wu, welcome!"
    # The demo key revoked before the stop: the next start issues the demo corp another one.
    admin = {"Authorization": f"Bearer {second.env['SCRM_ADMIN_KEY']}"}
    keys = second.scrm.get(f"/api/v1/corps/{second.env['CORP']}/api-keys", headers=admin).json()["items"]
    for key in keys:
        resp = second.scrm.delete(f"/api/v1/corps/{second.env['CORP']}/api-keys/{key['key_id']}", headers=admin)
        assert resp.status_code in (200, 204), resp.text
    second.stop()

    third = Run(state)
    runs.append(third)
    assert " 1 sandbox corps and 2 sandbox customers from " in third.data_line, third.banner
    assert third.env["KEY"] != first_env["KEY"]
    assert {c["customer_id"] for c in third.scrm.get("/api/v1/customers").json()["items"]} == {lily, max_}
    third.stop()

    # 3. --fresh (make run FRESH=1): empty, says so, and the saved file is replaced at the stop.
    fresh = Run(state, "--fresh")
    runs.append(fresh)
    assert fresh.data_line.startswith("starting empty (--fresh"), fresh.banner
    assert fresh.scrm.get("/api/v1/customers").json()["items"] == []
    assert fresh.scrm.get(f"/api/v1/customers/{lily}").status_code == 404
    assert fresh.scrm.get("/api/v1/tags").json()["groups"] == []
    assert fresh.wecom.get(f"/sandbox/corps/{fresh.env['CORP']}/state").json()["customers"] == []
    assert fresh.env["KEY"] not in (first_env["KEY"], third.env["KEY"])
    out = fresh.stop()
    assert "saved " in out and " 0 sandbox customers to " in out, out
    with open(state) as f:
        assert json.load(f)["sandbox"]["corps"][fresh.env["CORP"]]["customers"] == {}
    assert os.path.exists(state + ".previous")  # the run before, once


def test_an_unreadable_state_file_stops_make_run_before_anything_starts(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    env = {**os.environ, "SCRM_HTTP_PORT": str(free_port()), "SCRM_MOTO_PORT": str(free_port()),
           "SCRM_SANDBOX_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-m", "infra.local_stack", "--state", str(state)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "local stack not started: cannot read" in result.stderr and "--fresh" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert state.read_text() == "{not json"  # left as it was
