"""The ArtifactsBench judge prompt and score parser.

The prompt has the structure and constraints of the original (Tencent-Hunyuan/ArtifactsBenchmark,
src/prompts/prompt_mllm_check.py), worded afresh: a strict senior reviewer of code and front-end
work; a role section (responsibilities, attitude, eye for design); a note that only the last
HTML/SVG segment was rendered and the page scrolled to capture it; the scoring criteria, which are
the task's checklist inserted as the original inserts it (the Python `str()` of the list, i.e. its
repr); the required output, a ```json block `{"Overall Score": "NN"}` followed by `Reason:`; and the
problem and the answer between their delimiter lines. One user message carries this text, then the
screenshots.

Scores are parsed exactly as the original's `extract_mllm_overall` (src/extract_ans.py): the last
match of `"Overall Score":\\s*(")?(\\d+(\\.\\d+)?|\\d+-\\d+)(")?`, else of the same pattern with the
Chinese key `"总体打分"`. A range such as `30-40` counts as its first number.
"""

from __future__ import annotations

import re
from typing import Any

PROBLEM_START = "--------Problem starts--------"
PROBLEM_END = "--------Problem ends--------"
ANSWER_START = "--------Answer starts--------"
ANSWER_END = "--------Answer ends--------"

_TEMPLATE = (
    "You are an experienced and exacting reviewer of code, with deep command of many programming "
    "languages, of front-end technology and of interaction design. You receive a [question] and an "
    "[answer], and your job is to analyse the [answer] thoroughly and score it. The [answer] can "
    "contain source code in any language, algorithms, data-structure or system-architecture designs, "
    "front-end visual code (HTML, SVG, JavaScript and the like), descriptions of interaction logic, "
    "and technical explanations. Bring both your engineering knowledge and your sense of visual "
    "design to bear: examine the [answer] along the dimensions below, then give scores together with "
    "detailed review comments. Be strict and careful before you give full marks on any dimension.\n\n"
    "Your role\n\n"
    "Responsibilities: serve as an authoritative member of a technical review panel, and keep your "
    "judgement objective, complete and fair.\n"
    "Attitude: rigorous, professional and unsparing; you notice small details and hidden risks.\n"
    "In addition: you have a refined aesthetic sense and set a high bar for visual appeal and user "
    "experience.\n\n"
    "Only the last HTML or SVG code segment in the answer was extracted and rendered for the "
    "screenshots, and the page was scrolled as needed so that the whole of it was captured.\n\n"
    "**Scoring Criteria:**\n\n"
    "{checklist}\n\n"
    "- Report the result as a JSON object covering the dimensions above, in exactly this form:\n"
    "```json\n"
    "{{\n"
    '  "Overall Score": "35"\n'
    "}}\n"
    "``` Reason:...\n\n"
    "Now score the following question against the criteria above:\n\n"
    f"{PROBLEM_START}\n"
    "{question}\n"
    f"{PROBLEM_END}\n\n"
    f"{ANSWER_START}\n"
    "{answer}\n"
    f"{ANSWER_END}\n"
)

# The system turn of the original's vLLM path (src/infer_qvl.py); its Gemini path sends none.
SYSTEM_MESSAGE = (
    "You are an AI assistant that solves people's problems by reasoning from first principles and "
    "from evidence. Work in sensible steps, explain what you are doing so that a person can follow, "
    "notice when an approach has run into a dead end and try another, and arrive at correct final "
    "answers."
)

SCORE_PATTERNS = (
    re.compile(r'"Overall Score":\s*(")?(\d+(\.\d+)?|\d+-\d+)(")?'),
    re.compile(r'"总体打分":\s*(")?(\d+(\.\d+)?|\d+-\d+)(")?'),
)


def answer_text(answer: str | None) -> str:
    """What the original shows the judge: the part after the last `</think>`, stripped."""
    return (answer or "").split("</think>")[-1].strip()


def question_text(item: dict[str, Any]) -> str:
    """The task text, from the first field the original looks at that is set."""
    for name in ("original_question", "question", "input", "prompt"):
        if item.get(name):
            return str(item[name])
    return ""


def build_prompt(checklist: Any, question: str, answer: str) -> str:
    # `str(checklist)` is what string.Template substitution inserts: a list's repr.
    return _TEMPLATE.format(checklist=str(checklist), question=question, answer=answer)


def strip_reply(reply: str) -> str:
    """A reasoning judge's reply without its thinking (the original's Gemini path does this)."""
    return reply.split("</think>")[-1].strip()


def parse_score(reply: str) -> tuple[float, str] | None:
    """(score, the matched text) from the last "Overall Score" (or Chinese key) in the reply."""
    for pattern in SCORE_PATTERNS:
        matches = pattern.findall(reply)
        if matches:
            raw = matches[-1][1]
            return float(raw.split("-", 1)[0]), raw
    return None


def reason_text(reply: str) -> str:
    """The judge's explanation: what follows `Reason:` when present, else the whole reply."""
    marker = reply.rfind("Reason:")
    text = reply[marker + len("Reason:") :] if marker >= 0 else reply
    return text.strip()
