"""The Vision2Code judge stage: reference image + candidate render + rubric in, a 0-5 rating out.

Input: the item (`sample_id`, `source_dataset`, `reference_image` (base64) or `reference_key`, ...)
and its render record (`data.failure`, `evidence.image`). A sample whose code failed to render
(`data.failure` set, or no image) is rated 0 without a call, as the original does. Otherwise the
rater is asked once (temperature 0, 2,200 max tokens by default), a reply that does not validate
gets one repair call quoting it, and the budget (`maxAttempts`, default 3) bounds the total. The
record's `score` is the final rating; `data` is the rating in the original's `rating__*.json`
form plus the call summary; evidence holds the prompt and every call. A sample the rater never
answered usably is `failed` (unrated), with the reason.
"""

from __future__ import annotations

from typing import Any

from proctor_jobs.benchmarks.base import StageContext
from proctor_jobs.judge import vision2code_rating as R
from proctor_jobs.judge.base import JudgeProcessor
from proctor_jobs.judge.client import Unparseable
from proctor_jobs.judge.images import ImageRejected, decode_base64_image, image_part, text_part
from proctor_jobs.judge.vision2code_rubrics import resolve_dataset
from proctor_jobs.records import ItemRecord, failed, ok
from proctor_jobs.render.images import inspect_candidate

# Heavy or private fields that are not "reference metadata" for the rater.
_NOT_METADATA = {"id", "answer", "reference_image", "reference_key", "renderer", "generated", "code"}


def render_failure(upstream: ItemRecord | None) -> str | None:
    """Why a sample is rated 0 without a call (its render failed or drew no image), else None. Pure:
    the cost estimate made once renders are known counts with it too."""
    if upstream is None:
        return "no_output_image"
    return upstream.data.get("failure") or (None if upstream.evidence.get("image") else "no_output_image")


def reference_metadata(item: dict[str, Any]) -> dict[str, Any]:
    if isinstance(item.get("metadata"), dict):
        return dict(item["metadata"])
    return {k: v for k, v in item.items() if k not in _NOT_METADATA}


class Vision2CodeJudge(JudgeProcessor):
    def rubric(self, item: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
        dataset = resolve_dataset(
            item.get("source_dataset"), item.get("sample_id"), item.get("question_folder")
        )
        rubric, version = R.rubric_for(dataset, generic=self.config.rubric == "generic")
        return rubric, version, dataset

    async def reference_bytes(self, item: dict[str, Any], ctx: StageContext) -> bytes:
        if item.get("reference_image"):
            return decode_base64_image(item["reference_image"])
        if item.get("reference_key"):
            return await self.load(ctx, item["reference_key"])
        raise ValueError("the item has neither reference_image nor reference_key")

    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        rubric, version, dataset = self.rubric(item)
        source = str(item.get("source_dataset") or dataset or "")
        render = upstream.data if upstream is not None else {}
        candidate_key = (upstream.evidence.get("image") if upstream is not None else None) or ""
        reference_key = item.get("reference_key") or ""
        base = {"rubric_resolved_from": dataset, "similarity": render.get("similarity")}

        detail = render_failure(upstream)
        if detail:
            result = R.render_failure_rating(
                rubric, version, detail, inspect_candidate(None), reference_key, candidate_key, source
            )
            data = {**result, **base, "calls": 0}
            return ok(item["id"], self.stage, score=0.0, reason=f"render failed: {detail}", data=data)

        candidate = await self.load(ctx, candidate_key)
        reference = await self.reference_bytes(item, ctx)
        inspection = inspect_candidate(candidate)
        prompt = R.rater_text(rubric, version, source, reference_metadata(item))
        image_options = self.config.image if self.config.images_transformed else None
        image_notes: list[str] = []
        sizes: list[tuple[int, int]] = []  # as sent: the reference's, then the candidate's
        candidate_size: list[tuple[int, int]] = []
        try:
            candidate_part = image_part(candidate, image_options, image_notes, candidate_size)
        except ImageRejected as exc:  # a decompression bomb: a render failure, never decoded or sent
            detail = f"candidate image rejected: {exc}"
            result = R.render_failure_rating(
                rubric, version, detail, inspection, reference_key, candidate_key, source
            )
            data = {**result, **base, "calls": 0, "image_rejected": str(exc)}
            return ok(item["id"], self.stage, score=0.0, reason=f"render failed: {detail}", data=data)
        messages = [
            {"role": "system", "content": R.system_prompt(rubric is R.GENERIC_RUBRIC)},
            {
                "role": "user",
                "content": [
                    text_part("Reference image:"),
                    image_part(reference, image_options, image_notes, sizes),
                    text_part("Candidate rendered image:"),
                    candidate_part,
                    text_part(prompt),
                ],
            },
        ]

        sizes += candidate_size
        if image_notes:
            base["image_notes"] = image_notes

        def parse(reply: str) -> dict[str, Any]:
            try:
                parsed = R.parse_json_object(reply)
                return R.rating(parsed, rubric, version, inspection, reference_key, candidate_key, source)
            except ValueError as exc:
                raise Unparseable(str(exc)) from None

        def repair(original: list[dict[str, Any]], reply: str, error: Exception) -> list[dict[str, Any]]:
            return [
                *original,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": R.repair_text(rubric, reply, str(error))},
            ]

        completion = await self.client.complete(messages, parse=parse, repair=repair, **self.sampling)
        evidence = {
            "prompt": await self.save_text(
                ctx, item["id"], "prompt.txt", messages[0]["content"] + "\n\n" + prompt
            ),
            "judge_calls": await self.save_calls(ctx, item["id"], completion),
        }
        summary = {**self.call_summary(completion), **self.sent(ctx, completion, messages, sizes)}
        if not completion.ok:
            data = {**base, **summary, "candidate_inspection": inspection, "reply": completion.text}
            return failed(
                item["id"], self.stage, f"unrated: {completion.error}", data=data, evidence=evidence
            )
        result = completion.parsed
        data = {**result, **base, **summary, "rater_model": summary["model"]}
        caps = [c["reason"] for c in result["applied_caps"] if c.get("changed_final_rating")]
        reason = result["overall_summary"] or "; ".join(caps) or None
        return ok(
            item["id"],
            self.stage,
            score=result["final_rating_0_to_5"],
            reason=reason,
            data=data,
            evidence=evidence,
        )
