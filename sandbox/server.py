"""The sandbox over HTTP: a stdlib ThreadingHTTPServer that adapts requests to ``Sandbox.handle``.

``serve(port)`` starts it on a daemon thread and returns the server (``server.shutdown()`` stops
it); ``make run`` calls it in-process. A ``timeout`` fault holds the connection for
``hold_seconds`` and then drops it without an answer; ``connect_error`` drops it at once.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from sandbox.app import Sandbox, default_sandbox


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, hold_seconds: float) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self.hold_seconds = hold_seconds
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes on a keep-alive connection: with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms per call). WeCom does not behave like that.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # URLs carry secrets and tokens: never log them

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = f"http://{self.headers.get('Host', 'sandbox')}{self.path}"
        request = httpx.Request(self.command, url, content=body,
                                headers={k: v for k, v in self.headers.items()
                                         if k.lower() not in ("content-length", "host")})
        try:
            response = self.server.sandbox.handle(request)
        except httpx.TimeoutException:
            threading.Event().wait(self.server.hold_seconds)
            self.close_connection = True
            return
        except httpx.TransportError:
            self.close_connection = True
            return
        except Exception:  # noqa: BLE001 - a sandbox bug answers 500, like a broken server
            response = httpx.Response(500, content=b"sandbox internal error")
        content = response.content
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


def serve(port: int = 8700, *, host: str = "127.0.0.1", sandbox: Sandbox | None = None,
          hold_seconds: float = 10.0) -> SandboxServer:
    """Start the sandbox on a daemon thread; ``port=0`` picks a free port (see ``server.url``)."""
    sb = sandbox or default_sandbox()
    server = SandboxServer((host, port), sb, hold_seconds)
    if sb.public_url.endswith(":8700") and server.server_address[1] != 8700:
        sb.public_url = server.url
    server.thread = threading.Thread(target=server.serve_forever, name="wecom-sandbox",
                                     daemon=True)
    server.thread.start()
    return server
