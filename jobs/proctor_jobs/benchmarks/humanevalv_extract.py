"""HumanEval-V answer extraction, reproducing the original harness's rules exactly.

From a model's prediction to the program that is executed:

1. choose the code: if there are ```` ```python ```` fences, one fence → its block; several → walking
   the fence-split segments from last to first (the text before the first fence included), the
   first segment closed by exactly one ```` ``` ```` whose text mentions ``def solution`` (even after
   its closing fence — the original tests the whole segment); if none does, the earliest such
   segment; if there is none at all, ``pass``. Else ```` ``` python ```` (with a space). Else
   untagged fences: one ```` ``` ```` → the text before it; two or more → the first block; none →
   ``pass`` (so an unfenced answer scores 0);
2. a body without its signature (starts with two spaces, or a newline and two spaces) gets the
   task's signature prepended;
3. an AST filter keeps only imports (anywhere, flattened one name per line, relative dots dropped)
   and top-level functions and classes (nested ones travel inside their parent), in source order;
   code that does not parse is kept as is;
4. program = signature + ``    pass`` + the filtered code + the test script.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

PY_FENCE = "```python"
SPACED_FENCE = "``` python"
FENCE = "```"
EMPTY_BODY = "    pass"


@dataclass(frozen=True)
class Extraction:
    completion: str  # the filtered code (the original's `processed_predictions`)
    program: str  # what runs (the original's `concatenated_predictions`)
    rule: str  # which rule chose the code, for the record
    parsed: bool  # whether the AST filter could parse the code


def choose_code(prediction: str) -> tuple[str, str]:
    """Step 1: the code text and the rule that chose it."""
    if PY_FENCE in prediction:
        segments = prediction.split(PY_FENCE)
        if len(segments) == 2:
            return segments[1].split(FENCE)[0], "python-fence"
        fallbacks = []
        for segment in reversed(segments):
            if segment.count(FENCE) != 1:
                continue
            body = segment.split(FENCE)[0]
            if "def solution" in segment:
                return body, "python-fence-with-solution"
            fallbacks.append(body)
        if fallbacks:
            return fallbacks[-1], "python-fence-earliest"
        return EMPTY_BODY, "python-fence-unclosed"
    if SPACED_FENCE in prediction:
        return prediction.split(SPACED_FENCE)[1].split(FENCE)[0], "spaced-python-fence"
    fences = prediction.count(FENCE)
    if fences == 1:
        return prediction.split(FENCE)[0], "text-before-single-fence"
    if fences >= 2:
        return prediction.split(FENCE)[1], "untagged-fence"
    return EMPTY_BODY, "no-fence"


class _TopLevelCollector(ast.NodeVisitor):
    """Collects imports at any depth and functions/classes not nested in a function or class."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.depth = 0  # how many function/class definitions enclose the current node

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.parts.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.parts.append(
                f"from {module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            )
        self.generic_visit(node)

    def _definition(self, node: ast.FunctionDef | ast.ClassDef) -> None:
        if self.depth == 0:
            self.parts.append(ast.unparse(node))
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _definition
    visit_ClassDef = _definition


def filter_top_level(code: str) -> str:
    """Step 3; raises SyntaxError (or ValueError) when the code does not parse."""
    collector = _TopLevelCollector()
    collector.visit(ast.parse(code))
    return "\n".join(collector.parts)


def extract(prediction: str, signature: str, test_script: str) -> Extraction:
    if not signature.endswith("\n"):
        signature += "\n"
    code, rule = choose_code(prediction)
    if code.startswith("\n  ") or code.startswith("  "):
        code = signature + code
    try:
        completion, parsed = filter_top_level(code), True
    except Exception:  # the original keeps unparseable code verbatim (pylint then rejects it)
        completion, parsed = code, False
    program = signature + EMPTY_BODY + "\n\n" + completion + "\n\n" + test_script
    return Extraction(completion=completion, program=program, rule=rule, parsed=parsed)
