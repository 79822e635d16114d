"""The judge test double does what tests rely on: capacity, injected failures, a log, a standalone mode."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.doubles.judge_server import REPO_ROOT


def post(url: str, text: str = "hello", timeout: float = 10) -> tuple[int, dict, dict]:
    body = json.dumps({"model": "judge-double", "messages": [{"role": "user", "content": text}]}).encode()
    request = urllib.request.Request(url + "/chat/completions", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


def test_requests_beyond_capacity_queue(judge_double):
    double = judge_double(latency_s=0.2, capacity=2)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: post(double.url), range(8)))
    assert [status for status, _, _ in results] == [200] * 8
    assert double.peak_in_flight == 2
    assert max(entry["queued_s"] for entry in double.requests) >= 0.3  # later pairs waited for earlier ones


def test_injected_429_carries_retry_after_and_the_log_records_it(judge_double):
    double = judge_double(fail_rate=1.0, fail_kinds=["429"])
    status, headers, body = post(double.url)
    assert status == 429 and headers.get("Retry-After") == "0" and body["error"]["code"] == 429
    assert double.requests[0]["outcome"] == "429" and double.stats()["outcomes"] == {"429": 1}


def test_usage_and_scripted_candidate_reply(judge_double):
    double = judge_double()
    status, _, body = post(double.url, "Build a to-do app")
    assert status == 200 and body["usage"]["prompt_tokens"] > 0
    assert "```html" in body["choices"][0]["message"]["content"]


def test_malformed_requests_are_rejected(judge_double):
    double = judge_double()
    request = urllib.request.Request(
        double.url + "/chat/completions", b'{"messages": "no"}', {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400


def test_standalone_server_prints_its_url_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.doubles.judge_server", "--port", "0", "--latency", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with urllib.request.urlopen(url + "/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["id"] == "judge-double"
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


def test_standalone_server_refuses_to_listen_beyond_loopback():
    proc = subprocess.run(
        [sys.executable, "-m", "tests.doubles.judge_server", "--host", "0.0.0.0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0 and "loopback" in proc.stderr


def test_usage_counts_what_was_sent_each_image_by_its_size(judge_double):
    import base64
    import io

    from PIL import Image

    def request(size: tuple[int, int]) -> dict:
        out = io.BytesIO()
        Image.new("RGB", size, "white").save(out, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
        content = [{"type": "text", "text": "abcd" * 10}, {"type": "image_url", "image_url": {"url": url}}]
        body = json.dumps({"messages": [{"role": "user", "content": content}]}).encode()
        req = urllib.request.Request(
            double.url + "/chat/completions", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())["usage"]

    double = judge_double(mode="fixed", fixed_reply="x" * 9)
    # 4 framing + 10 text + a 1280x720 screenshot as Qwen2-VL sees it (46 x 26 patches of 28 px, + 2)
    assert request((1280, 720))["prompt_tokens"] == 4 + 10 + 46 * 26 + 2
    assert request((2560, 1440))["prompt_tokens"] == 4 + 10 + 91 * 51 + 2  # 4 times the pixels
    assert request((1280, 720))["completion_tokens"] == 3
