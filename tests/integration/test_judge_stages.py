"""The ArtifactsBench and Vision2Code judge stages and candidate generation, against the judge test double.

Processors are driven directly with synthetic render records in a filesystem store, exactly as the
worker drives them (start, process, stop).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from proctor_jobs.benchmarks.base import StageContext
from proctor_jobs.generate import GenerateProcessor
from proctor_jobs.judge import judge_stage_config
from proctor_jobs.judge.artifactsbench import ArtifactsBenchJudge
from proctor_jobs.judge.artifactsbench_prompt import ANSWER_END, ANSWER_START
from proctor_jobs.judge.limits import forget_endpoints
from proctor_jobs.judge.vision2code import Vision2CodeJudge
from proctor_jobs.layout import RunLayout
from proctor_jobs.manifest import ShardManifest
from proctor_jobs.records import failed, ok
from proctor_jobs.store.fs import FilesystemStore
from tests.doubles.judge_server import expected_artifactsbench_score, image_similarity_score

RUN = "runs/default/judge-test/u1"


@pytest.fixture(autouse=True)
def fresh_endpoints():
    forget_endpoints()
    yield
    forget_endpoints()


def png(color="navy", size=(320, 200), blank=False) -> bytes:
    image = Image.new("RGB", size, "white")
    if not blank:
        draw = ImageDraw.Draw(image)
        draw.rectangle([30, 30, 200, 150], fill=color)
        draw.ellipse([210, 40, 300, 130], outline="black", width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def context(tmp_path: Path, stage: str) -> StageContext:
    store = FilesystemStore(tmp_path / "store")
    manifest = ShardManifest(RUN, "artifactsbench", stage, 0, 1, [])
    return StageContext(store, RunLayout(RUN), manifest, tmp_path)


async def drive(processor, ctx, pairs):
    await processor.start(ctx)
    try:
        return await asyncio.gather(*(processor.process(item, up, ctx) for item, up in pairs))
    finally:
        await processor.stop()


def ab_item(i, answer):
    return {
        "id": f"ab{i}",
        "index": i,
        "question": f"Build page {i}",
        "checklist": [{"id": 0, "title": "Works", "description": "d", "maxScore": 10}],
        "class": "Web Applications-Communication",
        "difficulty": "easy",
        "answer": answer,
    }


def ab_render(ctx, item_id, shots=3, kind="html"):
    keys = []
    for n in range(shots):
        key = f"cache/render/{item_id}/screenshot_{n}.png"
        ctx.store.put_bytes(key, png(color=("navy", "teal", "maroon")[n % 3]))
        keys.append(key)
    return ok(
        item_id, "render", data={"extraction": {"kind": kind, "reason": "found html"}, "screenshots": keys}
    )


def ab_judge(url, **judge):
    return ArtifactsBenchJudge(judge_stage_config("artifactsbench", {"judge": {"url": url, **judge}}))


def answer_section(prompt: str) -> str:
    return prompt.split(ANSWER_START, 1)[1].rsplit(ANSWER_END, 1)[0].strip()


def test_artifactsbench_judge_sends_the_prompt_then_the_screenshots_in_order(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = ab_item(1, "<think>hmm</think>```html\n<html><body>[[score:73]]</body></html>\n```")
    render = ab_render(ctx, "ab1")
    (rec,) = asyncio.run(drive(ab_judge(double.url), ctx, [(item, render)]))
    assert rec.status == "ok" and rec.score == 73.0
    (request,) = double.requests
    assert request["roles"] == ["user"] and request["images"] == 3
    sent = [ctx.store.get_bytes(k) for k in render.data["screenshots"]]
    assert request["image_bytes"] == [len(b) for b in sent]  # unchanged, in order (faithful)
    assert request["temperature"] == 0.7 and request["max_tokens"] is None
    assert "<think>" not in request["text"] and "[[score:73]]" in request["text"]
    assert "'maxScore': 10" in request["text"]
    assert rec.data["screenshots_sent"] == 3 and rec.data["text_only"] is False
    assert rec.data["score_text"] == "73" and rec.reason
    calls = json.loads(ctx.store.get_bytes(rec.evidence["judge_calls"]))
    assert calls[0]["outcome"] == "ok" and calls[0]["usage"]["total_tokens"] > 0
    assert ctx.store.get_text(rec.evidence["prompt"]) == request["text"]


def test_nothing_renderable_is_judged_on_text_and_marked(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = ab_item(2, "I cannot write code, sorry.")
    none = ok(
        "ab2", "render", data={"extraction": {"kind": "none", "reason": "no HTML or SVG"}, "screenshots": []}
    )
    crashed = failed("ab3", "render", "browser crashed")
    recs = asyncio.run(drive(ab_judge(double.url), ctx, [(item, none), ({**item, "id": "ab3"}, crashed)]))
    for rec in recs:
        assert rec.status == "ok" and rec.data["text_only"] is True
    assert "no HTML or SVG" in recs[0].data["text_only_reason"]
    assert "browser crashed" in recs[1].data["text_only_reason"]
    assert [r["images"] for r in double.requests] == [0, 0]
    assert ctx.metrics.counters["judge_images"] == {"sent": 0.0}  # text parts are not images
    assert recs[0].score == expected_artifactsbench_score(answer_section(double.requests[0]["text"]))


def test_screenshot_count_and_system_message_options(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    judge = ab_judge(double.url, screenshots=1, systemMessage=True, temperature=0.0)
    asyncio.run(drive(judge, ctx, [(ab_item(4, "<html>[[score:10]]</html>"), ab_render(ctx, "ab4"))]))
    (request,) = double.requests
    assert request["roles"] == ["system", "user"] and request["images"] == 1 and request["temperature"] == 0.0


def test_unjudgeable_item_is_failed_with_every_call_logged(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = ab_item(5, "<html>[[reply:garbage]]</html>")
    (rec,) = asyncio.run(
        drive(ab_judge(double.url, backoffSeconds=0.01), ctx, [(item, ab_render(ctx, "ab5"))])
    )
    assert rec.status == "failed" and rec.reason.startswith("unjudgeable")
    assert rec.data["judgeable"] is False and rec.data["calls"] == 3 and rec.data["reply"]
    # The operator's metrics see every request, by outcome, and its latency.
    assert ctx.metrics.counters["judge_requests"] == {"unparseable": 3.0}
    # cost per judged item, as summary.json counts it: two retries, the three screenshots once
    assert ctx.metrics.counters["judge_retried_calls"] == {"": 2.0}
    assert ctx.metrics.counters["judge_images"] == {"sent": 3.0}
    assert sum(ctx.metrics.histograms["judge_request_seconds"].values()) == 3
    # and the tokens each reply's usage reported, including the replies that could not be parsed
    usage = [call["usage"] for call in json.loads(ctx.store.get_bytes(rec.evidence["judge_calls"]))]
    assert ctx.metrics.counters["judge_tokens"]["prompt"] == sum(u["prompt_tokens"] for u in usage) > 0
    assert len(json.loads(ctx.store.get_bytes(rec.evidence["judge_calls"]))) == 3
    assert len(double.requests) == 3


def test_long_prompts_are_cut_to_the_budget(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = ab_item(6, "<html>" + "x" * 200_000 + "</html>")
    (rec,) = asyncio.run(drive(ab_judge(double.url), ctx, [(item, ab_render(ctx, "ab6", shots=1))]))
    assert rec.status == "ok"
    assert rec.data["truncation"]["truncated"] and rec.data["truncation"]["method"] == "chars"
    assert double.requests[0]["text_chars"] == 27000 * 3


def test_strict_profile_may_shrink_images(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    judge = ab_judge(double.url, profile="strict", imageMaxSide=100, imageFormat="jpeg")
    noisy = io.BytesIO()
    Image.frombytes("RGB", (640, 400), bytes(range(256)) * 3000).save(noisy, format="PNG")
    ctx.store.put_bytes("cache/render/ab7/shot.png", noisy.getvalue())
    render = ok(
        "ab7", "render", data={"extraction": {"kind": "html"}, "screenshots": ["cache/render/ab7/shot.png"]}
    )
    (rec,) = asyncio.run(drive(judge, ctx, [(ab_item(7, "<html>[[score:5]]</html>"), render)]))
    assert rec.data["images_transformed"] is True
    assert double.requests[0]["seed"] == 0 and double.requests[0]["temperature"] == 0.0
    original = len(ctx.store.get_bytes(rec.data["screenshots"][0]))
    assert double.requests[0]["image_bytes"][0] < original


# --- Vision2Code ------------------------------------------------------------------------------


def v2c_item(item_id, reference: bytes, dataset="ChartQA", **extra):
    return {
        "id": item_id,
        "sample_id": f"{dataset}:{item_id}",
        "source_dataset": dataset,
        "category": "Charts&Plots",
        "reference_image": base64.b64encode(reference).decode(),
        "reference_size": [320, 200],
        "answer": "```python\nprint(1)\n```",
        "renderer": "python",
        **extra,
    }


def v2c_render(ctx, item_id, image: bytes | None, failure=None):
    evidence = {}
    if image is not None:
        evidence["image"] = f"runs/x/render/evidence/{item_id}/image.png"
        ctx.store.put_bytes(evidence["image"], image)
    return ok(
        item_id, "render", data={"failure": failure, "similarity": 0.8, "code": "print(1)"}, evidence=evidence
    )


def v2c_judge(url, **judge):
    return Vision2CodeJudge(judge_stage_config("vision2code", {"judge": {"url": url, **judge}}))


def test_vision2code_judge_rates_reference_against_candidate(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    reference, candidate = png("navy"), png("teal")
    (rec,) = asyncio.run(
        drive(v2c_judge(double.url), ctx, [(v2c_item("v1", reference), v2c_render(ctx, "v1", candidate))])
    )
    (request,) = double.requests
    assert request["roles"] == ["system", "user"] and request["images"] == 2
    assert request["temperature"] == 0.0 and request["max_tokens"] == 2200
    assert request["text"].index("Reference image:") < request["text"].index("Candidate rendered image:")
    assert "numeric_information_fidelity (weight 0.30)" in request["text"]
    assert '"answer"' not in request["text"]  # the code is not reference metadata
    expected = image_similarity_score(reference, candidate)
    assert rec.status == "ok" and rec.data["rubric_dataset"] == "ChartQA"
    assert all(c["score_0_to_5"] == expected for c in rec.data["category_scores"].values())
    assert rec.score == rec.data["final_rating_0_to_5"]


def test_identical_images_score_top_and_blank_is_capped(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    reference = png("navy")
    pairs = [
        (v2c_item("same", reference), v2c_render(ctx, "same", reference)),
        (v2c_item("blank", reference, question="[[v2c:4.0]]"), v2c_render(ctx, "blank", png(blank=True))),
    ]
    same, blank = asyncio.run(drive(v2c_judge(double.url), ctx, pairs))
    assert same.score == 5.0 and same.data["applied_caps"] == []
    assert blank.score == 0.5
    assert "blank_or_degenerate" in [c["type"] for c in blank.data["applied_caps"]]


def test_render_failure_scores_zero_without_asking(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = v2c_item("f1", png())
    (rec,) = asyncio.run(
        drive(v2c_judge(double.url), ctx, [(item, v2c_render(ctx, "f1", None, failure="timeout"))])
    )
    assert rec.status == "ok" and rec.score == 0.0 and rec.data["execution_detail"] == "timeout"
    assert double.requests == []


def test_invalid_reply_gets_one_repair_request(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = v2c_item("g1", png(), question="[[reply:garbage]]")
    judge = v2c_judge(double.url, backoffSeconds=0.01)
    (rec,) = asyncio.run(drive(judge, ctx, [(item, v2c_render(ctx, "g1", png("teal")))]))
    assert rec.status == "failed" and rec.reason.startswith("unrated")
    roles = [r["roles"] for r in double.requests]
    assert roles == [["system", "user"], ["system", "user", "assistant", "user"], ["system", "user"]]
    assert "Your previous evaluation could not be used" in double.requests[1]["text"]


def test_fenced_reply_with_thinking_is_accepted(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = v2c_item("h1", png(), question="[[v2c:3.0]] [[reply:fenced]]")
    (rec,) = asyncio.run(drive(v2c_judge(double.url), ctx, [(item, v2c_render(ctx, "h1", png("teal")))]))
    assert rec.status == "ok" and rec.data["calls"] == 1
    assert rec.score == 3.0


def test_generic_rubric_option(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = v2c_item("k1", png(), question="[[v2c:1.0]]")
    (rec,) = asyncio.run(
        drive(v2c_judge(double.url, rubric="generic"), ctx, [(item, v2c_render(ctx, "k1", png()))])
    )
    assert rec.data["rubric_dataset"] == "generic" and rec.score == 1.0  # no caps in the generic rubric
    assert "core_information_fidelity (weight 0.25)" in double.requests[0]["text"]


# --- candidate generation -----------------------------------------------------------------------


def generate(url, benchmark, **candidate):
    return GenerateProcessor(
        {"benchmark": benchmark, "candidate": {"url": url, "model": "judge-double", **candidate}}
    )


def test_artifactsbench_generation_sends_the_question_alone(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "generate")
    item = {**ab_item(1, ""), "answer": ""}
    (rec,) = asyncio.run(drive(generate(double.url, "artifactsbench"), ctx, [(item, None)]))
    assert rec.status == "ok" and "<html>" in rec.data["answer"]
    (request,) = double.requests
    assert (
        request["roles"] == ["user"] and request["text"] == "Build page 1" and request["temperature"] == 0.0
    )


def test_vision2code_generation_sends_system_prompt_and_image(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "generate")
    item = v2c_item("g1", png(), answer="")
    (rec,) = asyncio.run(drive(generate(double.url, "vision2code", samples=4), ctx, [(item, None)]))
    assert rec.status == "ok" and "savefig(OUTPUT_PATH)" in rec.data["answer"]
    (request,) = double.requests
    assert request["roles"] == ["system", "user"] and request["images"] == 1
    assert "OUTPUT_PATH" in request["text"] and "320x200" in request["text"]
    assert request["temperature"] == 0.8 and request["max_tokens"] == 8192  # several samples: sampled


def test_humanevalv_generation_sends_image_then_code_context(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "generate")
    signature = "def solution(grid: list) -> int:\n    ..."
    item = {
        "id": "q1/0",
        "qid": "q1",
        "sample": 0,
        "prediction": "",
        "function_signature": signature,
        "diagram": base64.b64encode(png()).decode(),
    }
    (rec,) = asyncio.run(drive(generate(double.url, "humanevalv"), ctx, [(item, None)]))
    assert rec.data["answer"].startswith("```python\ndef solution")
    (request,) = double.requests
    assert request["images"] == 1 and f"```python\n{signature}\n```" in request["text"]
    assert request["max_tokens"] == 2048


def test_generation_failure_is_a_failed_record(judge_double, tmp_path):
    double = judge_double(fail_rate=1.0, fail_kinds=["500"])
    ctx = context(tmp_path, "generate")
    (rec,) = asyncio.run(
        drive(generate(double.url, "artifactsbench", backoffSeconds=0.01), ctx, [(ab_item(9, ""), None)])
    )
    assert rec.status == "failed" and "no answer from the candidate" in rec.reason
    assert rec.data["charged_calls"] == 3


def test_oversized_and_bomb_images_are_bounded_or_rejected_never_crash(judge_double, tmp_path):
    """Attack: screenshots an answer made huge (a 20 MP page) or a decompression bomb (a PNG header
    announcing 30000x7000). The big one is downscaled within the budget, the bomb is recorded and not
    sent; a Vision2Code candidate that is a bomb is a render failure, rated without asking."""
    from proctor_jobs.judge.images import MAX_BYTES, MAX_PIXELS
    from tests.unit.test_judge_image_bounds import bomb_png

    double = judge_double()
    ctx = context(tmp_path, "judge")
    render = ab_render(ctx, "ab9", shots=1)
    big = Image.linear_gradient("L").resize((5000, 4000)).convert("RGB")
    out = io.BytesIO()
    big.save(out, format="PNG")
    for name, body in (("big", out.getvalue()), ("bomb", bomb_png(30000, 7000))):
        key = f"cache/render/ab9/{name}.png"
        ctx.store.put_bytes(key, body)
        render.data["screenshots"].append(key)
    item = ab_item(9, "```html\n<html><body>[[score:40]]</body></html>\n```")
    (rec,) = asyncio.run(drive(ab_judge(double.url), ctx, [(item, render)]))
    assert rec.status == "ok" and rec.score == 40.0
    (request,) = double.requests
    assert request["images"] == 2 and max(request["image_bytes"]) <= MAX_BYTES
    assert list(rec.data["images_rejected"]) == ["cache/render/ab9/bomb.png"]
    assert "5000x4000" in rec.data["image_notes"][0] and rec.data["screenshots_sent"] == 2
    sent = rec.data["image_notes"][0].split(" sent as ")[1].split(",")[0]
    width, height = (int(v) for v in sent.split("x"))
    assert width * height <= MAX_PIXELS

    v2c = v2c_item("v9", png())
    (rated,) = asyncio.run(
        drive(v2c_judge(double.url), ctx, [(v2c, v2c_render(ctx, "v9", bomb_png(30000, 7000)))])
    )
    assert rated.status == "ok" and rated.score == 0.0 and "candidate image rejected" in rated.reason
    assert len(double.requests) == 1  # the Vision2Code item asked nothing


def test_without_usage_the_tokens_are_estimated_apart_and_match_an_honest_count(judge_double, tmp_path):
    double = judge_double()
    ctx = context(tmp_path, "judge")
    item = ab_item(7, "```html\n<html><body>[[score:40]] a page</body></html>\n```")
    render = ab_render(ctx, "ab7")
    (reported,) = asyncio.run(drive(ab_judge(double.url), ctx, [(item, render)]))
    assert reported.data["images_sent"] == 3 and reported.data["image_pixels"] == 3 * 320 * 200
    assert reported.data["answered_calls"] == 1 and "usage_estimated" not in reported.data
    double.configure(usage=False)  # a server that leaves `usage` out
    (unreported,) = asyncio.run(drive(ab_judge(double.url), ctx, [(item, render)]))
    assert unreported.data["usage"] == {}  # nothing is put where reported counts go
    estimated = unreported.data["usage_estimated"]
    assert estimated["method"] == "chars" and estimated["calls"] == 1
    # counted on our side, it is what the server counts for the same request
    assert estimated["prompt_tokens"] == reported.data["usage"]["prompt_tokens"]
    assert estimated["completion_tokens"] == reported.data["usage"]["completion_tokens"]
