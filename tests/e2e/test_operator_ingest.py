"""A 2 GB HTTP source on the real control plane: fetched by an ingest Job, cut at the cap, never held by
the operator.

A server on 127.0.0.1 streams 2 GB of JSON Lines: once without a length (the ingest must read until
its cap), once with `Content-Length: 2147483648` (refused before the body). The operator is a child
process of the test, so its peak memory (VmHWM) is read from /proc.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles.big_source import TWO_GB, BigSource
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e

CAP = 512 * 1024 * 1024  # the operator's default ingest.maxBytes


@pytest.fixture
def big_source() -> Iterator[BigSource]:
    with BigSource() as source:
        yield source


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_two_gigabyte_http_source_never_reaches_the_operators_memory(kube, operator, big_source):
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "Artifact",
            "metadata": {"name": "endless"},
            "spec": {
                "type": "answers",
                "format": "humanevalv",
                "source": {"http": {"url": big_source.url("/endless.jsonl"), "sha256": "0" * 64}},
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
                    "source": {"http": {"url": big_source.url("/declared.jsonl"), "sha256": "0" * 64}},
                },
                "answers": {"artifactRef": {"name": "endless"}},
            },
        }
    )
    status = kube.wait_phase("artifact", "endless", ("Ready", "Invalid"), timeout=180)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["phase"] == "Invalid" and ready["reason"] == "SourceTooLarge", status
    assert "larger than 536,870,912 bytes" in status["message"]
    assert big_source.done("/endless.jsonl").wait(30)
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
