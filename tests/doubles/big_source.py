"""Test double for a tenant's HTTP source, on 127.0.0.1: a small JSON Lines file, or 2 GB streamed with
or without its length. It counts what it sent to each path before the reader hung up, which is how the
tests see where a size cap stopped a download.

    with BigSource() as source:
        source.url("/small.jsonl")      # SMALL, with its Content-Length
        source.url("/declared.jsonl")   # 2 GB, announced as such (any path starting /declared)
        source.url("/endless.jsonl")    # 2 GB without a length: the body ends when the server closes
        source.done("/endless.jsonl").wait(10); source.sent["/endless.jsonl"]
"""

from __future__ import annotations

import http.server
import threading

TWO_GB = 2 * 1024**3
SMALL = b'{"qid": "a", "x": 1}\n{"qid": "b", "x": 2}\n'
LINE = b'{"qid": "q", "predictions": ["def solution():\\n    return 1\\n"]}\n'


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # without a Content-Length the body ends when the server closes

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        server: BigSource = self.server  # type: ignore[assignment]
        self.send_response(200)
        if self.path == "/small.jsonl":
            self.send_header("Content-Length", str(len(SMALL)))
            self.end_headers()
            self.wfile.write(SMALL)
            return
        if self.path.startswith("/declared"):
            self.send_header("Content-Length", str(TWO_GB))
        self.end_headers()
        chunk, sent = LINE * 8192, 0
        try:
            while sent < TWO_GB:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:  # the reader hung up: what a cap should make it do
            pass
        with server.lock:
            server.sent[self.path] = server.sent.get(self.path, 0) + sent
        server.done(self.path).set()


class BigSource(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()
        self._done: dict[str, threading.Event] = {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def done(self, path: str) -> threading.Event:
        """Set once a body sent to `path` ended (whole, or cut by the reader)."""
        with self.lock:
            return self._done.setdefault(path, threading.Event())

    def __enter__(self) -> BigSource:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
