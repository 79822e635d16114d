"""HumanEval-V extraction: the original harness's rules, on crafted cases and on real model output."""

import ast
import json
from pathlib import Path

import pytest

from proctor_jobs.benchmarks.humanevalv_extract import choose_code, extract, filter_top_level

FIXTURES = Path(__file__).parents[1] / "fixtures" / "humaneval_v"
SIG = 'def solution(x: int) -> int:\n    """Double x."""\n'
TEST = "assert solution(2) == 4\n"


def test_single_python_fence_is_taken():
    code, rule = choose_code("Analysis...\n```python\ndef solution(x):\n    return 2 * x\n```\nDone.")
    assert rule == "python-fence"
    assert code == "\ndef solution(x):\n    return 2 * x\n"


def test_several_fences_prefer_the_last_block_mentioning_solution():
    answer = (
        "```python\ndef helper():\n    return 1\n```\n"
        "```python\ndef solution(x):\n    return 2 * x\n```\n"
        "```python\nprint(solution(3))\n```\n"
    )
    code, rule = choose_code(answer)
    assert rule == "python-fence-with-solution"
    assert "return 2 * x" in code and "print" not in code


def test_solution_mentioned_after_the_closing_fence_counts_as_the_original_does():
    # The original tests the whole split segment, prose after the fence included.
    answer = "```python\nA = 1\n```\nthen:\n```python\nB = 2\n```\nthis defines def solution indirectly"
    code, rule = choose_code(answer)
    assert rule == "python-fence-with-solution"
    assert code.strip() == "B = 2"


def test_without_solution_the_earliest_closed_block_wins():
    answer = "```python\nA = 1\n```\ntext\n```python\nB = 2\n```\n"
    code, rule = choose_code(answer)
    assert rule == "python-fence-earliest"
    assert code.strip() == "A = 1"


@pytest.mark.parametrize(
    ("answer", "expected_rule", "expected_code"),
    [
        ("no code at all", "no-fence", "    pass"),
        ("``` python\nX = 1\n```", "spaced-python-fence", "\nX = 1\n"),
        (
            "def solution(x):\n    return x\n```",
            "text-before-single-fence",
            "def solution(x):\n    return x\n",
        ),
        ("```\nY = 2\n```", "untagged-fence", "\nY = 2\n"),
    ],
)
def test_other_fence_shapes(answer, expected_rule, expected_code):
    assert choose_code(answer) == (expected_code, expected_rule)


def test_body_only_answer_gets_the_signature_prepended_and_passes_compilation():
    result = extract("```python\n    return 2 * x\n```", SIG, TEST)
    assert result.completion.startswith("def solution(x: int) -> int:")
    compile(result.program, "<program>", "exec")


def test_unfenced_answer_becomes_pass_and_cannot_satisfy_a_test():
    result = extract("The answer is 4.", SIG, TEST)
    assert result.rule == "no-fence"
    namespace: dict = {}
    exec(compile(result.program.replace(TEST, ""), "<p>", "exec"), namespace)
    assert namespace["solution"](2) is None


def test_ast_filter_keeps_imports_anywhere_and_top_level_definitions_only():
    code = (
        "import os\n"
        "from . import sibling\n"
        "x = compute()\n"
        "def solution(a):\n"
        "    import math\n"
        "    def inner():\n"
        "        return 1\n"
        "    return math.floor(a)\n"
        "class Helper:\n"
        "    def method(self):\n"
        "        return 2\n"
        "if __name__ == '__main__':\n"
        "    def hidden():\n"
        "        pass\n"
        "print(solution(1))\n"
    )
    kept = filter_top_level(code)
    assert kept.splitlines()[:2] == ["import os", "from  import sibling"]  # the original drops the dots
    assert "import math" in kept.splitlines()  # nested import flattened, as the original does
    assert "x = compute()" not in kept and "print(" not in kept
    assert "def hidden" in kept  # inside an `if`, not a function/class: kept by the original too
    assert kept.count("def inner") == 1  # travels inside solution, not duplicated


def test_unparseable_code_is_kept_verbatim_for_pylint_to_reject():
    result = extract("```python\ndef solution(x:\n    return\n```", SIG, TEST)
    assert not result.parsed
    assert "def solution(x:" in result.completion


def test_program_is_signature_pass_completion_test():
    result = extract("```python\ndef solution(x):\n    return 2 * x\n```", SIG, TEST)
    assert result.program == SIG + "    pass\n\n" + result.completion + "\n\n" + TEST


def _real(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())


def test_real_v2_generations_extract_to_runnable_solutions():
    [item] = _real("example_pred_sample_6.json")
    signature = item["prompt"].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(item["predictions"]) == 6
    for prediction in item["predictions"]:
        result = extract(prediction, signature, "")
        assert result.parsed
        tree = ast.parse(result.completion)
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert "solution" in names
        # The models' "example usage" lines are top-level statements: the filter drops them.
        assert not any(isinstance(n, ast.Expr | ast.Assign) for n in tree.body)
        compile(result.program, "<program>", "exec")


def test_real_v1_generations_keep_their_numpy_import():
    [item] = _real("example_pred_sample_20_v1.json")
    assert len(item["predictions"]) == 20
    signature = "import numpy as np\n\ndef solution() -> np.ndarray:\n"
    for prediction in item["predictions"]:
        result = extract(prediction, signature, "")
        assert result.rule.startswith("python-fence")
        assert "import numpy as np" in result.completion.splitlines()
        assert "def solution()" in result.completion
        assert "data = solution()" not in result.completion
