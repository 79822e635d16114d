"""Why a Vision2Code program produced no image: the paper's render-failure taxonomy.

Python failures are classified by the Vision2Code harness's rules (`rendering/failure_taxonomy.py`)
on the same text it classifies — the program's stderr, i.e. the traceback:

- `timeout` when the text mentions a timeout (the harness's status for a killed program is the
  word "timeout"; note that an error message merely containing "timeout" classifies so too, as in
  the original);
- else by the *last* `SomethingError:` in the text: `SyntaxError` -> syntax_or_truncation;
  `ModuleNotFoundError`, `ImportError`, `FileNotFoundError` -> missing_dependency_or_file;
  `ValueError`, `IndexError`, `KeyError`, `RuntimeError`, `AxisError`, `_UFuncNoLoopError` ->
  shape_or_geometry; `AttributeError`, `NameError`, and `TypeError`s about argument passing ->
  hallucinated_api_or_argument; anything else -> other_runtime.

The harness folds "no output image" into other_runtime; Proctor keeps it apart as
`no_output_image` (a program that ran but never called savefig), which the summary can fold back.

LaTeX and Excalidraw failures (renderers the paper only ablates) are mapped onto the same names by
Proctor's own rules, documented in `latex_failure` and `excalidraw_failure`.
"""

from __future__ import annotations

import re

FAILURES = (
    "timeout",
    "syntax_or_truncation",
    "missing_dependency_or_file",
    "shape_or_geometry",
    "hallucinated_api_or_argument",
    "other_runtime",
    "no_output_image",
)

#: Proctor's names -> the labels of the paper's tables
PAPER_LABELS = {
    "timeout": "Timeout",
    "syntax_or_truncation": "Syntax/truncation",
    "missing_dependency_or_file": "Missing dependency/file",
    "shape_or_geometry": "Shape/3D/geometry",
    "hallucinated_api_or_argument": "Hallucinated API/argument",
    "other_runtime": "Other runtime",
    "no_output_image": "Other runtime",
}

_ARGUMENT_TYPEERRORS = (
    "got multiple values",
    "required positional argument",
    "positional arguments but",
    "got both",
    "col must",
    "must be an instance",
    "add_line()",
    "pathpatch_2d_to_3d()",
)


def python_failure(status: str) -> str:
    """Classify a failed Python render from its status text (stderr, or 'timeout')."""
    text = (status or "").strip()
    lower = text.lower()
    if "timeout" in lower or "timed out" in lower:
        return "timeout"
    if lower == "no_output_image" or "no_output_image" in lower or "no output" in lower:
        return "no_output_image"
    errors = re.findall(r"([A-Za-z_]*Error):", text)
    exception = errors[-1] if errors else ""
    if exception == "SyntaxError":
        return "syntax_or_truncation"
    if exception in {"ModuleNotFoundError", "ImportError", "FileNotFoundError"}:
        return "missing_dependency_or_file"
    if exception in {
        "ValueError",
        "IndexError",
        "KeyError",
        "RuntimeError",
        "AxisError",
        "_UFuncNoLoopError",
    }:
        return "shape_or_geometry"
    if exception in {"AttributeError", "NameError"}:
        return "hallucinated_api_or_argument"
    if exception == "TypeError" and any(marker in lower for marker in _ARGUMENT_TYPEERRORS):
        return "hallucinated_api_or_argument"
    return "other_runtime"


def latex_failure(log: str, timed_out: bool, produced_pdf: bool) -> str:
    """LaTeX: a missing package/file, an undefined command (a made-up macro), a truncated or
    unbalanced source, else other; no PDF/PNG at all is no_output_image."""
    if timed_out:
        return "timeout"
    if re.search(r"LaTeX Error: File `[^']+' not found|! I can't find file", log):
        return "missing_dependency_or_file"
    if re.search(
        r"! Undefined control sequence|LaTeX Error: Environment \S+ undefined|"
        r"LaTeX Error: Unknown option|Package \S+ Error: Unknown",
        log,
    ):
        return "hallucinated_api_or_argument"
    if re.search(
        r"File ended while scanning|Emergency stop|Runaway argument|Missing \S+ inserted|"
        r"Extra \}|\\begin\{document\} ended by|ended by \\end\{document\}|Missing \\begin\{document\}",
        log,
    ):
        return "syntax_or_truncation"
    if produced_pdf:
        return "no_output_image"
    return "other_runtime" if log.strip() else "no_output_image"


def excalidraw_failure(problem: str) -> str:
    """Excalidraw: unparseable JSON is syntax; unknown element types or fields are hallucinated
    API; a scene with no elements gives no image; a renderer error is other."""
    if problem.startswith("json:"):
        return "syntax_or_truncation"
    if problem.startswith("schema:"):
        return "hallucinated_api_or_argument"
    if problem.startswith("empty:"):
        return "no_output_image"
    if problem.startswith("timeout"):
        return "timeout"
    return "other_runtime"
