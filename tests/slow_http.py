"""Real HTTP servers for the store's and the notifier's fault tests: a proxy in front of a database that can
answer 400 to everything for a while, and a receiver that answers 200 only after a delay."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from bench.servers import HOST


class _Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((HOST, 0), self.handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class RefusingProxy(_Server):
    """Forwards every request to `upstream`; while `refusing`, answers 400 itself (as a misbehaving proxy or
    gateway does) without forwarding. Counts what it refused and what it forwarded."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.refusing = False
        self.refused = 0
        self.forwarded = 0
        super().__init__()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    refuse = proxy.refusing
                    if refuse:
                        proxy.refused += 1
                    else:
                        proxy.forwarded += 1
                if refuse:
                    self._reply(400, b'{"code":"invalid","message":"proxy: bad request"}')
                    return
                req = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST")
                for k in ("Content-Type", "Authorization", "Content-Encoding"):
                    if self.headers.get(k):
                        req.add_header(k, self.headers[k])
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        self._reply(resp.status, resp.read())
                except urllib.error.HTTPError as e:
                    self._reply(e.code, e.read())

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class SlowReceiver(_Server):
    """Records every POST at once, then answers 200 after `delay` seconds (a robot API under load)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.bodies: list[bytes] = []
        super().__init__()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.bodies.append(body)
                time.sleep(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up waiting: the message arrived all the same

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def json_url(self, query: str = "") -> str:
        return f"json://{HOST}:{self.port}/alerts" + (f"?{query}" if query else "")

    @property
    def received(self) -> list[bytes]:
        with self.lock:
            return list(self.bodies)
