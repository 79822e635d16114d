"""The judge client against the judge test double: retries, budgets, limits, outages, call logs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from proctor_jobs.judge.client import JudgeClient, Unparseable
from proctor_jobs.judge.limits import forget_endpoints

PROMPT = (
    '"Overall Score" --------Answer starts--------\nmy page [[score:{score}]]\n--------Answer ends--------'
)


@pytest.fixture(autouse=True)
def fresh_endpoints():
    forget_endpoints()
    yield
    forget_endpoints()


def messages(score=42, images=()):
    content = [{"type": "text", "text": PROMPT.format(score=score)}]
    content += [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + i}} for i in images]
    return [{"role": "user", "content": content}]


def parse_score(text: str) -> float:
    from proctor_jobs.judge.artifactsbench_prompt import parse_score

    parsed = parse_score(text)
    if parsed is None:
        raise Unparseable("no score")
    return parsed[0]


def client(url, **kw) -> JudgeClient:
    options = {"timeout_s": 5.0, "max_attempts": 3, "concurrency": 8, "backoff_s": 0.02, "outage_s": 10.0}
    options.update(kw)
    return JudgeClient(url, None, "test-key", **options)


async def complete(c: JudgeClient, msgs=None, **kw):
    try:
        return await c.complete(msgs or messages(), parse=parse_score, **kw)
    finally:
        await c.close()


def test_a_healthy_call_is_logged_completely(judge_double):
    double = judge_double(latency_s=0.01)
    result = asyncio.run(complete(client(double.url), temperature=0.7, max_tokens=None))
    assert result.ok and result.parsed == 42.0
    (call,) = result.calls
    assert call.attempt == 1 and call.charged and call.outcome == "ok" and call.status_code == 200
    assert '"Overall Score": "42"' in call.reply
    assert call.usage["prompt_tokens"] > 0 and call.latency_s > 0 and call.model == "judge-double"
    (request,) = double.requests
    assert request["temperature"] == 0.7 and request["max_tokens"] is None  # None is not sent


@pytest.mark.parametrize("kind", ["429", "500", "503", "garbage", "badjson", "empty", "reset"])
def test_every_transient_failure_is_retried_within_the_budget(judge_double, kind):
    double = judge_double(fail_rate=1.0, fail_kinds=[kind])
    result = asyncio.run(complete(client(double.url)))
    assert not result.ok
    assert result.charged_calls == 3 and len(double.requests) == 3
    assert "3 calls" in result.error


def test_a_success_after_failures_uses_fewer_calls(judge_double):
    double = judge_double(fail_rate=1.0, fail_kinds=["500"])
    c = client(double.url, backoff_s=1.0)  # the retry comes 0.5-1 s after the first failure

    async def scenario():
        task = asyncio.create_task(complete(c))
        while not (double.requests and double.requests[0]["outcome"] == "500"):
            await asyncio.sleep(0.01)
        double.configure(fail_rate=0.0)  # heal the server before the retry
        return await task

    result = asyncio.run(scenario())
    assert result.ok and result.parsed == 42.0
    assert [call.outcome for call in result.calls] == ["http_error", "ok"]


def test_client_errors_are_not_retried(judge_double):
    double = judge_double(api_key="the-right-key")
    result = asyncio.run(complete(client(double.url)))
    assert not result.ok and result.outcome == "rejected"
    assert len(result.calls) == 1 and result.calls[0].status_code == 401


def test_timeouts_are_charged(judge_double):
    double = judge_double(fail_rate=1.0, fail_kinds=["timeout"], stall_s=5.0)
    started = time.monotonic()
    result = asyncio.run(complete(client(double.url, timeout_s=0.3)))
    assert not result.ok and [c.outcome for c in result.calls] == ["timeout"] * 3
    assert time.monotonic() - started < 5.0


def test_unparseable_reply_is_retried_then_reported(judge_double):
    double = judge_double()
    garbage = [{"role": "user", "content": PROMPT.replace("[[score:{score}]]", "[[reply:garbage]]")}]
    result = asyncio.run(complete(client(double.url), garbage))
    assert not result.ok and result.outcome == "unparseable"
    assert [c.outcome for c in result.calls] == ["unparseable"] * 3
    assert result.text and "unable" in result.text


def test_the_endpoint_limit_holds_across_workers(judge_double):
    double = judge_double(latency_s=0.05)

    def worker():
        async def many():
            c = client(double.url, concurrency=3)
            try:
                await asyncio.gather(*(c.complete(messages(), parse=parse_score) for _ in range(12)))
            finally:
                await c.close()

        asyncio.run(many())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(double.requests) == 36
    assert double.peak_in_flight == 3


def test_an_outage_is_waited_out_without_spending_the_budget(judge_double):
    double = judge_double(latency_s=0.01)
    double.stop()

    def heal():
        time.sleep(1.5)
        double.start()

    healer = threading.Thread(target=heal)
    healer.start()
    result = asyncio.run(complete(client(double.url, max_attempts=1)))
    healer.join()
    assert result.ok, result.error
    assert result.charged_calls == 1  # the refused connections were not charged
    assert any(c.outcome == "endpoint_down" and not c.charged for c in result.calls)


def test_an_outage_longer_than_allowed_fails_in_bounded_time(judge_double):
    double = judge_double()
    url = double.url
    double.stop()
    started = time.monotonic()
    result = asyncio.run(complete(client(url, outage_s=1.0)))
    assert not result.ok and result.outcome == "unreachable"
    assert "unreachable" in result.error
    assert time.monotonic() - started < 8.0


def test_model_is_discovered_when_not_configured(judge_double):
    double = judge_double(model="served-judge")
    result = asyncio.run(complete(client(double.url)))
    assert result.ok and double.requests[0]["model"] == "served-judge"


def test_a_degraded_judge_is_reported_while_it_is_retried_and_cleared_when_it_answers(judge_double):
    """What the progress line shows: retrying after a 429, waiting through an outage, then nothing."""
    states: list[str | None] = []
    double = judge_double(fail_rate=1.0, fail_kinds=["429"])
    c = client(double.url, backoff_s=0.5, on_state=states.append)

    async def scenario():
        task = asyncio.create_task(complete(c))
        while not any(s and s.startswith("retrying: judge HTTP 429") for s in states):
            await asyncio.sleep(0.01)
        double.configure(fail_rate=0.0)
        return await task

    result = asyncio.run(scenario())
    assert result.ok
    assert states[-1] is None  # cleared by the call that succeeded

    states.clear()
    down = judge_double()
    down.stop()
    asyncio.run(complete(client(down.url, outage_s=1.0, on_state=states.append)))
    assert any(s and s.startswith("waiting: judge unreachable") for s in states), states
