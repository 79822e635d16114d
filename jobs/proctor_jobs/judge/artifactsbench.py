"""The ArtifactsBench judge stage: checklist prompt + screenshots in, a 0-100 score out.

Input: the item (`question`, `checklist`, `answer`, ...) and its render record (`data.screenshots`:
store keys in order; `data.extraction.kind`). Output: an `ok` record with `score` (the parsed
Overall Score), the judge's reason, and evidence `prompt.txt` and `judge_calls.json` (every call:
raw reply, latency, usage, attempt, error). An item the judge could not score — no Overall Score
in any reply within the budget, an unreachable judge, a rejected request — is `failed` with the
reason: it is *unjudgeable*, which aggregation reports both excluded (the original's treatment) and
as zero.

Like the original, an answer with nothing renderable is still judged, on its text alone (the
original simply attaches no image when extraction or rendering failed); the record marks it
`text_only` with the reason, and `accepts_failed_upstream` makes a failed render go the same way.
"""

from __future__ import annotations

from typing import Any

from proctor_jobs.benchmarks.base import StageContext
from proctor_jobs.judge import artifactsbench_prompt as P
from proctor_jobs.judge.base import JudgeProcessor
from proctor_jobs.judge.client import Unparseable
from proctor_jobs.judge.images import ImageRejected, image_part, text_part
from proctor_jobs.judge.tokens import truncate
from proctor_jobs.records import ItemRecord, failed, ok

REPLY_KEEP_CHARS = 20_000


def _parse(reply: str) -> tuple[float, str]:
    parsed = P.parse_score(P.strip_reply(reply))
    if parsed is None:
        raise Unparseable('no "Overall Score" in the reply')
    return parsed


def screenshots_to_send(upstream: ItemRecord | None, limit: int | None) -> tuple[list[str], str | None]:
    """The screenshots to send (at most `limit`), or none and why the item is judged on text alone.
    Pure: the cost estimate made once renders are known counts with it too."""
    if upstream is None:
        return [], "no render record"
    if upstream.status != "ok":
        return [], f"render {upstream.status}: {upstream.reason or 'no reason given'}"
    extraction = upstream.data.get("extraction") or {}
    keys = list(upstream.data.get("screenshots") or [])
    if extraction.get("kind") == "none":
        return [], f"nothing renderable: {extraction.get('reason') or 'no HTML or SVG found'}"
    if not keys:
        return [], "the render produced no screenshots"
    if limit is not None:
        keys = keys[:limit]
    return keys, None


class ArtifactsBenchJudge(JudgeProcessor):
    accepts_failed_upstream = True  # judged on its text, as the original does

    def screenshot_keys(self, upstream: ItemRecord | None) -> tuple[list[str], str | None]:
        return screenshots_to_send(upstream, self.config.screenshots)

    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        keys, text_only_reason = self.screenshot_keys(upstream)
        prompt = P.build_prompt(
            item.get("checklist"), P.question_text(item), P.answer_text(item.get("answer"))
        )
        prompt, truncation = truncate(prompt, self.config.max_prompt_tokens, self.config.tokenizer)
        content = [text_part(prompt)]
        image_options = self.config.image if self.config.images_transformed else None
        image_notes: list[str] = []
        sizes: list[tuple[int, int]] = []
        rejected: dict[str, str] = {}
        for key in keys:
            try:
                content.append(image_part(await self.load(ctx, key), image_options, image_notes, sizes))
            except ImageRejected as exc:  # a decompression bomb: recorded, never decoded or sent
                rejected[key] = str(exc)
        if rejected:
            keys = [k for k in keys if k not in rejected]
            if not keys:
                text_only_reason = f"every screenshot was rejected: {next(iter(rejected.values()))}"
        messages: list[dict[str, Any]] = []
        if self.config.system_message:
            messages.append({"role": "system", "content": P.SYSTEM_MESSAGE})
        messages.append({"role": "user", "content": content})

        completion = await self.client.complete(messages, parse=_parse, **self.sampling)
        evidence = {
            "prompt": await self.save_text(ctx, item["id"], "prompt.txt", prompt),
            "judge_calls": await self.save_calls(ctx, item["id"], completion),
        }
        reply = P.strip_reply(completion.text) if completion.text is not None else None
        data: dict[str, Any] = {
            **self.call_summary(completion),
            **self.sent(ctx, completion, messages, sizes),
            "judgeable": completion.ok,
            "text_only": not keys,
            "text_only_reason": text_only_reason,
            "screenshots_sent": len(keys),
            "screenshots": keys,
            "extraction_kind": ((upstream.data.get("extraction") or {}).get("kind") if upstream else None),
            "truncation": truncation.to_dict(),
            "images_transformed": image_options is not None,
            "image_notes": image_notes,
            "images_rejected": rejected,
            "reply": reply[:REPLY_KEEP_CHARS] if reply is not None else None,
        }
        if not completion.ok:
            return failed(
                item["id"], self.stage, f"unjudgeable: {completion.error}", data=data, evidence=evidence
            )
        score, raw = completion.parsed
        data["score_text"] = raw
        data["judge_reason"] = P.reason_text(reply)[:4000]
        reason = data["judge_reason"][:300] or None
        return ok(item["id"], self.stage, score=score, reason=reason, data=data, evidence=evidence)
