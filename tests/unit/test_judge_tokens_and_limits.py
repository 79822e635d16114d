"""Prompt truncation to a token budget, and the per-endpoint limit shared across event loops."""

from __future__ import annotations

import asyncio
import threading

import pytest

from proctor_jobs.judge.limits import SharedLimiter, endpoint, forget_endpoints
from proctor_jobs.judge.tokens import CHARS_PER_TOKEN, truncate


@pytest.fixture
def word_tokenizer(tmp_path):
    """A real tokenizer.json (one token per word) built with the `tokenizers` library."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, **{f"w{i}": i + 1 for i in range(100)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    return str(path)


def test_tokenizer_truncation_keeps_exactly_the_budget(word_tokenizer):
    text = " ".join(f"w{i}" for i in range(50))
    cut, info = truncate(text, 10, word_tokenizer)
    assert cut.split() == [f"w{i}" for i in range(10)]
    assert info.truncated and info.method == "tokenizer" and info.tokens_before == 50


def test_text_within_budget_is_untouched(word_tokenizer):
    text = "w1 w2 w3"
    assert truncate(text, 10, word_tokenizer)[0] == text
    assert truncate(text, 10)[0] == text
    assert truncate(text, None)[1].method == "none"


def test_character_estimate_without_a_tokenizer():
    text = "x" * 1000
    cut, info = truncate(text, 100)
    assert len(cut) == int(100 * CHARS_PER_TOKEN)
    assert info.truncated and info.method == "chars"


def test_missing_tokenizer_file_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="tokenizer file not found"):
        truncate("text", 10, str(tmp_path / "nope.json"))


def test_limiter_holds_across_event_loops_in_threads():
    limiter = SharedLimiter(3)
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    async def worker():
        async def one():
            async with limiter:
                with lock:
                    state["now"] += 1
                    state["peak"] = max(state["peak"], state["now"])
                await asyncio.sleep(0.01)
                with lock:
                    state["now"] -= 1

        await asyncio.gather(*(one() for _ in range(20)))

    threads = [threading.Thread(target=lambda: asyncio.run(worker())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert state["peak"] == 3
    assert limiter.in_use == 0


def test_cancelled_waiters_do_not_leak_slots():
    limiter = SharedLimiter(1)

    async def scenario():
        await limiter.acquire()
        waiters = [asyncio.create_task(limiter.acquire()) for _ in range(5)]
        await asyncio.sleep(0.01)
        for task in waiters[:3]:
            task.cancel()
        limiter.release()  # hands the slot to the first live waiter
        await asyncio.sleep(0.01)
        done = [t for t in waiters if t.done() and not t.cancelled()]
        assert len(done) == 1
        limiter.release()
        await asyncio.sleep(0.01)
        limiter.release()
        await asyncio.gather(*waiters, return_exceptions=True)

    asyncio.run(scenario())
    assert limiter.in_use == 0


def test_one_limit_per_endpoint_and_the_lower_configuration_wins():
    forget_endpoints()
    a = endpoint("http://127.0.0.1:1/v1/", 8)
    b = endpoint("http://127.0.0.1:1/v1", 4)
    assert a is b and a.limiter.limit == 4
    assert endpoint("http://127.0.0.1:2/v1", 8) is not a
    forget_endpoints()


def test_tokens_are_counted_with_the_judge_s_tokenizer_when_one_is_configured(word_tokenizer):
    from proctor_jobs.judge.usage import MESSAGE_TOKENS, method, prompt_tokens, text_tokens

    text = "one two three four five six seven"  # 35 characters, 7 words
    assert text_tokens(text, word_tokenizer) == 7 and method(word_tokenizer) == "tokenizer"
    assert text_tokens(text) == 9 and method(None) == "chars"  # 4 characters a token, rounded up
    messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    assert prompt_tokens(messages, [], word_tokenizer) == MESSAGE_TOKENS + 7
