"""What every judge stage shares: the client's lifecycle, loading evidence, and storing the call log."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from proctor_jobs.benchmarks.base import StageContext, StageProcessor
from proctor_jobs.judge.client import Completion, JudgeClient
from proctor_jobs.judge.config import JudgeConfig
from proctor_jobs.judge.usage import method, prompt_tokens, text_tokens

#: requests in flight the operator granted this worker pod (`proctor.reconcile.budget`)
GRANTED_CONCURRENCY_ENV = "PROCTOR_JUDGE_CONCURRENCY"


class JudgeProcessor(StageProcessor):
    """A judge stage: one `JudgeClient` per shard, many items in flight against the shared limit."""

    stage = "judge"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = JudgeConfig.from_dict(config)
        # On a cluster the operator grants this Job's pods their share of a JudgeServer's budget when it
        # creates the Job (shared with the other runs at every moment): never more than that.
        granted = os.environ.get(GRANTED_CONCURRENCY_ENV, "")
        if granted.isdigit() and int(granted) > 0:
            self.config.concurrency = min(self.config.concurrency, int(granted))
        # A quarter more items than endpoint slots (at least 4): they prepare their request (load
        # screenshots, build the prompt) while others are in flight, so a freed slot is refilled at
        # once — without holding the images of many more items in memory than can be sent.
        self.concurrency = self.config.concurrency + max(4, self.config.concurrency // 4)
        # A safety net only: the client bounds its own time (attempts x timeout + outage wait).
        self.item_deadline_s = (
            self.config.max_attempts * (self.config.timeout_s + 35.0) + self.config.outage_s + 120.0
        )
        self.client: JudgeClient | None = None

    async def start(self, ctx: StageContext) -> None:
        # A run's additional judges work in stages of their own (`judge-<name>`): records say which.
        self.stage = ctx.manifest.stage
        self.client = JudgeClient(
            self.config.resolved_url(),
            self.config.model,
            self.config.api_key(),
            timeout_s=self.config.timeout_s,
            max_attempts=self.config.max_attempts,
            concurrency=self.config.concurrency,
            backoff_s=self.config.backoff_s,
            outage_s=self.config.outage_s,
            on_state=lambda state: ctx.note("judge", state),
        )

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    @property
    def sampling(self) -> dict[str, Any]:
        return {
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "seed": self.config.seed,
        }

    async def load(self, ctx: StageContext, key: str) -> bytes:
        """Evidence bytes from the store, off the event loop (an S3 GET must not stall other items)."""
        return await asyncio.to_thread(ctx.store.get_bytes, key)

    async def save_calls(self, ctx: StageContext, item_id: str, completion: Completion) -> str:
        self.count_calls(ctx, completion)
        data = json.dumps(completion.call_log(), indent=1, ensure_ascii=False).encode()
        return await asyncio.to_thread(
            ctx.put_evidence, item_id, "judge_calls.json", data, "application/json"
        )

    @staticmethod
    def count_calls(ctx: StageContext, completion: Completion) -> None:
        """Judge requests by outcome, their latency and tokens, for the operator's Prometheus metrics
        (`proctor_judge_requests`, `proctor_judge_request_duration_seconds`, `proctor_judge_tokens`),
        and per judged item its retries (`proctor_judge_retried_calls`), counted as summary.json's
        `cost` counts them (images: `sent`)."""
        metrics = getattr(ctx, "metrics", None)
        if metrics is None:
            return
        if completion.calls:
            metrics.inc("judge_retried_calls", "", len(completion.calls) - 1)
        for call in completion.calls:
            metrics.inc("judge_requests", call.outcome)
            metrics.observe("judge_request_seconds", call.latency_s)
            for kind in ("prompt", "completion"):  # what the run cost in tokens (`proctor_judge_tokens`)
                tokens = (call.usage or {}).get(f"{kind}_tokens")
                if isinstance(tokens, int):
                    metrics.inc("judge_tokens", kind, tokens)

    async def save_text(self, ctx: StageContext, item_id: str, name: str, text: str) -> str:
        return await asyncio.to_thread(
            ctx.put_evidence, item_id, name, text.encode(), "text/plain; charset=utf-8"
        )

    def sent(
        self,
        ctx: StageContext,
        completion: Completion,
        messages: list[dict[str, Any]],
        sizes: list[tuple[int, int]],
    ) -> dict[str, Any]:
        """What was sent, for the cost: images and their pixels, and — only for calls the server
        answered without `usage` — the tokens estimated on our side, kept apart from reported ones.
        Counted in the shard's metrics too (`proctor_judge_images`, `..._image_pixels`)."""
        pixels = sum(w * h for w, h in sizes)
        replied = [c for c in completion.calls if c.reply is not None]
        fields: dict[str, Any] = {
            "images_sent": len(sizes),
            "image_pixels": pixels,
            "answered_calls": len(replied),  # the calls a server read and answered: what tokens cover
        }
        unreported = [c for c in replied if not c.usage]
        metrics = getattr(ctx, "metrics", None)
        if metrics is not None and completion.calls:  # per item, as the record counts them
            metrics.inc("judge_images", "sent", len(sizes))
            metrics.inc("judge_image_pixels", "sent", pixels)
        if unreported:
            tokenizer = self.config.tokenizer
            prompt = prompt_tokens(messages, sizes, tokenizer) * len(unreported)
            completion_tokens = sum(text_tokens(c.reply or "", tokenizer) for c in unreported)
            fields["usage_estimated"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "calls": len(unreported),
                "method": method(tokenizer),
            }
            if metrics is not None:
                metrics.inc("judge_tokens_estimated", "prompt", prompt)
                metrics.inc("judge_tokens_estimated", "completion", completion_tokens)
        return fields

    def call_summary(self, completion: Completion) -> dict[str, Any]:
        return {
            "model": self.client.model if self.client else self.config.model,
            "calls": len(completion.calls),
            "charged_calls": completion.charged_calls,
            "usage": completion.usage,
            "latency_s": round(sum(c.latency_s for c in completion.calls), 3),
            "outcome": completion.outcome,
        }
