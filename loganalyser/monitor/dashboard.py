"""`--dashboard [HOST:]PORT`: the master serves the live status over HTTP.

`/` is one self-contained page (page.py) that polls `/status.json` a few
times a second. The server runs in a daemon thread of the master and only
reads the StatusBoard, so it never slows the loop down. It binds 127.0.0.1
unless told otherwise. When a master dies, the next one binds the same
address: until the old socket is gone (a paused master still holds it) it
keeps trying once a second, and an open page reconnects by itself.
"""

from __future__ import annotations

import errno
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loganalyser.errors import UsageError

from .board import StatusBoard
from .page import live_page

DEFAULT_HOST = "127.0.0.1"
RETRY_S = 1.0  # between two attempts to bind an address that is still taken


def parse_address(text: str) -> tuple[str, int]:
    """`8080` or `HOST:8080` -> (host, port); a bad value is a usage error."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536 or (sep and not host):
        raise UsageError(f"--dashboard: not an address: {text!r} (PORT or HOST:PORT, e.g. 8080 or 127.0.0.1:8080)")
    return host, number


class DashboardServer:
    """Serves a StatusBoard at an address, binding it as soon as it is free."""

    def __init__(self, board: StatusBoard, host: str, port: int):
        self.board = board
        self.host, self.port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # why the address could not be served (anything but "in use")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self._thread.start()

    @property
    def serving(self) -> bool:
        return self._server is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._server = _Server((self.host, self.port), _handler(self.board))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    self.error = f"cannot serve the dashboard at {self.host}:{self.port}: {exc.strerror or exc}"
                    return
                self._stop.wait(RETRY_S)
        if self._server is not None and not self._stop.is_set():
            self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a new master rebinds at once after the old one's death

    def server_bind(self):
        if ":" in self.server_address[0]:
            self.address_family = socket.AF_INET6
            self.socket = socket.socket(self.address_family, self.socket_type)
        super().server_bind()


def _handler(board: StatusBoard):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            path = self.path.split("?", 1)[0]
            if path == "/status.json":
                self._send(board.latest(), "application/json")
            elif path in ("/", "/index.html"):
                self._send(live_page().encode(), "text/html; charset=utf-8")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # the job's stderr is for the job
            pass

    return Handler
