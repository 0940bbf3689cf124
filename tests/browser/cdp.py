"""Headless Chromium driven over the Chrome DevTools protocol, with the standard library only.

Why not selenium: its current release needs packages newer than the registry mirror holds, and
it needs a chromedriver matching the browser; the DevTools protocol needs only the browser (the
Debian package) and a websocket, which is ~60 lines here. Every wait is for a condition, polled,
with a generous deadline (a busy 2-core CI machine): never a fixed sleep.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Any

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """A client websocket (RFC 6455): text frames, masked as a client must; pings answered."""

    def __init__(self, url: str, timeout: float = 60.0):
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:200]!r}")
        self.sock.settimeout(None)
        self.lock = threading.Lock()

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def send(self, text: str, opcode: int = 1) -> None:
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                          bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                          bytes([0x80 | 127]) + struct.pack(">Q", n))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        with self.lock:
            self.sock.sendall(head + mask + masked)

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("websocket closed by the browser")
            if opcode == 9:
                self.send(payload, opcode=10)
                continue
            if opcode in (0, 1, 2):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Browser:
    """One headless Chromium with one page, its console errors and exceptions collected."""

    def __init__(self, width: int = 1280, height: int = 900, timezone: str = "Asia/Shanghai"):
        chromium = find_chromium()
        if chromium is None:
            raise RuntimeError("Chromium is not installed: `make test` installs it (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="scrm-chromium-")
        self.proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        self._until(lambda: os.path.exists(port_file) and open(port_file).read().count("\n") >= 1, 60,
                    "Chromium did not start (no DevToolsActivePort)")
        port = int(open(port_file).read().split("\n")[0])
        targets = self._until(lambda: [t for t in self._json(port, "/json/list") if t.get("type") == "page"], 30,
                              "Chromium has no page")
        self.ws = WebSocket(targets[0]["webSocketDebuggerUrl"])
        self._next = 0
        self._results: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.console_errors: list[str] = []
        # every request the page makes, in order: {"url", "method", "status", "bytes" (None until finished),
        # "ms" (from sent to its last byte)}
        self.requests: list[dict[str, Any]] = []
        self._by_id: dict[str, dict[str, Any]] = {}
        self.reader = threading.Thread(target=self._read, name="cdp", daemon=True)
        self.reader.start()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.resize(width, height)
        # the operators' clock: the console's "today" is the browser's (the demo corp's is Asia/Shanghai)
        self.send("Emulation.setTimezoneOverride", {"timezoneId": timezone})

    @staticmethod
    def _json(port: int, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    @staticmethod
    def _until(fn: Any, timeout: float, message: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = fn()
            except (OSError, ValueError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(message)
            time.sleep(0.1)  # polling interval, not an assertion

    def _read(self) -> None:
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except (ConnectionError, OSError, ValueError):
                with self._cond:
                    self._results[-1] = {"error": {"message": "browser connection lost"}}
                    self._cond.notify_all()
                return
            if "id" in msg:
                with self._cond:
                    self._results[msg["id"]] = msg
                    self._cond.notify_all()
            elif msg.get("method") == "Runtime.exceptionThrown":
                d = msg["params"]["exceptionDetails"]
                self.console_errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif msg.get("method") == "Runtime.consoleAPICalled" and msg["params"]["type"] in ("error", "assert"):
                self.console_errors.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in msg["params"]["args"]))
            elif msg.get("method", "").startswith("Network."):
                self._network(msg["method"], msg["params"])
            elif msg.get("method") == "Log.entryAdded" and msg["params"]["entry"]["level"] == "error":
                entry = msg["params"]["entry"]
                self.console_errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")

    def _network(self, method: str, p: dict[str, Any]) -> None:
        with self._cond:
            if method == "Network.requestWillBeSent":
                if "redirectResponse" in p and p["requestId"] in self._by_id:  # the same id goes on
                    self._by_id.pop(p["requestId"])["bytes"] = 0
                entry = {"url": p["request"]["url"], "method": p["request"]["method"], "status": None, "bytes": None,
                         "sent": p["timestamp"], "ms": None}
                self._by_id[p["requestId"]] = entry
                self.requests.append(entry)
            elif method == "Network.responseReceived" and p["requestId"] in self._by_id:
                self._by_id[p["requestId"]]["status"] = p["response"]["status"]
            elif method in ("Network.loadingFinished", "Network.loadingFailed") and p["requestId"] in self._by_id:
                entry = self._by_id.pop(p["requestId"])
                entry["ms"] = round(1000 * (p["timestamp"] - entry["sent"]))
                entry["bytes"] = int(p.get("encodedDataLength", 0))

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        with self._cond:
            self._next += 1
            mid = self._next
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._results or -1 in self._results, timeout):
                raise TimeoutError(f"{method}: no answer in {timeout} s")
            msg = self._results.pop(mid, None) or self._results[-1]
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    # -- what tests use ------------------------------------------------------------------------
    def resize(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        page = json.dumps(url.split("#")[0])
        self.wait(f"document.readyState === 'complete' && location.href.startsWith({page})")

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"].get("exception", {}).get("description")
            raise RuntimeError(f"{expression[:80]}: {details}")
        return result["result"].get("value")

    # Long enough for one redelivery: what the page waits for often runs through a queue, and a
    # message that fails on a busy machine (moto timing out) comes back only after its queue's
    # visibility timeout (events 180 s, sends 120 s), as on Lambda. A condition met sooner returns sooner.
    PATIENCE = 300.0

    def wait(self, expression: str, timeout: float = PATIENCE) -> Any:
        """Poll a JS expression until it is truthy (its value is returned)."""
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"  # mid-render
        try:
            return self._until(lambda: self.js(guarded), timeout, "")
        except TimeoutError:
            text = self.js("document.querySelector('main')?.innerText.slice(0, 1500) ?? ''")
            raise AssertionError(f"not met in {timeout} s: {expression}\n--- page ---\n{text}") from None

    def settled(self, start: int, end: int | None = None, timeout: float = PATIENCE) -> list[dict[str, Any]]:
        """The requests made from index `start` (to `end`), once every one of them has finished."""
        def done() -> tuple[list[dict[str, Any]]] | None:  # (a tuple: an empty list is an answer too)
            with self._cond:
                made = [dict(r) for r in self.requests[start:end]]
            return (made,) if all(r["bytes"] is not None for r in made) else None

        try:
            return self._until(done, timeout, "")[0]
        except TimeoutError:
            raise AssertionError(f"requests still open after {timeout} s: "
                                 f"{[r['url'] for r in self.requests[start:end] if r['bytes'] is None]}") from None

    def fill(self, selector: str, value: str) -> None:
        self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) throw new Error('no ' + {json.dumps(selector)});
            e.value = {json.dumps(value)}; e.dispatchEvent(new Event('input', {{bubbles: true}}));
            e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()""")

    def click(self, selector: str) -> None:
        self.wait(f"!!document.querySelector({json.dumps(selector)})")
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def screenshot(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
