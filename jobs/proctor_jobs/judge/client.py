"""The async judge client: one chat completion per attempt, against any OpenAI-compatible server.

What it guarantees, so that the judge stage is robust and fast:

- **Bounded work per item.** At most `max_attempts` calls count against an item (default 3),
  whether they fail with 408/409/429/5xx, time out, lose the connection, or return a reply the
  caller cannot parse. Other HTTP errors (400, 401, 404, ...) end the item at once: retrying
  cannot fix them.
- **Outages are waited out, not charged.** When a call cannot even connect and a probe of
  `/models` fails too, the whole endpoint is down (a restarting vLLM pod, a killed server): the
  item waits, probing with backoff, for at most `outage_s`, and the failed connection does not
  count against its budget. An endpoint that answers probes but drops this request is charged.
- **Backoff with jitter** between attempts (`backoff_s`, doubling, capped at 30 s, half of it
  random), honouring `Retry-After`.
- **One concurrency limit per endpoint** for the whole process (see `limits.py`), held only while
  a request is in flight — never while backing off or waiting out an outage.
- **Every call is recorded** (`CallRecord`): attempt number, whether it was charged, latency,
  status, error, token usage, finish reason and the raw reply. Judges store the list as evidence.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from proctor_jobs.judge.limits import EndpointState, endpoint

RETRYABLE_STATUS = frozenset({408, 409, 429})
BACKOFF_CAP_S = 30.0
PROBE_TIMEOUT_S = 5.0
PROBE_CACHE_S = 1.0


class Unparseable(ValueError):
    """The reply arrived but does not contain what the caller needs (raised by `parse`)."""


@dataclass
class CallRecord:
    attempt: int  # the item's attempt number this call belongs to (1-based)
    charged: bool  # whether it counted against the item's budget
    outcome: str  # ok | unparseable | http_error | timeout | connection_error | endpoint_down | rejected
    started_at: str
    latency_s: float
    status_code: int | None = None
    error: str | None = None
    reply: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    repair: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    """The result of `JudgeClient.complete`: a parsed reply, or why there is none."""

    ok: bool
    text: str | None = None
    parsed: Any = None
    error: str | None = None
    outcome: str = "ok"  # ok | unparseable | exhausted | rejected | unreachable
    calls: list[CallRecord] = field(default_factory=list)
    images: int = 0  # image parts in the request (each call sends them all again)

    @property
    def charged_calls(self) -> int:
        return sum(1 for c in self.calls if c.charged)

    @property
    def usage(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for call in self.calls:
            for key, value in (call.usage or {}).items():
                if isinstance(value, int):
                    total[key] = total.get(key, 0) + value
        return total

    def call_log(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.calls]


def image_parts(messages: list[dict[str, Any]]) -> int:
    """How many images the chat messages carry (OpenAI `image_url` content parts)."""
    return sum(
        1
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


def normalise_base_url(url: str) -> str:
    """`http://host:8000` means vLLM's `http://host:8000/v1`; a URL with a path is kept as given."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"judge URL must be http(s)://host[:port][/path], got {url!r}")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _truncate(text: str | None, limit: int = 500) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "…"


class JudgeClient:
    """Chat completions with bounded retries, a shared per-endpoint limit and a call log."""

    def __init__(
        self,
        url: str,
        model: str | None,
        api_key: str,
        *,
        timeout_s: float = 300.0,
        max_attempts: int = 3,
        concurrency: int = 32,
        backoff_s: float = 1.0,
        outage_s: float = 600.0,
        on_state: Callable[[str | None], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = normalise_base_url(url)
        self.model = model
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.outage_s = outage_s
        # Told what the client is waiting on (None once a call succeeds), for the progress line.
        self.on_state = on_state or (lambda state: None)
        self.rng = rng or random.Random()
        self.endpoint: EndpointState = endpoint(self.base_url, concurrency)
        # Retries are ours (bounded, charged, logged): the library must not retry behind our back.
        self._client = AsyncOpenAI(base_url=self.base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        self._model_lock = asyncio.Lock()

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def resolve_model(self) -> str:
        """The model to ask for: the configured one, else the first the server lists (vLLM serves one)."""
        if self.model:
            return self.model
        async with self._model_lock:
            if not self.model:
                page = await self._client.models.list(timeout=min(self.timeout_s, 30.0))
                models = [m.id for m in page.data]
                if not models:
                    raise RuntimeError(f"{self.base_url}/models lists no model; set spec.judge.model")
                self.model = models[0]
        return self.model

    async def probe(self) -> bool:
        """Whether the endpoint answers at all (GET /models), cached briefly across the process."""
        cached = self.endpoint.cached_probe(PROBE_CACHE_S)
        if cached is not None:
            return cached
        try:
            await self._client.models.list(timeout=PROBE_TIMEOUT_S)
            ok = True
        except Exception as exc:
            from openai import APIStatusError

            # An HTTP error still means something is listening (e.g. a proxy without /models).
            ok = isinstance(exc, APIStatusError) and exc.status_code < 500
        self.endpoint.record_probe(ok)
        return ok

    def _delay(self, attempt: int, exc: Exception | None = None) -> float:
        base = min(BACKOFF_CAP_S, self.backoff_s * 2 ** max(0, attempt - 1))
        delay = base / 2 + self.rng.uniform(0, base / 2)
        hinted = _retry_after(exc) if exc is not None else None
        return min(60.0, max(delay, hinted)) if hinted is not None else delay

    async def _wait_for_endpoint(self, deadline: float) -> bool:
        """Probe with backoff until the endpoint answers or `deadline` passes."""
        wait = max(0.05, self.backoff_s / 2)
        while True:
            if await self.probe():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(remaining, wait * (0.75 + self.rng.random() / 2)))
            wait = min(5.0, wait * 2)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        parse: Callable[[str], Any] | None = None,
        repair: Callable[[list[dict[str, Any]], str, Exception], list[dict[str, Any]]] | None = None,
        **params: Any,
    ) -> Completion:
        """Ask until a reply parses, the budget is spent, or the error cannot be fixed by asking again.

        `parse(text)` returns the parsed value or raises `Unparseable`; `repair(messages, reply,
        error)` may return the messages for the next attempt (once), e.g. a request to fix the JSON.
        `params` go to the API as given (temperature, max_tokens, seed, ...); None values are dropped.
        """
        from openai import APIConnectionError, APIStatusError, APITimeoutError

        params = {k: v for k, v in params.items() if v is not None}
        result = Completion(ok=False, images=image_parts(messages))
        attempt = 1
        outage_deadline: float | None = None
        repaired = False
        current = messages
        while attempt <= self.max_attempts:
            is_repair = current is not messages
            started, stamp = time.monotonic(), _now()
            record = CallRecord(attempt, True, "ok", stamp, 0.0, repair=is_repair)
            result.calls.append(record)
            error: Exception | None = None
            try:
                model = await self.resolve_model()
                record.model = model
                async with self.endpoint.limiter:
                    response = await self._client.chat.completions.create(
                        model=model, messages=current, **params
                    )
            except APITimeoutError as exc:
                error, record.outcome, record.error = exc, "timeout", f"no reply within {self.timeout_s:g} s"
            except APIConnectionError as exc:
                error, record.outcome, record.error = exc, "connection_error", str(exc) or type(exc).__name__
            except APIStatusError as exc:
                error, record.status_code = exc, exc.status_code
                record.error = _truncate(f"HTTP {exc.status_code}: {exc.message}")
                retryable = exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
                record.outcome = "http_error" if retryable else "rejected"
            except Exception as exc:  # a malformed body, a protocol error: the server misbehaved
                error, record.outcome = exc, "http_error"
                record.error = _truncate(f"{type(exc).__name__}: {exc}")
            record.latency_s = round(time.monotonic() - started, 4)

            if error is None:
                choice = response.choices[0] if response.choices else None
                text = choice.message.content if choice is not None and choice.message else None
                record.reply = text
                record.finish_reason = getattr(choice, "finish_reason", None)
                usage = getattr(response, "usage", None)
                record.usage = usage.model_dump(exclude_none=True) if usage is not None else None
                record.status_code = 200
                try:
                    if text is None:
                        raise Unparseable("the reply has no message content")
                    parsed = parse(text) if parse else text
                except (Unparseable, ValueError) as exc:
                    record.outcome, record.error = "unparseable", _truncate(str(exc))
                    result.text, result.error, result.outcome = text, record.error, "unparseable"
                    attempt += 1
                    if repair is not None and not repaired and text is not None:
                        current, repaired = repair(messages, text, exc), True
                    else:
                        current = messages
                    if attempt <= self.max_attempts:
                        await asyncio.sleep(self._delay(attempt - 1) / 4)  # the server is fine; be brief
                    continue
                self.on_state(None)
                result.ok, result.text, result.parsed, result.error, result.outcome = (
                    True,
                    text,
                    parsed,
                    None,
                    "ok",
                )
                return result

            if record.outcome == "rejected":
                result.error, result.outcome = record.error, "rejected"
                return result
            if record.outcome == "connection_error":
                outage_deadline = outage_deadline or time.monotonic() + self.outage_s
                if not await self.probe():
                    # The endpoint as a whole is down: this call is not the item's fault.
                    record.charged, record.outcome = False, "endpoint_down"
                    left = outage_deadline - time.monotonic()
                    until = time.strftime("%H:%M:%S", time.localtime(time.time() + left))
                    self.on_state(f"waiting: judge unreachable ({record.error}); trying until {until}")
                    if await self._wait_for_endpoint(outage_deadline):
                        continue
                    result.error = (
                        f"judge at {self.base_url} unreachable for {self.outage_s:g} s: {record.error}"
                    )
                    result.outcome = "unreachable"
                    return result
            result.error, result.outcome = record.error, "exhausted"
            attempt += 1
            if attempt <= self.max_attempts:
                delay = self._delay(attempt - 1, error)
                self.on_state(f"retrying: judge {record.error} (next call in {delay:.0f} s)")
                await asyncio.sleep(delay)
        if result.outcome == "unparseable":
            result.error = f"no usable reply in {self.max_attempts} calls: {result.error}"
        elif result.outcome == "exhausted":
            result.error = f"judge failed {self.max_attempts} calls: {result.error}"
        return result
