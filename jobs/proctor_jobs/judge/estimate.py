"""The judge request an item will make, built before anything is rendered or called: the same prompt
templates the judge stages fill, and the images at the size the render stage will produce. Used by
`proctor run --estimate` and by the estimate `summary.json` keeps beside the actual cost.

What cannot be known before the run is assumed, and said so in the estimate:
- ArtifactsBench: every screenshot at the viewport's size (a full-page screenshot of a taller page is
  taller), and an answer with nothing renderable (extraction finds no HTML/SVG) judged on text alone;
- Vision2Code: the candidate renders at the reference's size (as the renderer is asked to) and every
  item reaches the judge (a render that fails is rated 0 without a call, so the actual is lower);
- one call per item (retries add to the actual), and a reply of REPLY_TOKENS (or `maxTokens`);
- with a candidate model (`spec.candidate`) the answers do not exist yet: the prompt is estimated
  without them, and every answer is assumed to render.

Once the renders are known (`rendered`: the render stage's records), the estimate is the judge's bill
before it is paid: which items reach the judge and how many screenshots each sends are read from the
records, with the same pure functions the judge stages decide by; tokens per call and reply length
are still estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proctor_jobs.judge.config import JudgeConfig
from proctor_jobs.judge.images import text_part
from proctor_jobs.judge.usage import method, prompt_tokens
from proctor_jobs.records import ItemRecord

#: a typical reply of each benchmark's judge, in tokens: ArtifactsBench's judges walk the checklist
#: item by item before the score; Vision2Code's rater returns a JSON object with per-category rationales
REPLY_TOKENS = {"artifactsbench": 1000, "vision2code": 600}
DEFAULT_REPLY_TOKENS = 500


def artifactsbench_request(
    item: dict[str, Any],
    judge: JudgeConfig,
    render: dict[str, Any] | None,
    rendered: Mapping[str, ItemRecord] | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    from proctor_jobs.judge import artifactsbench_prompt as P
    from proctor_jobs.judge.tokens import truncate
    from proctor_jobs.render.extract import extract

    prompt = P.build_prompt(item.get("checklist"), P.question_text(item), P.answer_text(item.get("answer")))
    prompt, _ = truncate(prompt, judge.max_prompt_tokens, judge.tokenizer)
    messages: list[dict[str, Any]] = []
    if judge.system_message:
        messages.append({"role": "system", "content": P.SYSTEM_MESSAGE})
    messages.append({"role": "user", "content": [text_part(prompt)]})
    render = render or {}
    answer = item.get("answer")
    if rendered is not None:
        from proctor_jobs.judge.artifactsbench import screenshots_to_send

        count = len(screenshots_to_send(rendered.get(item["id"]), judge.screenshots)[0])
    # (no answer yet: a candidate model will write it, and it is assumed to render)
    elif answer is not None and extract(answer, render.get("profile", "fixed")).kind == "none":
        return messages, []  # judged on its text alone, as the stage does
    else:
        count = int(render.get("screenshots", 3))
        if judge.screenshots is not None:
            count = min(count, judge.screenshots)
    viewport = render.get("viewport") or {}
    size = _sent_size(int(viewport.get("width", 1280)), int(viewport.get("height", 720)), judge)
    return messages, [size] * count


def vision2code_request(
    item: dict[str, Any], judge: JudgeConfig
) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    from proctor_jobs.judge import vision2code_rating as R
    from proctor_jobs.judge.vision2code import reference_metadata
    from proctor_jobs.judge.vision2code_rubrics import resolve_dataset

    dataset = resolve_dataset(item.get("source_dataset"), item.get("sample_id"), item.get("question_folder"))
    rubric, version = R.rubric_for(dataset, generic=judge.rubric == "generic")
    source = str(item.get("source_dataset") or dataset or "")
    messages = [
        {"role": "system", "content": R.system_prompt(rubric is R.GENERIC_RUBRIC)},
        {
            "role": "user",
            "content": [
                text_part("Reference image:"),
                text_part("Candidate rendered image:"),
                text_part(R.rater_text(rubric, version, source, reference_metadata(item))),
            ],
        },
    ]
    width, height = (item.get("reference_size") or [1000, 600])[:2]
    size = _sent_size(int(width), int(height), judge)
    return messages, [size, size]  # the reference, and the candidate rendered at its size


def _sent_size(width: int, height: int, judge: JudgeConfig) -> tuple[int, int]:
    side = judge.image.max_side if judge.images_transformed else None
    if side and max(width, height) > side:
        scale = side / max(width, height)
        return max(1, int(width * scale)), max(1, int(height * scale))
    return width, height


def judge_estimate(
    benchmark: str,
    judge_config: dict[str, Any],
    items: list[dict[str, Any]],
    render: dict[str, Any] | None,
    rendered: Mapping[str, ItemRecord] | None = None,
) -> dict[str, Any]:
    """A judge stage's expected calls, tokens and images over `items`: one call per item, or, with
    the render records (`rendered`, by item id), one per item that will reach the judge."""
    judge = JudgeConfig.from_dict(judge_config)
    reply = REPLY_TOKENS.get(benchmark, DEFAULT_REPLY_TOKENS)
    if judge.max_tokens:
        reply = min(reply, judge.max_tokens)
    if benchmark == "vision2code" and rendered is not None:
        from proctor_jobs.judge.vision2code import render_failure
    prompt = images = pixels = calls = 0
    for item in items:
        if benchmark == "artifactsbench":
            messages, sizes = artifactsbench_request(item, judge, render, rendered)
        elif benchmark == "vision2code":
            if rendered is not None and render_failure(rendered.get(item["id"])):
                continue  # rated 0 without a call, as the stage does
            messages, sizes = vision2code_request(item, judge)
        else:
            raise ValueError(f"no judge request estimate for benchmark {benchmark!r}")
        calls += 1
        prompt += prompt_tokens(messages, sizes, judge.tokenizer)
        images += len(sizes)
        pixels += sum(w * h for w, h in sizes)
    return {
        "items": len(items),
        "calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": reply * calls,
        "images": images,
        "image_pixels": pixels,
        "prompt_tokens_per_call": round(prompt / calls) if calls else 0,
        "method": method(judge.tokenizer),
        "renders": "assumed" if rendered is None else "known",
    }
