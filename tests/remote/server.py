"""A fault-injecting local HTTP server for offline download tests: Range requests, drops, 5xx, 429, HTML, 404."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_HTML = b"<!DOCTYPE html>\n<html><head><title>Service unavailable</title></head><body>maintenance</body></html>\n"


@dataclass
class _File:
    body: bytes
    content_type: str
    headers: dict[str, str]


class FaultServer:
    """Serves bytes from memory at http://127.0.0.1:<port>/<path> and misbehaves on request.

    `fail(path, plan)` queues faults for a path, consumed one per request (GET or HEAD); once the plan is
    used up the path is served normally. Plan entries:

    - an int status (500, 503, 404, 410, 403, ...): that status with a short text body;
    - `{"status": 429, "retry_after": 2}`: a status with a `Retry-After` header (seconds or an HTTP-date);
    - `("drop", n)`: status 200/206 with the full Content-Length, then the connection closes after n body bytes;
    - `("stall", seconds)`: headers sent, then nothing for that long, then the body;
    - `"html"`: 200 `text/html` with an HTML error page;
    - `"ignore_range"`: 200 with the whole body even when a Range was asked for;
    - `"ok"`: served normally.

    Attributes:
        requests: (method, path, Range header or None) of every request, in arrival order.
        bytes_served: bytes of added files written to clients (partial and dropped bodies included; error
            pages, HTML and 416 answers not).
    """

    def __init__(self) -> None:
        self._files: dict[str, _File] = {}
        self._plans: dict[str, list] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, str | None]] = []
        self.bytes_served = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fault-http", daemon=True)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        """Returns the URL serving `path` (leading slash optional)."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add(self, path: str, body: bytes, content_type: str = "application/octet-stream",
            headers: dict[str, str] | None = None) -> str:
        """Serves `body` at `path` (with extra response `headers`, e.g. Content-Encoding); returns its URL."""
        self._files["/" + path.lstrip("/")] = _File(bytes(body), content_type, dict(headers or {}))
        return self.url(path)

    def fail(self, path: str, plan: list) -> None:
        """Queues faults for the next requests of `path` (see the class docstring)."""
        with self._lock:
            self._plans.setdefault("/" + path.lstrip("/"), []).extend(plan)

    def requests_for(self, path: str) -> list[tuple[str, str, str | None]]:
        """The requests seen for one path."""
        key = "/" + path.lstrip("/")
        return [r for r in self.requests if r[1] == key]

    def _next_fault(self, path: str):
        with self._lock:
            plan = self._plans.get(path)
            return plan.pop(0) if plan else "ok"

    def _record(self, method: str, path: str, range_header: str | None) -> None:
        with self._lock:
            self.requests.append((method, path, range_header))

    def _served(self, n: int) -> None:
        with self._lock:
            self.bytes_served += n


def _make_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a drop never poisons a pooled connection

        def log_message(self, format, *args):
            pass

        def do_HEAD(self):
            self._answer(head=True)

        def do_GET(self):
            self._answer(head=False)

        def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool, drop_after=None, stall=0.0,
                  count: bool = False):
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            if head:
                return
            if stall:
                time.sleep(stall)
            out = body if drop_after is None else body[:drop_after]
            try:
                self.wfile.write(out)
                self.wfile.flush()
            except OSError:  # the client gave up (a timeout test)
                return
            if count:
                server._served(len(out))
            if drop_after is not None:
                self.close_connection = True

        def _answer(self, head: bool):
            path = urlsplit(self.path).path
            range_header = self.headers.get("Range")
            server._record(self.command, path, range_header)
            fault = server._next_fault(path)
            if isinstance(fault, int):
                self._send(fault, f"error {fault}\n".encode(), {"Content-Type": "text/plain"}, head)
                return
            if isinstance(fault, dict):
                headers = {"Content-Type": "text/plain"}
                if "retry_after" in fault:
                    headers["Retry-After"] = str(fault["retry_after"])
                self._send(fault["status"], fault.get("body", b"slow down\n"), headers, head)
                return
            if fault == "html":
                self._send(200, _HTML, {"Content-Type": "text/html; charset=utf-8"}, head)
                return
            file = server._files.get(path)
            if file is None:
                self._send(404, b"not found\n", {"Content-Type": "text/plain"}, head)
                return
            kind, arg = fault if isinstance(fault, tuple) else (fault, None)
            drop_after = arg if kind == "drop" else None
            stall = arg if kind == "stall" else 0.0
            body, status = file.body, 200
            headers = {"Content-Type": file.content_type, "Accept-Ranges": "bytes", **file.headers}
            match = _RANGE.match(range_header or "")
            if match and kind != "ignore_range":
                size = len(file.body)
                start = int(match.group(1))
                end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
                if start >= size or start > end:
                    self._send(416, b"", {"Content-Range": f"bytes */{size}"}, head)
                    return
                body, status = file.body[start:end + 1], 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self._send(status, body, headers, head, drop_after=drop_after, stall=stall, count=True)

    return Handler
