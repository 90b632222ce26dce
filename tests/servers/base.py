"""The common part of the loopback stand-in servers."""

from __future__ import annotations

import collections
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    extra: dict[str, Any] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection, closed after the answer
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _dispatch(self) -> None:
        owner = self.server.owner
        owner._enter()
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parsed = urllib.parse.urlsplit(self.path)
            seen = Seen(
                self.command,
                parsed.path,
                urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                {k: v for k, v in self.headers.items()},
                body,
            )
            with owner.lock:
                owner.seen.append(seen)
            owner.handle(self, seen)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests): nothing to answer
        finally:
            owner._leave()

    do_GET = _dispatch
    do_POST = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: StandInServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client disconnects are expected in the failure tests


class StandInServer:
    """A loopback HTTP server that records requests and counts concurrency.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>``.
    seen : list of Seen
        Every request received, in arrival order.
    max_active : int
        Largest number of requests being handled at the same time.
    script : deque
        Scripted answers, consumed one per request before the normal answer:
        ``("status", code, headers)`` answers ``code`` with a short text body;
        ``("pass",)`` answers normally.  Subclasses add their own actions.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.active = 0
        self.max_active = 0
        self.script: collections.deque[tuple[Any, ...]] = collections.deque()
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandInServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ counting
    def _enter(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def _leave(self) -> None:
        with self.lock:
            self.active -= 1

    # ------------------------------------------------------------------ scripting
    def queue(self, *actions: tuple[Any, ...]) -> None:
        with self.lock:
            self.script.extend(actions)

    def next_action(self) -> tuple[Any, ...] | None:
        with self.lock:
            return self.script.popleft() if self.script else None

    # ------------------------------------------------------------------ answers
    @staticmethod
    def send(
        h: BaseHTTPRequestHandler,
        code: int,
        body: bytes,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
        content_length: int | None = None,
    ) -> None:
        h.send_response(code)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def answer_status(self, h: BaseHTTPRequestHandler, action: tuple[Any, ...]) -> bool:
        """Handle the generic ("status", code, headers) action; True when it was one."""
        if action[0] != "status":
            return False
        code = int(action[1])
        headers = dict(action[2]) if len(action) > 2 else {}
        self.send(h, code, f"stand-in error {code}\n".encode(), "text/plain", headers)
        return True

    def handle(self, h: BaseHTTPRequestHandler, seen: Seen) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
