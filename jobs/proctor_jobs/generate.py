"""The optional candidate-generation stage: a model answers every item before it is evaluated.

With `spec.candidate` set, the planner adds a "generate" stage before the benchmark's own stages
(one item per task and sample), and the worker copies each generated answer into the later
stages' items (`worker.attach_generated_answers`). This processor asks the candidate model —
any OpenAI-compatible endpoint — with each benchmark's own prompt format:

- ArtifactsBench: the task's question as the only user message (how the dataset is meant to be
  answered: "perform inference based on the question field").
- Vision2Code: a system prompt asking for a matplotlib program that saves to `OUTPUT_PATH`, then
  the reference image with a short instruction.
- HumanEval-V: the image first, then the V2C instruction with the function signature as code
  context (HumanEval-V's inference.py / prompts.py structure).

The wording of our prompts is our own; `candidate.systemPrompt` and `candidate.promptTemplate`
(with `{question}`, `{function_signature}`, `{width}`, `{height}` placeholders) replace them, e.g.
with a benchmark's exact published prompt. Sampling: `candidate.temperature` when given, else
HumanEval-V's rule (0 for one sample, 0.8 with top_p 0.95 for several) for every benchmark.
Calls go through the judge client: bounded retries, backoff, an endpoint-wide concurrency limit,
and a call log stored as evidence.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from proctor_jobs.benchmarks.base import StageContext, StageProcessor
from proctor_jobs.judge.client import JudgeClient, Unparseable
from proctor_jobs.judge.images import decode_base64_image, image_part, text_part
from proctor_jobs.layout import artifact_prefix
from proctor_jobs.records import ItemRecord, failed, ok
from proctor_jobs.store.base import KeyNotFound

API_KEY_ENV = "PROCTOR_CANDIDATE_API_KEY"
URL_ENV = "PROCTOR_CANDIDATE_URL"
DEFAULT_MAX_TOKENS = {"humanevalv": 2048, "vision2code": 8192}

HUMANEVALV_PROMPT = """You are a highly capable programming assistant with a deep understanding of \
Python and a sharp eye for visual information. Your answers are accurate, dependable and careful.

**Task:**
Below are a Python programming problem and the image that goes with it. Complete the function using the \
image and the code context.

**Keep in mind**
- The function signature alone does not describe the whole problem; the image carries essential details.
- Study the image closely and work out how its visual elements map to the problem's inputs, outputs, \
operations, calculations, static or dynamic patterns, and conditions.
- Write the complete solution, function signature and body included, as a single Python code block, \
**with no further text or explanation**.

**Code Context:**
```python
{function_signature}
```
"""

VISION2CODE_SYSTEM = (
    "You write Python programs that recreate images. Given an image, write one self-contained Python "
    "program using matplotlib that reproduces it as closely as you can: the same kind of figure, layout, "
    "elements, text, numbers, colours and proportions. The variable OUTPUT_PATH is defined when the program "
    "runs; save the figure there with savefig. Do not show windows, read files or use the network. Reply "
    "with the program in a single ```python code block."
)
VISION2CODE_PROMPT = "Recreate this image ({width}x{height} pixels) as a Python matplotlib program."


def _nonempty(text: str) -> str:
    if not text.strip():
        raise Unparseable("the model returned an empty answer")
    return text


class GenerateProcessor(StageProcessor):
    stage = "generate"

    def __init__(self, config: dict[str, Any]) -> None:
        self.benchmark = config["benchmark"]
        self.candidate: dict[str, Any] = dict(config.get("candidate") or {})
        limit = int(self.candidate.get("concurrency") or 16)
        self.concurrency = limit + max(4, limit // 4)  # a few ready to refill a freed slot
        self.limit = limit
        self.timeout_s = float(self.candidate.get("timeoutSeconds", 600.0))
        self.max_attempts = int(self.candidate.get("maxAttempts", 3))
        self.item_deadline_s = self.max_attempts * (self.timeout_s + 35.0) + 720.0
        self.client: JudgeClient | None = None
        self.images: dict[str, str] = {}  # HumanEval-V qid -> diagram, when items do not carry it

    async def start(self, ctx: StageContext) -> None:
        url = self.candidate.get("url") or os.environ.get(URL_ENV)
        if not url:
            raise RuntimeError(
                f"no candidate URL: set spec.candidate.url or the {URL_ENV} environment variable"
            )
        key = os.environ.get(API_KEY_ENV) or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = JudgeClient(
            url,
            self.candidate.get("model"),
            key,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            concurrency=self.limit,
            backoff_s=float(self.candidate.get("backoffSeconds", 1.0)),
            outage_s=float(self.candidate.get("outageSeconds", 600.0)),
            on_state=lambda state: ctx.note("candidate", state),
        )

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def prepare(self, items, upstream, ctx: StageContext) -> None:
        if self.benchmark == "humanevalv" and any(not item.get("diagram") for item in items):
            self.images = await asyncio.to_thread(_task_diagrams, ctx)

    def sampling(self) -> dict[str, Any]:
        samples = int(self.candidate.get("samples", 1))
        temperature = self.candidate.get("temperature")
        top_p = self.candidate.get("topP")
        if temperature is None:
            temperature = 0.0 if samples == 1 else 0.8
            if samples > 1 and top_p is None:
                top_p = 0.95
        return {
            "temperature": float(temperature),
            "top_p": top_p,
            "max_tokens": self.candidate.get("maxTokens") or DEFAULT_MAX_TOKENS.get(self.benchmark),
        }

    async def messages(self, item: dict[str, Any], ctx: StageContext) -> list[dict[str, Any]]:
        template = self.candidate.get("promptTemplate")
        system = self.candidate.get("systemPrompt")
        out: list[dict[str, Any]] = []
        if self.benchmark == "humanevalv":
            text = (template or HUMANEVALV_PROMPT).format(
                function_signature=item.get("function_signature", "")
            )
            diagram = item.get("diagram") or self.images.get(item.get("qid", ""))
            content = [image_part(decode_base64_image(diagram))] if diagram else []
            content.append(text_part(text))
        elif self.benchmark == "vision2code":
            system = system or VISION2CODE_SYSTEM
            if item.get("reference_image"):
                image = decode_base64_image(item["reference_image"])
            else:
                image = await asyncio.to_thread(ctx.store.get_bytes, item["reference_key"])
            width, height = (item.get("reference_size") or ["?", "?"])[:2]
            text = (template or VISION2CODE_PROMPT).format(width=width, height=height)
            content = [image_part(image), text_part(text)]
        else:
            question = str(item.get("question") or item.get("prompt") or "")
            content = (template or "{question}").format(question=question)
        if system:
            out.append({"role": "system", "content": system})
        out.append({"role": "user", "content": content})
        return out

    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        completion = await self.client.complete(
            await self.messages(item, ctx), parse=_nonempty, **self.sampling()
        )
        calls = json.dumps(completion.call_log(), indent=1, ensure_ascii=False).encode()
        evidence = {
            "generate_calls": await asyncio.to_thread(
                ctx.put_evidence, item["id"], "generate_calls.json", calls, "application/json"
            )
        }
        last = completion.calls[-1] if completion.calls else None
        data = {
            "model": self.client.model,
            "calls": len(completion.calls),
            "charged_calls": completion.charged_calls,
            "usage": completion.usage,
            "finish_reason": last.finish_reason if last else None,
        }
        if not completion.ok:
            return failed(
                item["id"],
                self.stage,
                f"no answer from the candidate: {completion.error}",
                data=data,
                evidence=evidence,
            )
        data["answer"] = completion.parsed
        return ok(item["id"], self.stage, data=data, evidence=evidence)


def _task_diagrams(ctx: StageContext) -> dict[str, str]:
    """HumanEval-V diagrams by qid, from the run's stored task bundle (shard items carry no image)."""
    plan = ctx.store.get_json_or(ctx.layout.plan) or {}
    sha = (plan.get("inputs") or {}).get("benchmark")
    if not sha:
        return {}
    try:
        rows = ctx.store.get_jsonl(f"{artifact_prefix(sha)}/records.jsonl")
    except KeyNotFound:
        return {}
    return {row["qid"]: row["diagram"] for row in rows if row.get("qid") and row.get("diagram")}
