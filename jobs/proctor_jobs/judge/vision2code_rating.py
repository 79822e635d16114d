"""Vision2Code ratings: the rater prompt, lenient JSON parsing, and the final rating with its caps.

Reproduces image2code/vision2code @ 84821d92 (image2code/evaluation/dataset_rubrics.py,
generic_rubric.py) in behaviour; the prompt prose is our own, its structure theirs:

- the rater sees a system turn (calibrated evaluator, 0-5 anchors, JSON only), then one user turn:
  "Reference image:", the reference, "Candidate rendered image:", the candidate, and the rubric
  text (version, dataset, guidance, notes, categories with weights, reference metadata, the five
  required keys and the rules);
- a reply is parsed leniently: a leading think block (only that one) and a surrounding code fence
  are removed, then the text is read as JSON, else its outermost `{...}`; a reply that fails
  validation gets one repair request that quotes it and the error;
- category scores must be numbers in 0-5 and are rounded to 0.1; the raw score is their weighted
  sum; caps are applied to the unrounded raw score (failed render 0, unreadable candidate 0,
  blank or degenerate candidate 0.5, the dataset's cap profile on its two critical categories,
  then the dataset's extra caps); the final rating is rounded to 0.1. The generic rubric has no
  caps beyond a failed render.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from proctor_jobs.judge.vision2code_rubrics import (
    DATASET_RUBRICS,
    GENERIC_RUBRIC,
    GENERIC_RUBRIC_VERSION,
    RUBRIC_VERSION,
)

SCORE_MIN, SCORE_MAX = 0.0, 5.0
RENDER_FAILED_SUMMARY = (
    "The generated code produced no usable rendered image, so the sample gets the minimum rating."
)

SYSTEM_PROMPT = (
    "You evaluate how well an image has been recreated, rigorously but with calibration.\n"
    "Compare the reference image with the candidate rendered image, and judge only what you can "
    "actually see in them.\n\n"
    "{rubric_sentence}\n"
    "Be strict when a recreation gets the meaning wrong, {leniency}.\n\n"
    "Score on a 0.0 to 5.0 scale with these anchors:\n"
    "- 5.0 = close to exact, or clearly excellent{for_dataset}\n"
    "- 4.0 = a strong recreation with minor problems\n"
    "- 3.0 = good, but with noticeable problems of structure, text or meaning\n"
    "- 2.0 = a partial recreation with important errors\n"
    "- 1.0 = a major mismatch\n"
    "- 0.0 = missing, unreadable, blank or fundamentally broken\n\n"
    "Reply with JSON only, without markdown fences.\n"
)


def system_prompt(generic: bool) -> str:
    if generic:
        return SYSTEM_PROMPT.format(
            rubric_sentence="Apply the rubric given in the user message; it is the same for every dataset.",
            leniency="but do not dwell on small cosmetic differences",
            for_dataset="",
        )
    return SYSTEM_PROMPT.format(
        rubric_sentence="Apply the dataset-specific rubric and instructions given in the user message.",
        leniency="but do not over-penalise differences the rubric says are secondary",
        for_dataset=" for that dataset",
    )


def rubric_for(dataset: str | None, generic: bool = False) -> tuple[dict[str, Any], str]:
    """(rubric, version): the dataset's own rubric, or the generic one when asked or unknown."""
    if generic or dataset not in DATASET_RUBRICS:
        return GENERIC_RUBRIC, GENERIC_RUBRIC_VERSION
    return DATASET_RUBRICS[dataset], RUBRIC_VERSION


def category_lines(rubric: dict[str, Any]) -> str:
    head = (
        "Rubric: generic image recreation baseline"
        if rubric is GENERIC_RUBRIC
        else f"Dataset: {rubric['dataset']}"
    )
    lines = [head]
    lines += [f"- {c['id']} (weight {c['weight']:.2f}): {c['description']}" for c in rubric["categories"]]
    return "\n".join(lines)


def rater_text(rubric: dict[str, Any], version: str, dataset_name: str, metadata: dict[str, Any]) -> str:
    generic = rubric is GENERIC_RUBRIC
    parts = ["Rate the candidate recreation against the reference image with the rubric below.\n"]
    parts.append(f"Rubric version: {version}")
    if generic:
        parts.append("Rubric dataset: generic")
        parts.append(f"Source dataset name, if known: {dataset_name}\n")
    else:
        notes = "\n".join(f"- {note}" for note in rubric.get("prompt_notes", []))
        parts.append(f"Rubric dataset: {rubric['dataset']}")
        parts.append(f"Scoring guidance: {rubric['guidance']}\n")
        parts.append(f"Notes for this dataset:\n{notes}\n")
    parts.append(f"Categories:\n{category_lines(rubric)}\n")
    parts.append(f"Reference metadata:\n{json.dumps(metadata, indent=2, ensure_ascii=False)}\n")
    parts.append(
        "Reply with JSON that has exactly these top-level keys:\n"
        '1) "category_scores"\n2) "rationales"\n3) "strengths"\n4) "issues"\n5) "overall_summary"\n'
    )
    rules = [
        "'category_scores' holds every category id above, each with a number from 0.0 to 5.0.",
        "Use steps of 0.1 where a whole number does not fit.",
        "'rationales' has the same keys, each with one short rationale.",
        "'strengths' is a short list of 1 to 3 points.",
        "'issues' is a short list of 1 to 5 points.",
        "'overall_summary' is 1 to 3 concise sentences.",
    ]
    if generic:
        rules.append("The same four generic categories apply to every dataset.")
    else:
        rules += [
            "Judge what matters under this dataset's rubric, not mere surface similarity.",
            "On easy datasets, the recreation must keep the structure, not only the meaning.",
            "On hard or noisy references, stay strict, but do not penalise differences the reference itself "
            "leaves ambiguous.",
            "Give 0.0 or 1.0 for severe failures.",
        ]
    rules.append("Do not work out the final 0.0 to 5.0 rating yourself; give the category scores only.")
    parts.append("Rules:\n" + "\n".join(f"- {rule}" for rule in rules))
    return "\n".join(parts) + "\n"


def repair_text(rubric: dict[str, Any], reply: str, error: str) -> str:
    ids = ", ".join(c["id"] for c in rubric["categories"])
    return (
        "Your previous evaluation could not be used.\n"
        f"Problem: {error}\n\n"
        "Reply again with corrected JSON only, with these top-level keys:\n"
        '  "category_scores", "rationales", "strengths", "issues", "overall_summary"\n'
        "'category_scores' must name every category id exactly once, each with a number from 0.0 to 5.0 "
        "(steps of 0.1 preferred).\n"
        f"The category ids: {ids}\n\n"
        f"Your previous reply:\n{reply}"
    )


# --- parsing --------------------------------------------------------------------------------

#: only a *leading* think block, as the original strips it; one later in the reply (inside a summary,
#: say) is the rater's text and stays
_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """The reply as a JSON object: a leading think block and a fence removed, else its outermost {...}."""
    cleaned = _THINK.sub("", text, count=1).strip()
    if cleaned.startswith("```"):
        lines = cleaned.splitlines()
        if len(lines) >= 3 and lines[-1].strip() == "```":
            cleaned = "\n".join(lines[1:-1]).strip()
    try:
        value = json.loads(cleaned)
        if isinstance(value, dict):
            return value
    except json.JSONDecodeError:
        start, end = cleaned.find("{"), cleaned.rfind("}")
        if 0 <= start < end:
            try:
                value = json.loads(cleaned[start : end + 1])
            except json.JSONDecodeError as exc:
                raise ValueError(f"the reply is not valid JSON: {exc.msg}") from None
            if isinstance(value, dict):
                return value
    raise ValueError("the reply is not a JSON object")


def round_tenth(value: float) -> float:
    return round(float(value) + 1e-8, 1)


def coerce_score(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"score for {key} is a boolean")
    if isinstance(value, int | float):
        score = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            score = float(value.strip())
        except ValueError:
            raise ValueError(f"score for {key} is not a number: {value!r}") from None
    else:
        raise ValueError(f"missing score for {key}")
    if not math.isfinite(score):
        raise ValueError(f"score for {key} is not finite: {value!r}")
    if not SCORE_MIN <= score <= SCORE_MAX:
        raise ValueError(f"score for {key} must be between 0.0 and 5.0 (got {score})")
    return round_tenth(score)


def category_results(parsed: dict[str, Any], rubric: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Validated per-category results and the raw (weighted, unrounded) score; ValueError if invalid."""
    scores = parsed.get("category_scores")
    if not isinstance(scores, dict):
        scores = parsed.get("subscores")
    rationales = parsed.get("rationales")
    if not isinstance(scores, dict):
        raise ValueError("the reply has no 'category_scores' object")
    if not isinstance(rationales, dict):
        raise ValueError("the reply has no 'rationales' object")
    results: dict[str, Any] = {}
    raw = 0.0
    generic = rubric is GENERIC_RUBRIC
    for index, category in enumerate(rubric["categories"]):
        cid = category["id"]
        score = coerce_score(scores.get(cid), cid)
        weighted = score * float(category["weight"])
        raw += weighted
        results[cid] = {
            "label": category["label"],
            "description": category["description"],
            "weight": category["weight"],
            "score_0_to_5": score,
            "weighted_score_0_to_5": round(weighted, 4),
            "rationale": str(rationales.get(cid, "")).strip(),
            "is_critical": (not generic) and index < 2,
        }
    return results, raw


# --- the rating ---------------------------------------------------------------------------------


def _condition_met(condition: dict[str, Any], results: dict[str, Any]) -> bool:
    cid = condition.get("id")
    if cid not in results:
        return False
    score = float(results[cid]["score_0_to_5"])
    if "min" in condition and score < float(condition["min"]) - 1e-8:
        return False
    return not ("max" in condition and score > float(condition["max"]) + 1e-8)


def apply_caps(
    raw: float, rubric: dict[str, Any], results: dict[str, Any], inspection: dict[str, Any]
) -> tuple[float, list[dict[str, Any]]]:
    """The final rating after every cap that applies, and the caps (in the original's order)."""
    final = raw
    applied: list[dict[str, Any]] = []

    def cap(to: float, reason: str, kind: str) -> None:
        nonlocal final
        before = final
        final = min(final, float(to))
        applied.append(
            {
                "type": kind,
                "cap_to": round_tenth(to),
                "reason": reason,
                "changed_final_rating": final < before - 1e-8,
            }
        )

    if not inspection.get("candidate_readable", False):
        cap(0.0, "Candidate image is missing or unreadable.", "candidate_missing_or_unreadable")
    if inspection.get("is_blank_or_degenerate"):
        checks = ", ".join(inspection.get("checks_triggered", [])) or "blank_or_degenerate"
        cap(0.5, f"Candidate image appears blank or degenerate: {checks}", "blank_or_degenerate")
    profile = rubric.get("cap_profile")
    if profile:
        critical = [float(results[c["id"]]["score_0_to_5"]) for c in rubric["categories"][:2]]
        if any(s <= profile["critical_any_threshold"] for s in critical):
            cap(
                profile["critical_any_cap"], "A critical category scored very low.", "critical_category_floor"
            )
        if len(critical) >= 2 and all(s <= profile["critical_pair_threshold"] for s in critical):
            cap(
                profile["critical_pair_cap"],
                "Both critical categories are weak enough to limit the rating.",
                "multiple_critical_weaknesses",
            )
        if raw >= profile["top_score_trigger"] and any(
            s < profile["top_score_min_critical"] for s in critical
        ):
            cap(
                profile["top_score_cap"],
                "A near-perfect rating needs both critical categories to be very strong.",
                "top_score_guardrail",
            )
        for extra in rubric.get("extra_caps", []):
            all_met = all(_condition_met(c, results) for c in extra.get("all_of", []))
            any_of = extra.get("any_of", [])
            any_met = not any_of or any(_condition_met(c, results) for c in any_of)
            if all_met and any_met:
                cap(extra["cap_to"], extra["reason"], extra["type"])
    return round_tenth(max(SCORE_MIN, min(SCORE_MAX, final))), applied


def rating(
    parsed: dict[str, Any],
    rubric: dict[str, Any],
    version: str,
    inspection: dict[str, Any],
    reference: str = "",
    candidate: str = "",
    source_dataset: str = "",
) -> dict[str, Any]:
    """The rating record in the original's format (`rating__<rater>.json`); ValueError if invalid."""
    results, raw = category_results(parsed, rubric)
    provisional = round_tenth(max(SCORE_MIN, min(SCORE_MAX, raw)))
    if rubric is GENERIC_RUBRIC:
        final, applied = provisional, []
    else:
        final, applied = apply_caps(raw, rubric, results, inspection)
    strengths = [str(s).strip() for s in parsed.get("strengths") or [] if str(s).strip()]
    issues = [str(s).strip() for s in parsed.get("issues") or [] if str(s).strip()]
    out = {
        "rubric_version": version,
        "rubric_dataset": rubric["dataset"],
        "status": "ok",
        "execution_status": "ok",
        "execution_detail": "",
        "execution_error_present": False,
        "reference_image_path": reference,
        "candidate_image_path": candidate,
        "candidate_inspection": inspection,
        "category_scores": results,
        "raw_score_0_to_5": round(raw, 4),
        "raw_visual_score_0_to_5": round(raw, 4),
        "provisional_rating_0_to_5": provisional,
        "applied_caps": applied,
        "final_rating_0_to_5": final,
        "strengths": strengths[:3],
        "issues": issues[:5],
        "overall_summary": str(parsed.get("overall_summary", "")).strip(),
    }
    if rubric is GENERIC_RUBRIC:
        out["source_dataset"] = source_dataset
    return out


def render_failure_rating(
    rubric: dict[str, Any],
    version: str,
    detail: str,
    inspection: dict[str, Any] | None = None,
    reference: str = "",
    candidate: str = "",
    source_dataset: str = "",
) -> dict[str, Any]:
    """The rating of a sample whose code produced no image: 0, without asking the rater."""
    generic = rubric is GENERIC_RUBRIC
    categories = {
        c["id"]: {
            "label": c["label"],
            "description": c["description"],
            "weight": c["weight"],
            "score_0_to_5": 0.0,
            "weighted_score_0_to_5": 0.0,
            "rationale": f"No candidate image: generation or rendering failed ({detail})",
            "is_critical": (not generic) and i < 2,
        }
        for i, c in enumerate(rubric["categories"])
    }
    caps = (
        []
        if generic
        else [
            {
                "type": "execution_failure",
                "cap_to": 0.0,
                "reason": f"Execution did not produce a valid render: {detail}",
                "changed_final_rating": True,
            }
        ]
    )
    out = {
        "rubric_version": version,
        "rubric_dataset": rubric["dataset"],
        "status": "render_failed",
        "execution_status": "render_failed",
        "execution_detail": detail,
        "execution_error_present": True,
        "reference_image_path": reference,
        "candidate_image_path": candidate,
        "candidate_inspection": inspection or {},
        "category_scores": categories,
        "raw_score_0_to_5": 0.0,
        "raw_visual_score_0_to_5": 0.0,
        "provisional_rating_0_to_5": 0.0,
        "applied_caps": caps,
        "final_rating_0_to_5": 0.0,
        "strengths": [],
        "issues": [f"Render failed before visual evaluation: {detail}"],
        "overall_summary": RENDER_FAILED_SUMMARY,
    }
    if generic:
        out["source_dataset"] = source_dataset
    return out
