"""The whole system on one machine: moto's server as AWS, the WeCom sandbox, `chalice local` for
HTTP, and a runner that does what Lambda's event sources do (poll the queues, fire the
schedules) by calling the very handler functions Lambda calls (`app.handler_map`), honouring
partial batch responses.

`python -m infra.local_stack` (what `make run` runs) starts it all and stays in the foreground
until Ctrl-C. Its data (the table, the secrets key, the sandbox's world) is saved to
`.run/state.json` when it stops cleanly and restored when it starts; `--fresh` starts empty
(infra/local_state.py). Tests start the same `LocalStack` on free ports, without a state file.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import secrets as pysecrets
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any

logger = logging.getLogger("local_stack")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STATE_PATH = os.path.join(ROOT, ".run", "state.json")


def shown_path(path: str) -> str:
    """A path as the banner shows it: relative to the repository when inside it."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now. SO_REUSEADDR, as our servers set it, so
    that a port left in TIME_WAIT by a stack just stopped counts as free; a listener does not."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class PortInUse(RuntimeError):
    """A port the stack needs is taken (or asked for twice); nothing was started or touched."""


def _lambda_context(name: str) -> Any:
    from chalice.local import LambdaContext

    return LambdaContext(name, 256)


class QueueBridge(threading.Thread):
    """SQS -> Lambda for one queue, as the event source mapping does in AWS."""

    def __init__(self, app: Any, handler_name: str, queue_name: str, batch_size: int,
                 stop: threading.Event):
        super().__init__(name=f"sqs-{queue_name}", daemon=True)
        self.app, self.handler_name, self.queue_name = app, handler_name, queue_name
        self.batch_size, self.stop = min(batch_size, 10), stop
        self.processed = 0
        self.idle = threading.Event()

    def poll_once(self, wait_seconds: int = 1) -> int:
        from chalicelib.platform import aws, queues

        sqs = aws.client("sqs")
        url = queues.queue_url(self.queue_name)
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=self.batch_size,
                                   WaitTimeSeconds=wait_seconds, AttributeNames=["All"])
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        arn = f"arn:aws:sqs:us-east-1:123456789012:{self.queue_name}"
        event = {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {}), "messageAttributes": {},
             "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
             "eventSourceARN": arn, "awsRegion": "us-east-1"} for m in messages]}
        try:
            result = self.app.handler_map[self.handler_name](event, _lambda_context(self.handler_name))
        except Exception:  # Lambda failed whole: nothing is deleted, all come back
            logger.exception("%s failed on a batch", self.handler_name)
            return 0
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        self.processed += len(done)
        return len(messages)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                got = self.poll_once()
            except Exception:  # keep polling; moto restarts are not our problem here
                if self.stop.is_set():  # stopping: moto may be going away under us
                    break
                logger.exception("poll of %s failed", self.queue_name)
                time.sleep(1)
                continue
            if self.stop.is_set():
                break
            if got:
                self.idle.clear()
            else:
                self.idle.set()


def _cron_matches(expr: str, t: time.struct_time) -> bool:
    """cron(min hour dom month dow year), UTC, supporting numbers, lists, ranges, '*' and '?'."""
    fields = expr.split()
    values = [t.tm_min, t.tm_hour, t.tm_mday, t.tm_mon, (t.tm_wday + 1) % 7 + 1, t.tm_year]

    def match(field: str, value: int) -> bool:
        if field in ("*", "?"):
            return True
        for part in field.split(","):
            if "-" in part:
                lo, hi = part.split("-")
                if lo.isdigit() and hi.isdigit() and int(lo) <= value <= int(hi):
                    return True
            elif part.isdigit() and int(part) == value:
                return True
        return False

    return all(match(f, v) for f, v in zip(fields, values, strict=False))


class ScheduleFirer(threading.Thread):
    """EventBridge schedules: moto stores them but never fires, so we do."""

    def __init__(self, app: Any, stop: threading.Event):
        super().__init__(name="schedules", daemon=True)
        self.app, self.stop = app, stop
        self.schedules: list[tuple[str, str]] = []
        from chalice.app import ScheduledEventConfig

        for source in app.event_sources:
            if isinstance(source, ScheduledEventConfig):
                expr = source.schedule_expression
                expr = expr if isinstance(expr, str) else expr.to_string()
                self.schedules.append((source.name, expr))

    def fire(self, name: str) -> Any:
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012",
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1",
                 "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{name}"], "detail": {}}
        return self.app.handler_map[name](event, _lambda_context(name))

    def run(self) -> None:
        last_fired: dict[str, float] = {}
        while not self.stop.wait(1.0):
            now = time.time()
            for name, expr in self.schedules:
                due = False
                m = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expr)
                if m:
                    unit = {"minute": 60, "hour": 3600, "day": 86400}[m.group(2).rstrip("s")]
                    due = now - last_fired.get(name, now - 10**9) >= int(m.group(1)) * unit
                elif expr.startswith("cron("):
                    minute = int(now // 60)
                    due = (last_fired.get(name, -1) // 60 != minute
                           and _cron_matches(expr[5:-1], time.gmtime(now)))
                if due:
                    last_fired[name] = now
                    try:
                        self.fire(name)
                    except Exception:
                        logger.exception("schedule %s failed", name)


class MotoProcess:
    """moto's server in a child process of its own: in-process it would share one GIL with the
    consumer, chalice local, the sandbox and the simulated customers, and on 2 cores that alone
    caps the local stack (measured by bench/welcome_burst.py). Same interface as
    `moto.server.ThreadedMotoServer`; infra/moto_fixes.py is applied in the child.

    The child has a session of its own, so a Ctrl-C at the terminal reaches only us and we stop
    it after the queue pollers (else they would poll a dead moto); it exits by itself when we go
    (its stdin, a pipe from us, reaches EOF), so it is never left behind on its port."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 5055) -> None:
        self.ip, self.port = ip_address, port
        self.proc: Any = None

    def start(self) -> None:
        import subprocess

        code = (f"import os, sys, threading; sys.path.insert(0, {ROOT!r})\n"
                "def _orphaned():\n"
                "    while os.read(0, 4096):\n"
                "        pass\n"
                "    os._exit(0)\n"
                "threading.Thread(target=_orphaned, daemon=True).start()\n"
                "import logging; logging.getLogger('werkzeug').disabled = True\n"
                "from infra import moto_fixes; moto_fixes.apply()\n"
                "from moto.server import main\n"
                f"main(['-H', {self.ip!r}, '-p', '{self.port}'])\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto's server process exited at start")
            try:
                with socket.create_connection((self.ip, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto's server process did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001  (it must go)
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()


class LocalStack:
    def __init__(self, *, http_port: int = 8000, moto_port: int = 5055, sandbox_port: int = 8700,
                 admin_key: str | None = None, wecom_api_base: str | None = None,
                 start_http: bool = True, start_workers: bool = True, moto_in_process: bool = False,
                 events_pollers: int = 4, state_path: str | None = None, fresh: bool = False):
        from infra import local_state

        self.http_port, self.moto_port, self.sandbox_port = http_port, moto_port, sandbox_port
        # Data kept across restarts (None: none kept). Read now: a file that cannot be read stops
        # us before anything starts (StateFileError), rather than be replaced by an empty one.
        self.state_path, self.fresh = state_path, fresh
        self.saved: dict[str, Any] | None = (
            local_state.read(state_path) if state_path and not fresh else None)
        self.restored: dict[str, int] | None = None
        self.kms_key: dict[str, str] | None = (self.saved or {}).get("kms_key")
        self.admin_key = (admin_key or os.environ.get("SCRM_ADMIN_KEY") or (self.saved or {}).get("admin_key")
                          or f"admin_{pysecrets.token_urlsafe(24)}")
        self.external_wecom = wecom_api_base or os.environ.get("WECOM_API_BASE") or None
        self.start_http, self.start_workers = start_http, start_workers
        # Lambda runs several consumers of the events queue at once (up to 20 in prod); one local
        # poller thread per queue would make the welcome path wait behind whole batches.
        self.moto_in_process, self.events_pollers = moto_in_process, max(1, events_pollers)
        self.stop_event = threading.Event()
        self.bridges: list[QueueBridge] = []
        self.schedules: ScheduleFirer | None = None
        self._servers: list[Any] = []
        self.sandbox: Any = None
        self.sandbox_app: Any = None
        self.demo: dict[str, Any] | None = None
        self.env_path = os.path.join(ROOT, ".run", "env")
        self.app: Any = None
        self._app_class: type | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def wecom_api_base(self) -> str:
        return self.external_wecom or f"http://127.0.0.1:{self.sandbox_port}/cgi-bin"

    def _environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.moto_port}",
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "SCRM_ADMIN_KEY": self.admin_key,
            "WECOM_API_BASE": self.wecom_api_base,
            "SCRM_PUBLIC_BASE_URL": self.base_url,
        }

    def ports(self) -> list[tuple[str, str, int]]:
        """(what, environment variable of `make run`, port) for every port this stack listens on."""
        ports = [("moto", "SCRM_MOTO_PORT", self.moto_port)]
        if self.start_http:
            ports.insert(0, ("HTTP API", "SCRM_HTTP_PORT", self.http_port))
        if self.external_wecom is None:
            ports.append(("WeCom sandbox", "SCRM_SANDBOX_PORT", self.sandbox_port))
        return ports

    def check_ports(self) -> None:
        """Raise PortInUse, naming every port that is taken or asked for twice, before anything
        starts: never talk to (let alone reset) a server on our ports that we did not start."""
        problems: list[str] = []
        to_change: list[str] = []
        seen: dict[int, str] = {}
        for what, var, port in self.ports():
            if port in seen:
                problems.append(f"{seen[port]} and {var} are both {port}")
            elif not port_is_free(port):
                problems.append(f"port {port} ({what}, {var}) is already in use")
            else:
                seen[port] = var
                continue
            seen.setdefault(port, var)
            to_change.append(var)
        if problems:
            raise PortInUse(f"local stack not started: {'; '.join(problems)}. Stop what holds it "
                            f"(another `make run`?) or set {' / '.join(to_change)} to a free port.")

    def start(self) -> LocalStack:
        self.check_ports()
        try:
            return self._start()
        except BaseException as exc:
            self.stop()  # whatever did start (moto's child included) goes with us
            if isinstance(exc, OSError):
                try:  # a port taken between the check and the start: say so as plainly
                    self.check_ports()
                except PortInUse as taken:
                    raise taken from exc
            raise

    def _start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        from infra import moto_fixes

        moto_fixes.apply()
        os.environ.update(self._environment())
        os.environ.update(self._queue_names_of_imported_app())
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        if self.moto_in_process:
            moto: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        else:
            moto = MotoProcess("127.0.0.1", self.moto_port)
        moto.start()
        self._servers.append(moto)
        # moto's state is per process, shared by every server in it: start from nothing.
        import httpx

        httpx.post(f"http://127.0.0.1:{self.moto_port}/moto-api/reset", timeout=10).raise_for_status()
        self._reset_caches()
        self.bootstrap()
        if self.saved is not None:
            self._restore_table()
        if self.external_wecom is None:
            self._start_sandbox()
        sys.path.insert(0, ROOT)
        self.app = self._load_app()
        if self.start_workers:
            self._start_workers()
        if self.start_http:
            self._start_http()
        return self

    @staticmethod
    def _load_app() -> Any:
        import app as app_module

        return app_module.app

    @staticmethod
    def _queue_names_of_imported_app() -> dict[str, str]:
        """app.py reads its queue names from the environment at import; if this process imported
        it already (a test run), the stack must use those names rather than re-import it."""
        module = sys.modules.get("app")
        if module is None:
            return {}
        return {"SCRM_EVENTS_QUEUE": module.EVENTS_QUEUE, "SCRM_SYNC_QUEUE": module.SYNC_QUEUE,
                "SCRM_SENDS_QUEUE": module.SENDS_QUEUE}

    @staticmethod
    def _reset_caches() -> None:
        """Forget what a previous stack in this process left in memory (clients bound to its
        moto and sandbox, cached corps, codes and welcomes)."""
        from chalicelib.corps import registry as corps
        from chalicelib.platform import caches

        caches.clear_all()
        corps.use_wecom_transport(None)

    def bootstrap(self) -> None:
        """Create the table, the queues and the secrets key, as infra/ does in AWS."""
        from chalicelib.platform import aws, queues
        from chalicelib.platform import sealing as secrets
        from chalicelib.platform.settings import get_settings
        from chalicelib.store import schema

        settings = get_settings()
        schema.create_table(aws.client("dynamodb"), settings.table_name)
        queues.create_queues(aws.client("sqs"), settings)
        self._create_secrets_key(aws.client("kms"), settings.kms_key_id)
        secrets.ensure_local_key(aws.client("kms"), settings.kms_key_id)

    def _create_secrets_key(self, kms: Any, alias: str) -> None:
        """The secrets key with an id and material we know (the saved ones when restoring), so
        that the next start can bring it back and the corp secrets it sealed still open: moto
        would make both up anew (infra/moto_fixes.py)."""
        import base64

        from infra.moto_fixes import LOCAL_KEY_ID_TAG, LOCAL_KEY_MATERIAL_TAG

        if not alias.startswith("alias/") or any(a["AliasName"] == alias for a in kms.list_aliases()["Aliases"]):
            return  # a key id of the user's choosing, or a key there already: secrets.py's way
        if self.kms_key is None:
            self.kms_key = {"id": str(uuid.uuid4()),
                            "material": base64.b64encode(os.urandom(32)).decode()}
        key_id = kms.create_key(Description="SCRM corp secrets (local)", Tags=[
            {"TagKey": LOCAL_KEY_ID_TAG, "TagValue": self.kms_key["id"]},
            {"TagKey": LOCAL_KEY_MATERIAL_TAG, "TagValue": self.kms_key["material"]}])["KeyMetadata"]["KeyId"]
        if key_id != self.kms_key["id"]:  # SCRM_STOCK_MOTO=1: the key is moto's own, not kept
            self.kms_key = None
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)

    def _restore_table(self) -> None:
        from chalicelib.platform import aws
        from chalicelib.platform.settings import get_settings
        from infra import local_state

        assert self.saved is not None
        table = get_settings().table_name
        items = self.saved.get("dynamodb", {}).get(table, [])
        local_state.load_table(aws.client("dynamodb"), table, items)
        sandbox_state = self.saved.get("sandbox") or {}
        self.restored = {
            "items": len(items),
            "corps": len(sandbox_state.get("corps", {})),
            "customers": sum(len(c.get("customers", {})) for c in sandbox_state.get("corps", {}).values()),
        }

    def save_state(self, path: str) -> dict[str, int]:
        """Write what `_start` restores (infra/local_state.py); moto must still be up."""
        from chalicelib.platform import aws
        from chalicelib.platform.settings import get_settings
        from infra import local_state

        table = get_settings().table_name
        items = local_state.scan_table(aws.client("dynamodb"), table)
        state: dict[str, Any] = {"saved_at": time.time(), "dynamodb": {table: items},
                                 "kms_key": self.kms_key, "admin_key": self.admin_key, "demo": self.demo}
        if self.sandbox_app is not None:
            state["sandbox"] = local_state.sandbox_state(self.sandbox_app)
        local_state.write(path, state)
        corps = (state.get("sandbox") or {}).get("corps", {})
        return {"items": len(items), "corps": len(corps),
                "customers": sum(len(c["customers"]) for c in corps.values())}

    def _start_sandbox(self) -> None:
        import sandbox

        self.sandbox_app = sandbox.Sandbox(public_url=f"http://127.0.0.1:{self.sandbox_port}")
        if self.saved is not None and self.saved.get("sandbox"):
            from infra import local_state

            local_state.restore_sandbox(self.sandbox_app, self.saved["sandbox"])
        self.sandbox = sandbox.serve(self.sandbox_port, sandbox=self.sandbox_app)
        self._servers.append(self.sandbox)

    def register_demo_corp(self) -> dict[str, Any]:
        """The sandbox's demo corp, registered on both sides: WeCom (the sandbox) posts its
        callbacks to us, and we hold its secrets. Idempotent across restarts of the sandbox."""
        import httpx

        import sandbox

        callback_url = f"{self.base_url}/wecom/{sandbox.DEMO_CORP_ID}/callback"
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        corp_url = f"{self.base_url}/api/v1/corps/{sandbox.DEMO_CORP_ID}"
        if (self.saved is not None and sandbox.DEMO_CORP_ID in self.sandbox_app.world.corps
                and httpx.get(corp_url, headers=admin, timeout=10).status_code == 200):
            # Both sides came back with the state file: keep them (seeding would empty the
            # sandbox's corp); only the callback URL follows this start's port. The saved API
            # key still works unless it was revoked: then one more.
            self.sandbox_app.update_corp(sandbox.DEMO_CORP_ID, callback_url=callback_url)
            restored = self.saved.get("demo")
            if not (restored and httpx.get(corp_url, timeout=10, headers={
                    "Authorization": f"Bearer {restored['api_key']}"}).status_code == 200):
                resp = httpx.post(f"{corp_url}/api-keys", headers=admin, timeout=10,
                                  json={"label": "make run demo"})
                resp.raise_for_status()
                restored = resp.json()
            self.demo = restored
            return self.demo
        sandbox.seed_demo(self.sandbox_app, callback_url=callback_url)
        resp = httpx.post(f"{self.base_url}/api/v1/corps", timeout=10,
                          headers={"Authorization": f"Bearer {self.admin_key}"},
                          json={"corp_id": sandbox.DEMO_CORP_ID, "name": "Demo Corp",
                                "callback_token": sandbox.DEMO_CALLBACK_TOKEN,
                                "encoding_aes_key": sandbox.DEMO_AES_KEY,
                                "contact_secret": sandbox.DEMO_SECRET, "agent_id": "1000002"})
        resp.raise_for_status()
        self.demo = resp.json()
        return self.demo

    def _start_workers(self) -> None:
        from chalice.app import SQSEventConfig

        from chalicelib.platform.settings import get_settings

        for source in self.app.event_sources:
            if isinstance(source, SQSEventConfig):
                pollers = self.events_pollers if source.queue == get_settings().events_queue else 1
                for _ in range(pollers):
                    bridge = QueueBridge(self.app, source.name, source.queue, source.batch_size,
                                         self.stop_event)
                    bridge.start()
                    self.bridges.append(bridge)
        self.schedules = ScheduleFirer(self.app, self.stop_event)
        self.schedules.start()

    def _start_http(self) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        # create_local_server swaps the app's class for a local subclass; keep the original so
        # that stop() can give it back (a second stack in one process would otherwise fail).
        self._app_class = type(self.app)
        server = create_local_server(self.app, Config.create(), "127.0.0.1", self.http_port)
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        thread.start()
        self._servers.append(server)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)

    def stop(self, save_to: str | None = None) -> dict[str, int] | None:
        """Workers first (and wait for them), then the servers they use, moto last. With
        `save_to`, the data is saved there once nothing else writes, just before moto goes (a
        failed save is logged and the previous file stays); returns what was saved."""
        self.stop_event.set()
        if self._app_class is not None:
            self.app.__class__ = self._app_class
        deadline = time.monotonic() + 10
        for thread in [*self.bridges, *([self.schedules] if self.schedules else [])]:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        servers, self._servers = self._servers, []
        saved = None
        for server in reversed(servers):
            if save_to and server is servers[0]:  # moto: the first started, the last stopped
                try:
                    saved = self.save_state(save_to)
                except Exception:
                    logger.exception("could not save the local data to %s", save_to)
            try:
                if hasattr(server, "stop"):  # moto (child or thread), the sandbox: close too
                    server.stop()
                else:  # chalice local: shut down, then let go of the port at once
                    server.shutdown()
                    getattr(getattr(server, "server", server), "server_close", lambda: None)()
            except Exception:  # shutting down anyway
                logger.debug("error stopping %r", server, exc_info=True)
        return saved

    def write_env_file(self, path: str = os.path.join(ROOT, ".run", "env")) -> str:
        """Shell exports for the README's demo (`source .run/env`); git ignores .run/."""
        self.env_path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lines = [f"export SCRM={self.base_url}", f"export SCRM_ADMIN_KEY={self.admin_key}",
                 f"export WECOM={self.wecom_api_base.rsplit('/cgi-bin', 1)[0]}"]
        if self.demo:
            lines += [f"export CORP={self.demo['corp_id']}", f"export KEY={self.demo['api_key']}"]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return path

    def data_line(self) -> str:
        """Where the data came from and where it goes: said at every start."""
        path = shown_path(self.state_path) if self.state_path else None
        if path is None:
            return "starting empty; not kept after the stop (no state file)"
        if self.restored is not None:
            r = self.restored
            came = (f"restored {r['items']} items, {r['corps']} sandbox corps and {r['customers']} "
                    f"sandbox customers from {path}")
        elif self.fresh:
            came = f"starting empty (--fresh / FRESH=1); {path} is replaced at the stop"
        else:
            came = f"starting empty (no {path} yet)"
        return came + "; saved on Ctrl-C (queued messages are not kept)"

    def banner(self) -> str:
        fingerprint = hashlib.sha256(self.admin_key.encode()).hexdigest()[:8]
        lines = [
            "",
            "SCRM is running locally (Ctrl-C stops everything).",
            f"  health:        curl {self.base_url}/api/v1/health",
            f"  API:           {self.base_url}/api/v1   (OpenAPI: {self.base_url}/api/v1/openapi.json)",
            f"  admin key:     {self.admin_key}   (sha256 {fingerprint}…)",
            f"  WeCom API:     {self.wecom_api_base}" + ("" if self.external_wecom else "   (the sandbox)"),
            f"  AWS (moto):    http://127.0.0.1:{self.moto_port}",
            f"  callback URL:  {self.base_url}/wecom/<corp_id>/callback",
            "  queue workers: " + ", ".join(sorted({f"{b.queue_name} -> {b.handler_name} x"
                                                    f"{sum(c.queue_name == b.queue_name for c in self.bridges)}"
                                                    for b in self.bridges})),
            "  schedules:     " + ", ".join(
                f"{n} {e}" for n, e in (self.schedules.schedules if self.schedules else [])),
        ]
        if self.sandbox is not None:
            lines.append(f"  sandbox:       http://127.0.0.1:{self.sandbox_port}/sandbox  (README: the demo)")
        if self.demo:
            lines.append(f"  demo corp:     {self.demo['corp_id']}   corp API key: {self.demo['api_key']}")
        if self.start_http:
            who = f"the demo corp's key {self.demo['api_key']}" if self.demo else "a corp's API key"
            lines.append(f"  console:       {self.base_url}/console   (sign in with {who}; "
                         "the admin key shows the dead letters)")
        lines.append(f"  demo shell:    source {shown_path(self.env_path)}"
                     "   (exports SCRM, WECOM, KEY, CORP, SCRM_ADMIN_KEY)")
        lines.append(f"  local data:    {self.data_line()}")
        return "\n".join(lines) + "\n"


def _pollers(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SCRM_HTTP_PORT", 8000)))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("SCRM_MOTO_PORT", 5055)))
    parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SCRM_SANDBOX_PORT", 8700)))
    parser.add_argument("--state", default=os.environ.get("SCRM_LOCAL_STATE", DEFAULT_STATE_PATH),
                        help="where the data is saved at the stop and restored from at the start "
                             "(default .run/state.json; the demo's env file goes beside it)")
    parser.add_argument("--fresh", action="store_true",
                        help="start empty, ignoring the saved data (replaced at the stop); make run FRESH=1")
    parser.add_argument("--events-pollers", type=_pollers, default=os.environ.get("SCRM_EVENTS_POLLERS", "4"),
                        help="consumers of the events queue at once, as Lambda runs several (default 4; "
                             "SCRM_EVENTS_POLLERS); all in this one process, so they share its CPU")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("SCRM_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from infra.local_state import StateFileError

    try:
        stack = LocalStack(http_port=args.port, moto_port=args.moto_port, sandbox_port=args.sandbox_port,
                           state_path=os.path.abspath(args.state), fresh=args.fresh,
                           events_pollers=args.events_pollers)
    except StateFileError as exc:
        print(f"local stack not started: {exc}. Move it away, or start empty with --fresh "
              "(make run FRESH=1; the file is then replaced at the stop).", file=sys.stderr, flush=True)
        return 2
    try:
        stack.start()
    except PortInUse as exc:
        print(exc, file=sys.stderr, flush=True)
        return 2
    try:
        if stack.sandbox is not None and stack.start_http:
            stack.register_demo_corp()
        stack.write_env_file(os.path.join(os.path.dirname(stack.state_path), "env"))
    except BaseException:
        stack.stop()
        raise
    print(stack.banner(), flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT explicitly: a shell may start us ignoring it
        signal.signal(signum, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("stopping…", flush=True)
    saved = stack.stop(save_to=stack.state_path)
    if saved is not None:
        print(f"saved {saved['items']} items, {saved['corps']} sandbox corps and {saved['customers']} "
              f"sandbox customers to {shown_path(stack.state_path)} (next start restores "
              "them; --fresh / FRESH=1 starts empty)", flush=True)
    else:
        print("the local data could not be saved (see the log above)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
