"""Vision2Code renderers for real: matplotlib and LaTeX in the sandbox, Excalidraw in Chromium."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from proctor_jobs.oracle import Sandbox
from proctor_jobs.render import images
from proctor_jobs.render.latex_runner import run_latex
from proctor_jobs.render.matplotlib_runner import PRELOAD, run_matplotlib
from proctor_jobs.worker import load_shard_records
from tests.support import require_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests/fixtures/vision2code"


def sandboxed(coro_factory):
    async def main():
        async with Sandbox(concurrency=2, preload=PRELOAD) as sandbox:
            return await coro_factory(sandbox)

    return asyncio.run(main())


def test_the_real_answer_renders_at_the_reference_size_like_the_original(tmp_path):
    """gpt-5.4-mini's answer to ChartQA_test_000509 saves with dpi=150 and bbox_inches='tight';
    the wrapper forces 420x756 px, as the harness did (its rating records the same size)."""
    pytest.importorskip("matplotlib")
    code = (FIXTURES / "generated_code.py").read_text()
    rating = json.loads((FIXTURES / "rating__openai_gpt_5_4_mini.json").read_text())
    outcome = sandboxed(lambda sb: run_matplotlib(sb, code, 420, 756, timeout_s=60))
    assert outcome.status == "ok", outcome.stderr[-2000:]
    inspection = images.inspect_candidate(outcome.png)
    published = rating["candidate_inspection"]
    assert (
        (inspection["width"], inspection["height"]) == (published["width"], published["height"]) == (420, 756)
    )
    assert not inspection["is_blank_or_degenerate"]
    # same program, same wrapper: the pixels agree with the published render up to font differences
    assert abs(inspection["near_white_ratio"] - published["near_white_ratio"]) < 0.02
    assert abs(inspection["grayscale_mean"] - published["grayscale_mean"]) < 2.0


def test_a_program_cannot_write_outside_its_scratch_or_reach_the_network(tmp_path):
    marker = tmp_path / "escaped"
    code = (
        "import urllib.request\n"
        f"try:\n    open({str(marker)!r}, 'w').write('x')\nexcept OSError as e:\n    print('refused', e)\n"
        "urllib.request.urlopen('http://127.0.0.1:9/')\n"
    )
    outcome = sandboxed(lambda sb: run_matplotlib(sb, code, 100, 100, timeout_s=20))
    assert outcome.png is None and "URLError" in outcome.status
    assert not marker.exists()


def test_latex_compiles_without_shell_escape_and_rasterises_the_first_page():
    require_env(bool(shutil.which("pdflatex") and shutil.which("pdftoppm")), "TeX Live / poppler missing")
    source = (
        "\\documentclass{article}\\pagestyle{empty}\\begin{document}\n"
        "\\immediate\\write18{echo pwned > pwned.tex}\n"
        "\\section*{Hello} $E = mc^2$ \\newpage Second page\\end{document}\n"
    )
    outcome = sandboxed(lambda sb: run_latex(sb, source, timeout_s=60, dpi=72))
    assert outcome.status == "ok", outcome.log[-2000:]
    assert "runsystem(echo pwned > pwned.tex)...disabled" in outcome.log
    inspection = images.inspect_candidate(outcome.png)
    assert (inspection["width"], inspection["height"]) in ((612, 792), (596, 842))  # letter / A4 at 72 dpi
    broken = sandboxed(
        lambda sb: run_latex(sb, "\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}")
    )
    assert broken.status == "latex_compile_failed" and "Undefined control sequence" in broken.log


def test_the_example_run_classifies_every_render_outcome(tmp_path):
    """examples/vision2code through local mode: every failure class of the taxonomy, blank
    detection, similarity, LaTeX and Excalidraw (timeout shortened to 20 s)."""
    require_env(
        Path("/usr/bin/chromium").exists(), "Chromium missing (tests/setup.d/20-render.sh installs it)"
    )
    require_env(bool(shutil.which("pdflatex")), "TeX Live missing")
    from proctor.local import execute, prepare

    local = prepare(
        REPO / "examples/vision2code/evalrun.yaml",
        str(tmp_path / "store"),
        overrides={"render": {"deadlineSeconds": 20}},
    )
    result = execute(local, workers=2)
    assert result.phase == "Succeeded"
    records = {}
    for index in range(local.plan.stage("render").shards):
        records.update(load_shard_records(local.store, local.plan.layout, "render", index))
    failures = {item_id: rec.data["failure"] for item_id, rec in records.items()}
    assert failures == {
        "ChartQA_test_000509_2ac3907c97d2": None,
        "matplotlib_bar_0001": None,
        "figureqa_line_0001": "hallucinated_api_or_argument",
        "dvqa_pie_0001": "syntax_or_truncation",
        "geometry3k_0001": None,
        "spatialvlm_0001": "shape_or_geometry",
        "physics_0001": "missing_dependency_or_file",
        "olympiad_0001": "timeout",
        "graph_algorithms_0001": "no_output_image",
        "chemvqa_0001": None,
        "geoqa_hostile_0001": "other_runtime",
        "docvqa_latex_0001": None,
        "docvqa_latex_0002": "hallucinated_api_or_argument",
        "graphvqa_excalidraw_0001": None,
        "graphvqa_excalidraw_0002": "hallucinated_api_or_argument",
    }
    assert all(rec.status == "ok" for rec in records.values())
    good = records["matplotlib_bar_0001"]
    assert (
        good.data["image_size"] == [640, 480]
        and good.data["similarity"] > 0.95
        and not good.data["degenerate"]
    )
    assert local.store.get_bytes(good.evidence["image"]).startswith(b"\x89PNG")
    assert local.store.get_text(good.evidence["code"]).startswith("import matplotlib.pyplot as plt")
    assert records["geometry3k_0001"].data["similarity"] > 0.99  # the answer redraws the reference exactly
    blank = records["chemvqa_0001"]
    assert blank.data["blank"] and blank.data["degenerate"] and "near_zero_variance" in blank.reason
    drawn = records["graphvqa_excalidraw_0001"]
    assert drawn.data["renderer"] == "excalidraw" and not drawn.data["degenerate"]
    assert drawn.data["image_size"][0] == 640  # scaled to the reference's width
    assert records["olympiad_0001"].data["duration_s"] < 20 + 10
