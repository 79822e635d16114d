"""TEST DOUBLE: a small OpenAI-compatible chat server standing in for a multimodal judge (and a
candidate model) in tests and benchmarks. It is not a judge: its "scores" are computed from the
request so that tests can predict them.

    python -m tests.doubles.judge_server --host 127.0.0.1 --port 0 --latency 0.2 --capacity 8 \
        --fail-rate 0.3 --fail-kinds 429,500,timeout,garbage

prints its base URL (`http://127.0.0.1:PORT/v1`) as the first line of stdout, then serves until
SIGTERM/SIGINT. In-process, `JudgeDouble(...).start()` runs it on a background thread.

Endpoints:
- `GET /v1/models` — lists the one model (`--model`, default `judge-double`).
- `POST /v1/chat/completions` — text and `image_url` parts (data URLs are decoded and checked),
  `usage` in the reply: a faithful count of what was sent, by the double's own "tokenizer" — every
  text part at one token per 4 characters (rounded up), 4 tokens of framing per message, and each
  image as a Qwen2-VL model counts it from its real size (one token per 28 x 28 pixels after
  resizing to multiples of 28, plus 2 delimiters); the reply at one token per 4 characters.
- `GET /_double/log`, `GET /_double/stats`, `POST /_double/config`, `POST /_double/reset` — the
  request log, counters (requests, outcomes, peak in-flight), runtime reconfiguration, reset.

Behaviour (all configurable, at start or through `/_double/config`):
- `latency_s` (+ uniform `jitter_s`) per request; `capacity` requests served at once, the rest
  queue (0 = unlimited); `peak_in_flight` tells a test how many the client sent at once.
- Injected failures: each request fails with probability `fail_rate` (seeded), with a kind drawn
  from `fail_kinds`: `429` (with `Retry-After: 0`), `500`, `503`, `timeout` (stalls `stall_s`
  before answering), `garbage` (200 with a reply that has no score), `badjson` (200 with a body
  that is not JSON), `empty` (200 with no choices), `reset` (connection closed mid-request).
- Scripted replies (`mode`): `auto` picks by the prompt — an ArtifactsBench prompt (`"Overall
  Score"`) gets `artifactsbench_reply`, a Vision2Code rubric prompt (`category_scores`) gets
  `vision2code_reply`, anything else is treated as a generation request (`candidate_reply`).
  `fixed` always answers `fixed_reply`; `echo` answers the prompt text. In-process, `reply` may
  be any function of the request.

Markers let a test script one item's reply through its answer text: `[[score:NN]]` sets the
ArtifactsBench score, `[[v2c:X.Y]]` every Vision2Code category score, `[[reply:garbage]]` makes
the reply unparseable, `[[reply:range]]` answers a score range ("30-40"), `[[reply:chinese]]` uses
the Chinese score key, `[[reply:fenced]]` wraps JSON in a think block and a fence.

What the double "sees": an ArtifactsBench score is a function of the answer text, except that
screenshots which are all one flat colour (an empty page) cap it at `BLANK_PAGE_SCORE`; a
Vision2Code score is how alike the reference and the candidate image are. Judge modes (the issue's
"several judges" and "calibration" tests):
- `blind` — ignores the images, as a text-only model behind a multimodal name would: every score
  is the middle of the scale (50, or 2.5) unless a text marker sets it. It fails calibration.
- `bias` and `noise` — a fixed offset, and a Gaussian noise (its standard deviation), both as a
  fraction of the scale (0.1 = 10 ArtifactsBench points, 0.5 of a Vision2Code rating), added to
  every score and clipped to the scale. The noise is drawn from `seed` and the request's content,
  so the same request gets the same score again (a judge's fixed opinion, not sampling).
- `usage` — false leaves `usage` out of the reply (servers that do not report tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aiohttp import web

FAIL_KINDS = ("429", "500", "503", "timeout", "garbage", "badjson", "empty", "reset")
AB_ANSWER_START = "--------Answer starts--------"
AB_ANSWER_END = "--------Answer ends--------"
_MARKER = re.compile(r"\[\[(score|v2c|reply):([^\]]+)\]\]")


@dataclass
class DoubleConfig:
    model: str = "judge-double"
    latency_s: float = 0.0
    jitter_s: float = 0.0
    capacity: int = 0
    fail_rate: float = 0.0
    fail_kinds: tuple[str, ...] = ("429", "500", "timeout", "garbage")
    stall_s: float = 30.0
    seed: int = 0
    mode: str = "auto"  # auto | artifactsbench | vision2code | candidate | echo | fixed
    fixed_reply: str = "OK"
    api_key: str | None = None  # when set, requests must carry it as a bearer token
    log_text_chars: int = 200_000
    blind: bool = False  # ignore the images: a constant middle score (unless a text marker sets it)
    bias: float = 0.0  # added to every score, as a fraction of the scale
    noise: float = 0.0  # standard deviation of the per-request noise, as a fraction of the scale
    usage: bool = True  # report token usage in the reply

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown test-double setting {key!r}")
            if key in ("blind", "usage") and isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            if key == "fail_kinds":
                value = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
                bad = [k for k in value if k not in FAIL_KINDS]
                if bad:
                    raise ValueError(f"unknown failure kinds {bad}; known: {FAIL_KINDS}")
            setattr(self, key, value)


# --- scripted replies -------------------------------------------------------------------------


def stable_score(text: str) -> int:
    """A score 0-100 that depends only on the text (tests compute the same)."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 101


def _markers(text: str) -> dict[str, str]:
    return {kind: value for kind, value in _MARKER.findall(text)}


def artifactsbench_answer(prompt: str) -> str:
    """The answer section of an ArtifactsBench judge prompt (to the end, when truncated)."""
    start = prompt.find(AB_ANSWER_START)
    if start < 0:
        return prompt
    rest = prompt[start + len(AB_ANSWER_START) :]
    end = rest.rfind(AB_ANSWER_END)
    return (rest[:end] if end >= 0 else rest).strip()


def expected_artifactsbench_score(answer_section: str) -> float:
    """The score `artifactsbench_reply` gives for an answer section."""
    marks = _markers(answer_section)
    try:
        return float(marks["score"])
    except (KeyError, ValueError):
        return float(stable_score(answer_section))


BLANK_PAGE_SCORE = 10.0
AB_MIDDLE, V2C_MIDDLE = 50.0, 2.5


def is_flat(image: bytes) -> bool:
    """Whether an image is one flat colour (an empty page); an unreadable one is not."""
    from PIL import Image

    try:
        extrema = Image.open(io.BytesIO(image)).convert("RGB").getextrema()
    except Exception:
        return False
    return all(low == high for low, high in extrema)


def judged(value: float, scale: float, config: DoubleConfig | None, request_key: str) -> float:
    """A score with the judge's bias and noise (both fractions of `scale`), clipped to 0..scale."""
    if config is None or not (config.bias or config.noise):
        return value
    value += config.bias * scale
    if config.noise:
        rng = random.Random(f"{config.seed}:{request_key}")
        value += rng.gauss(0.0, config.noise * scale)
    return min(scale, max(0.0, value))


def _request_key(prompt: str, images: list[bytes]) -> str:
    digest = hashlib.sha256(prompt.encode())
    for image in images:
        digest.update(hashlib.sha256(image).digest())
    return digest.hexdigest()


def artifactsbench_score(answer: str, images: list[bytes], config: DoubleConfig | None = None) -> float:
    """The score `artifactsbench_reply` gives: the answer's (or its marker's), capped when every
    screenshot is an empty page, or the middle of the scale when blind; then bias and noise."""
    marks = _markers(answer)
    if "score" in marks:
        return float(marks["score"])
    if config is not None and config.blind:
        score = AB_MIDDLE
    else:
        score = expected_artifactsbench_score(answer)
        if images and all(is_flat(i) for i in images):
            score = min(score, BLANK_PAGE_SCORE)
    if config is not None and (config.bias or config.noise):
        score = float(round(judged(score, 100.0, config, _request_key(answer, images))))
    return score


def artifactsbench_reply(prompt: str, images: list[bytes], config: DoubleConfig | None = None) -> str:
    answer = artifactsbench_answer(prompt)
    marks = _markers(answer)
    style = marks.get("reply", "")
    if style == "garbage":
        return "I am unable to provide a score for this submission."
    score = artifactsbench_score(answer, images, config)
    value = f"{int(score)}" if score == int(score) else f"{score}"
    if style == "range":
        value = f"{int(score)}-{min(100, int(score) + 10)}"
    key = "总体打分" if style == "chinese" else "Overall Score"
    reason = (
        "test-double verdict without looking at the screenshots."
        if config is not None and config.blind
        else f"test-double verdict for an answer of {len(answer)} characters."
    )
    return (
        f"The submission was reviewed against the checklist with {len(images)} screenshot(s).\n"
        f'```json\n{{\n  "{key}": "{value}"\n}}\n```\n'
        f"Reason: {reason}"
    )


_V2C_CATEGORY = re.compile(r"^- ([a-z0-9_]+) \(weight", re.MULTILINE)


def image_similarity_score(reference: bytes, candidate: bytes) -> float:
    """0-5 in 0.1 steps from how alike two images are (identical images give 5.0)."""
    from PIL import Image, ImageChops, ImageStat

    try:
        a = Image.open(io.BytesIO(reference)).convert("L").resize((64, 64))
        b = Image.open(io.BytesIO(candidate)).convert("L").resize((64, 64))
    except Exception:
        return 0.0
    diff = ImageStat.Stat(ImageChops.difference(a, b)).mean[0]
    return round(5.0 * (1.0 - diff / 255.0), 1)


def expected_vision2code_scores(
    prompt: str, images: list[bytes], config: DoubleConfig | None = None
) -> dict[str, float]:
    """The category scores `vision2code_reply` gives (the same score for every category)."""
    marks = _markers(prompt)
    if "v2c" in marks:
        value = float(marks["v2c"])
    elif config is not None and config.blind:
        value = V2C_MIDDLE
    elif len(images) >= 2:
        value = image_similarity_score(images[0], images[1])
    else:
        value = 0.0
    if config is not None and (config.bias or config.noise):
        value = round(judged(value, 5.0, config, _request_key(prompt, images)), 1)
    return {category: value for category in _V2C_CATEGORY.findall(prompt)}


def vision2code_reply(prompt: str, images: list[bytes], config: DoubleConfig | None = None) -> str:
    style = _markers(prompt).get("reply", "")
    if style == "garbage":
        return "The candidate looks broadly similar; I would give it a decent mark."
    scores = expected_vision2code_scores(prompt, images, config)
    body = json.dumps(
        {
            "category_scores": scores,
            "rationales": {c: "test-double rationale" for c in scores},
            "strengths": ["rendered by the test double"],
            "issues": ["none examined: this is a test double"],
            "overall_summary": (
                "Test-double rating without looking at the images."
                if config is not None and config.blind
                else f"Test-double rating from {len(images)} image(s)."
            ),
        },
        indent=2,
    )
    if style == "fenced":
        return f"<think>comparing the two images</think>\n```json\n{body}\n```"
    return body


def candidate_reply(prompt: str, images: list[bytes]) -> str:
    """An answer for a generation request, shaped by what the prompt asks for."""
    code_context = re.search(r"```python\n(.*?)```", prompt, re.DOTALL)
    if code_context and "def " in code_context.group(1):
        signature = code_context.group(1).rstrip()
        return f"```python\n{signature}\n    return None\n```"
    if "OUTPUT_PATH" in prompt or "matplotlib" in prompt:
        return (
            "```python\nimport matplotlib.pyplot as plt\n\n"
            "fig, ax = plt.subplots()\nax.bar([1, 2, 3], [3, 1, 2])\nfig.savefig(OUTPUT_PATH)\n```"
        )
    score = stable_score(prompt)
    return (
        "```html\n<!DOCTYPE html>\n<html><head><title>double</title></head>"
        f"<body><h1>Generated by the test double</h1><p>[[score:{score}]]</p></body></html>\n```"
    )


def scripted_reply(
    mode: str, prompt: str, images: list[bytes], fixed: str, config: DoubleConfig | None = None
) -> str:
    if mode == "fixed":
        return fixed
    if mode == "echo":
        return prompt
    if mode == "auto":
        if '"Overall Score"' in prompt:
            mode = "artifactsbench"
        elif "category_scores" in prompt:
            mode = "vision2code"
        else:
            mode = "candidate"
    if mode == "artifactsbench":
        return artifactsbench_reply(prompt, images, config)
    if mode == "vision2code":
        return vision2code_reply(prompt, images, config)
    return candidate_reply(prompt, images)


# --- the server -------------------------------------------------------------------------------


@dataclass
class RequestInfo:
    """What the double saw in one chat completion request (tests read these from the log)."""

    index: int
    received_at: float
    model: str | None
    text: str
    images: list[bytes] = field(repr=False, default_factory=list)
    roles: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def image_tokens(image: bytes) -> int:
    """An image's tokens for a Qwen2-VL model, from its real size (the processor's smart resize)."""
    from PIL import Image

    try:
        width, height = Image.open(io.BytesIO(image)).size
    except Exception:
        return 0
    patch, low, high = 28, 4 * 28 * 28, 16384 * 28 * 28
    h, w = max(patch, round(height / patch) * patch), max(patch, round(width / patch) * patch)
    if h * w > high:
        beta = math.sqrt(height * width / high)
        h, w = math.floor(height / beta / patch) * patch, math.floor(width / beta / patch) * patch
    elif h * w < low:
        beta = math.sqrt(low / (height * width))
        h, w = math.ceil(height * beta / patch) * patch, math.ceil(width * beta / patch) * patch
    return (h // patch) * (w // patch) + 2


def count_prompt_tokens(messages: list[dict[str, Any]], images: list[bytes]) -> int:
    """The prompt tokens of what was sent: each text part, each message's framing, each image."""
    tokens = 4 * len(messages)
    for message in messages:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for part in parts:
            if part.get("type") == "text":
                tokens += math.ceil(len(part.get("text") or "") / 4)
    return tokens + sum(image_tokens(image) for image in images)


def _parse_messages(body: dict[str, Any]) -> tuple[str, list[bytes], list[str]]:
    """All text joined, the decoded images in order, and the roles; raises ValueError if malformed."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    texts, images, roles = [], [], []
    for message in messages:
        roles.append(message.get("role", "?"))
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise ValueError("message content must be a string or a list of parts")
        for part in content:
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                if not url.startswith("data:image/") or ";base64," not in url:
                    raise ValueError("image_url must be a base64 data URL")
                images.append(base64.b64decode(url.split(",", 1)[1], validate=True))
            else:
                raise ValueError(f"unsupported content part type {part.get('type')!r}")
    return "\n".join(texts), images, roles


class JudgeDouble:
    """The test double, run in-process on a background thread (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: Callable[[RequestInfo], str] | None = None,
        **config: Any,
    ) -> None:
        self.host, self.port = host, port
        self.config = DoubleConfig()
        self.config.update(config)
        self.reply = reply
        self._lock = threading.Lock()
        self._reset_state()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def _reset_state(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.outcomes: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.queued = 0
        self._rng = random.Random(self.config.seed)
        self._started = time.monotonic()

    # --- lifecycle ---

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> JudgeDouble:
        if self.running:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # e.g. the port is taken
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="judge-double", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread = None
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        app = self.build_app()
        # handler_cancellation: a client that gives up (timeout) ends its stalled handler too.
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._semaphore = asyncio.Semaphore(self.config.capacity) if self.config.capacity else None

    def stop(self) -> None:
        """Stop serving (connections in flight are dropped); `start()` serves again on the same port."""
        if not self.running or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def reset(self) -> None:
        with self._lock:
            self._reset_state()

    def configure(self, **changes: Any) -> None:
        self.config.update(changes)
        if "capacity" in changes and self._loop is not None:

            def swap() -> None:
                self._semaphore = asyncio.Semaphore(self.config.capacity) if self.config.capacity else None

            self._loop.call_soon_threadsafe(swap)
        if "seed" in changes:
            self._rng = random.Random(self.config.seed)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self.requests),
                "outcomes": dict(self.outcomes),
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "queued": self.queued,
                "config": {k: v for k, v in asdict(self.config).items()},
            }

    def __enter__(self) -> JudgeDouble:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- HTTP ---

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/_double/log", self._log)
        app.router.add_get("/_double/stats", self._stats)
        app.router.add_post("/_double/config", self._configure)
        app.router.add_post("/_double/reset", self._reset)
        return app

    def _authorised(self, request: web.Request) -> bool:
        key = self.config.api_key
        return not key or request.headers.get("Authorization") == f"Bearer {key}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "invalid api key")
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.config.model, "object": "model", "owned_by": "test-double"}],
            }
        )

    async def _log(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(list(self.requests))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            self.configure(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        if not self._authorised(request):
            return _error(401, "invalid api key")
        try:
            body = await request.json()
            text, images, roles = _parse_messages(body)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return _error(400, f"bad request: {exc}")
        with self._lock:
            index = len(self.requests)
            entry: dict[str, Any] = {
                "index": index,
                "t": round(arrived - self._started, 4),
                "model": body.get("model"),
                "roles": roles,
                "images": len(images),
                "image_bytes": [len(i) for i in images],
                "image_sha256": [hashlib.sha256(i).hexdigest()[:16] for i in images],
                "text_chars": len(text),
                "text": text[: self.config.log_text_chars],
                "temperature": body.get("temperature"),
                "max_tokens": body.get("max_tokens"),
                "seed": body.get("seed"),
                "outcome": "pending",
            }
            self.requests.append(entry)
            failure = None
            if self.config.fail_rate and self._rng.random() < self.config.fail_rate:
                failure = self._rng.choice(self.config.fail_kinds)
            entry["injected"] = failure
        if body.get("model") not in (None, self.config.model):
            return self._finish(entry, "404", _error(404, f"model {body.get('model')!r} does not exist"))
        semaphore = self._semaphore
        if semaphore is not None:
            with self._lock:
                self.queued += 1
            await semaphore.acquire()
            with self._lock:
                self.queued -= 1
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            entry["in_flight_at_start"] = self.in_flight
            entry["queued_s"] = round(time.monotonic() - arrived, 4)
        try:
            delay = self.config.latency_s + self._rng.uniform(0, self.config.jitter_s)
            if failure == "timeout":
                delay = max(delay, self.config.stall_s)
            if delay:
                await asyncio.sleep(delay)
            if failure == "reset":
                request.transport.close()
                return self._finish(entry, "reset", web.Response(status=500))
            if failure in ("429", "500", "503"):
                headers = {"Retry-After": "0"} if failure == "429" else None
                return self._finish(entry, failure, _error(int(failure), "injected failure", headers))
            if failure == "badjson":
                return self._finish(
                    entry, failure, web.Response(text="{not json", content_type="application/json")
                )
            info = RequestInfo(index, arrived, body.get("model"), text, images, roles, dict(body))
            if failure == "garbage":
                content = "Lorem ipsum: no verdict here."
            elif self.reply is not None:
                content = self.reply(info)
            else:
                content = scripted_reply(self.config.mode, text, images, self.config.fixed_reply, self.config)
            choices = [] if failure == "empty" else [_choice(content)]
            prompt_tokens = count_prompt_tokens(body["messages"], images)
            completion_tokens = math.ceil(len(content) / 4)
            reply = {
                "id": f"chatcmpl-double-{index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.config.model,
                "choices": choices,
            }
            if self.config.usage:
                reply["usage"] = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                }
            return self._finish(entry, failure or "ok", web.json_response(reply))
        finally:
            with self._lock:
                self.in_flight -= 1
                if entry["outcome"] == "pending":  # the client went away first
                    entry["outcome"] = f"abandoned:{failure or 'ok'}"
                    self.outcomes[entry["outcome"]] += 1
            if semaphore is not None:
                semaphore.release()

    def _finish(
        self, entry: dict[str, Any], outcome: str, response: web.StreamResponse
    ) -> web.StreamResponse:
        with self._lock:
            entry["outcome"] = outcome
            self.outcomes[outcome] += 1
        return response


def _choice(content: str) -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "test_double_error", "code": status}}
    return web.json_response(body, status=status, headers=headers)


# --- as a separate process (end-to-end tests kill and restart it) ------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


class JudgeDoubleProcess:
    """The double as a child process: `kill()` it (SIGKILL) and `start()` it again on the same port."""

    def __init__(self, port: int = 0, **config: Any) -> None:
        self.port = port
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def _argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "tests.doubles.judge_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        for key, value in self.config.items():
            if value is None:
                continue
            flag = "--" + key.replace("_", "-")
            if key == "fail_kinds" and not isinstance(value, str):
                value = ",".join(value)
            argv += [flag, str(value)]
        return argv

    def start(self, timeout: float = 20.0) -> JudgeDoubleProcess:
        self.proc = subprocess.Popen(
            self._argv(), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = _readline(self.proc, timeout)
        if not line.startswith("http://"):
            self.kill()
            raise RuntimeError(f"the judge double did not start (said {line!r})")
        self.url = line.strip()
        self.port = int(self.url.split(":")[2].split("/")[0])
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def _get(self, path: str) -> Any:
        base = self.url.rsplit("/v1", 1)[0]
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._get("/_double/stats")

    def log(self) -> list[dict[str, Any]]:
        return self._get("/_double/log")


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.doubles.judge_server",
        description="TEST DOUBLE: an OpenAI-compatible judge/candidate server for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--model", default="judge-double")
    parser.add_argument("--latency-s", "--latency", dest="latency_s", type=float, default=0.0)
    parser.add_argument("--jitter-s", "--jitter", dest="jitter_s", type=float, default=0.0)
    parser.add_argument("--capacity", type=int, default=0, help="requests served at once (0: unlimited)")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument(
        "--fail-kinds", default="429,500,timeout,garbage", help=f"from {','.join(FAIL_KINDS)}"
    )
    parser.add_argument("--stall-s", "--stall", dest="stall_s", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "artifactsbench", "vision2code", "candidate", "echo", "fixed"],
    )
    parser.add_argument("--fixed-reply", default="OK")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--log-text-chars", type=int, default=200_000)
    parser.add_argument(
        "--blind", type=_flag, default=False, help="ignore the images: a constant middle score"
    )
    parser.add_argument(
        "--bias", type=float, default=0.0, help="added to every score, a fraction of the scale"
    )
    parser.add_argument(
        "--noise", type=float, default=0.0, help="noise sd per request, a fraction of the scale"
    )
    parser.add_argument("--usage", type=_flag, default=True, help="report token usage (true/false)")
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get("JUDGE_DOUBLE_ALLOW_PUBLIC"):
        parser.error("the test double binds to loopback only (set JUDGE_DOUBLE_ALLOW_PUBLIC=1 to override)")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before the URL is out: a quick SIGTERM still stops cleanly
        signal.signal(sig, lambda *_: stop.set())
    double = JudgeDouble(host, port, **args).start()
    print(double.url, flush=True)
    stop.wait()
    double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
