"""A 2 GB HTTP source on the real control plane: fetched by an ingest Job, cut at the cap, never held by
the operator.

A server on 127.0.0.1 streams 2 GB of JSON Lines: once without a length (the ingest must read until
its cap), once with `Content-Length: 2147483648` (refused before the body). The operator is a child
process of the test, so its peak memory (VmHWM) is read from /proc.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e

TWO_GB = 2 * 1024**3
CAP = 512 * 1024 * 1024  # the operator's default ingest.maxBytes
LINE = b'{"qid": "q", "predictions": ["def solution():\\n    return 1\\n"]}\n'


class _Source(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sent: dict[str, int] = {}
        self.done = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the endless body ends when the server closes: no length needed

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/declared.jsonl":
            self.send_header("Content-Length", str(TWO_GB))
        self.end_headers()
        chunk, sent = LINE * 8192, 0
        try:
            while sent < TWO_GB:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:  # the reader hung up
            pass
        self.server.sent[self.path] = self.server.sent.get(self.path, 0) + sent
        if self.path == "/endless.jsonl":
            self.server.done.set()


@pytest.fixture
def big_source() -> Iterator[_Source]:
    server = _Source()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_two_gigabyte_http_source_never_reaches_the_operators_memory(kube, operator, big_source):
    base = f"http://127.0.0.1:{big_source.server_address[1]}"
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "Artifact",
            "metadata": {"name": "endless"},
            "spec": {
                "type": "answers",
                "format": "humanevalv",
                "source": {"http": {"url": f"{base}/endless.jsonl", "sha256": "0" * 64}},
            },
        }
    )
    # The same kind of source given in place in an EvalRun goes through an ingest Job too.
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "EvalRun",
            "metadata": {"name": "declared"},
            "spec": {
                "benchmark": {
                    "format": "humanevalv",
                    "source": {"http": {"url": f"{base}/declared.jsonl", "sha256": "0" * 64}},
                },
                "answers": {"artifactRef": {"name": "endless"}},
            },
        }
    )
    status = kube.wait_phase("artifact", "endless", ("Ready", "Invalid"), timeout=180)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["phase"] == "Invalid" and ready["reason"] == "SourceTooLarge", status
    assert "larger than 536,870,912 bytes" in status["message"]
    assert big_source.done.wait(30)
    streamed = big_source.sent["/endless.jsonl"]
    assert CAP <= streamed < TWO_GB // 2, f"{streamed:,} bytes sent: the ingest read to its cap and stopped"
    assert kube.items("jobs", "proctor.dev/component=ingest"), "an ingest Job fetched it"

    def run_says_too_large():
        conditions = ((kube.get("evalrun", "declared") or {}).get("status") or {}).get("conditions") or []
        return any("Content-Length 2147483648" in (c.get("message") or "") for c in conditions)

    wait_for(run_says_too_large, 180, "the run to say its in-place source is too large")
    assert kube.phase("evalrun", "declared") == "Pending"
    child = kube.get("artifact", "declared-benchmark-source")
    assert child["metadata"]["ownerReferences"][0]["name"] == "declared"
    assert big_source.sent["/declared.jsonl"] < 64 * 1024 * 1024, "refused from its declared length"
    # Half a gigabyte went through an ingest pod; the operator never held it.
    assert _peak_rss_mb(operator.proc.pid) < 400
