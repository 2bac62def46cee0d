"""An HTTP receiver on loopback that records every POST: where apprise's ``json://`` notifications land."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from bench.servers import HOST, STOP_TIMEOUT


@dataclass(frozen=True)
class ReceivedPost:
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    #: the status the receiver answered with (``fail_next`` makes it non-2xx).
    status: int
    received_at: float = field(default_factory=time.time)


class HttpReceiver:
    """An HTTP server on 127.0.0.1 in a background thread that records every POST.

    Point apprise at :meth:`json_url`. apprise 2.2 ``json://`` POSTs ``Content-Type: application/json`` to
    ``/PATH`` with ``User-Agent: Apprise`` and the body (measured)::

        {"version": "1.0", "title": "...", "message": "...", "attachments": [], "type": "info"}

    ``type`` is the notify type: ``info``, ``success``, ``warning`` or ``failure``. ``notify()`` and
    ``async_notify()`` return an ``AppriseResult``: truthy with ``status == AppriseResultStatus.SUCCESS`` on 2xx,
    falsy with ``status == AppriseResultStatus.FAILURE`` on any other status (one attempt, no exception).
    Every POST is recorded, failed ones too, with the ``status`` it was answered with.
    """

    def __init__(self) -> None:
        self.host = HOST
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._posts: list[ReceivedPost] = []
        self._failures: list[int] = []
        self._server = ThreadingHTTPServer((self.host, 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed: Any = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                status = receiver._record(self.path, dict(self.headers.items()), body, parsed)
                reply = b"{}" if status // 100 == 2 else b'{"error": "fail_next"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _record(self, path: str, headers: dict[str, str], body: bytes, parsed: Any) -> int:
        with self._cond:
            status = self._failures.pop(0) if self._failures else 200
            self._posts.append(ReceivedPost(path, headers, body, parsed, status))
            self._cond.notify_all()
            return status

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="HttpReceiver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def json_url(self, path: str = "alerts") -> str:
        """The apprise URL that POSTs JSON here: ``json://127.0.0.1:PORT/PATH``."""
        return f"json://{self.host}:{self.port}/{path}"

    @property
    def posts(self) -> list[ReceivedPost]:
        """A copy of every POST received so far, failed ones included."""
        with self._lock:
            return list(self._posts)

    @property
    def delivered(self) -> list[ReceivedPost]:
        """The POSTs that were answered with 2xx."""
        return [p for p in self.posts if p.status // 100 == 2]

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` POSTs with ``status`` (queued after failures already pending)."""
        with self._lock:
            self._failures.extend([status] * n)

    def recover(self) -> None:
        """Answer 200 again from now on (drops failures still pending)."""
        with self._cond:
            self._failures.clear()

    def clear(self) -> None:
        with self._lock:
            self._posts.clear()
            self._failures.clear()

    def wait_for(self, count: int, timeout: float = 5.0, *, delivered_only: bool = False) -> list[ReceivedPost]:
        """Block until at least ``count`` POSTs (2xx only if ``delivered_only``) arrived; return them all."""

        def matching() -> list[ReceivedPost]:
            return [p for p in self._posts if not delivered_only or p.status // 100 == 2]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                got = [(p.path, p.status) for p in self._posts]
                raise TimeoutError(f"HttpReceiver: wanted {count} POSTs within {timeout} s, got {got}")
            return matching()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
