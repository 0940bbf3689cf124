"""`make run` on ports another process holds: refuse with one clear line, touch nothing, leave
no child behind; a start that fails half way stops what it started (moto's child included)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra import local_stack
from infra.local_stack import ROOT, LocalStack, PortInUse, free_port, port_is_free


class _Recorder(BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.requests.append((self.command, self.path))  # type: ignore[attr-defined]
        self.send_response(501)
        self.end_headers()

    do_GET = do_POST = _record

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def foreign():
    """A tiny HTTP server on a free port, standing for whatever else listens there."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def clean_env():
    saved = dict(os.environ)
    os.environ.pop("WECOM_API_BASE", None)
    yield
    os.environ.clear()
    os.environ.update(saved)
    from tests.conftest import reset_caches

    reset_caches()


def _port(server) -> int:
    return server.server_address[1]


def _children() -> set[int]:
    """Our child processes (Linux: /proc); an empty set where that cannot be read."""
    pids: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except OSError:
        pass
    return pids


def _run_main(**ports: int) -> subprocess.CompletedProcess:
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    env.pop("WECOM_API_BASE", None)
    # Not the developer's .run/state.json (make run reads it before it checks the ports).
    env["SCRM_LOCAL_STATE"] = os.path.join(ROOT, ".run", "no-such-dir", "state.json")
    return subprocess.run([sys.executable, "-m", "infra.local_stack"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_make_run_refuses_a_taken_moto_port_and_leaves_its_owner_alone(foreign):
    taken = _port(foreign)
    result = _run_main(SCRM_HTTP_PORT=free_port(), SCRM_MOTO_PORT=taken, SCRM_SANDBOX_PORT=free_port())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {taken} (moto, SCRM_MOTO_PORT) is already in use" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert foreign.requests == []  # no /moto-api/reset, nothing at all


def test_make_run_names_every_taken_port(foreign):
    taken = _port(foreign)
    result = _run_main(SCRM_HTTP_PORT=taken, SCRM_MOTO_PORT=free_port(), SCRM_SANDBOX_PORT=taken)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"port {taken} (HTTP API, SCRM_HTTP_PORT) is already in use" in line
    assert f"SCRM_HTTP_PORT and SCRM_SANDBOX_PORT are both {taken}" in line
    assert foreign.requests == []


@pytest.mark.parametrize("which", ["moto_port", "http_port"])
def test_stack_refuses_a_taken_port_before_starting_anything(foreign, clean_env, which):
    ports = {"http_port": free_port(), "moto_port": free_port(), "sandbox_port": free_port(),
             which: _port(foreign)}
    before_env, before_children = dict(os.environ), _children()
    stack = LocalStack(admin_key="admin-ports", **ports)
    with pytest.raises(PortInUse, match=f"port {_port(foreign)} .*is already in use"):
        stack.start()
    assert foreign.requests == []
    assert stack._servers == [] and stack.bridges == []
    assert dict(os.environ) == before_env
    assert _children() == before_children


def test_a_start_failing_half_way_stops_moto_and_the_rest(foreign, clean_env, monkeypatch):
    """The HTTP port taken between the check and chalice local's bind (a race): the moto child,
    the sandbox and the pollers already started all stop, and the error names the port."""
    taken = _port(foreign)
    stack = LocalStack(http_port=taken, moto_port=free_port(), sandbox_port=free_port(),
                       admin_key="admin-ports")
    checks: list[int] = []
    real_check = stack.check_ports

    def check_passing_once() -> None:  # the first check passes as if the port were still free
        checks.append(1)
        if len(checks) > 1:
            real_check()

    monkeypatch.setattr(stack, "check_ports", check_passing_once)
    motos: list[local_stack.MotoProcess] = []

    class Moto(local_stack.MotoProcess):
        def start(self) -> None:
            motos.append(self)
            super().start()

    monkeypatch.setattr(local_stack, "MotoProcess", Moto)
    before_children = _children()
    with pytest.raises(PortInUse, match=f"port {taken} \\(HTTP API, SCRM_HTTP_PORT\\)") as raised:
        stack.start()
    assert isinstance(raised.value.__cause__, OSError)
    assert len(motos) == 1 and motos[0].proc.poll() is not None  # moto's child is gone
    assert stack.bridges and all(not b.is_alive() for b in stack.bridges)
    assert stack._servers == []
    assert port_is_free(stack.moto_port) and port_is_free(stack.sandbox_port)
    assert _children() == before_children
    assert foreign.requests == []
