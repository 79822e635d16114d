"""Vision2Code render checks: the failure taxonomy, blank/degenerate detection, pixel similarity,
code extraction, the matplotlib wrapper and Excalidraw scene validation."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageDraw

from proctor_jobs.render import images, taxonomy
from proctor_jobs.render.excalidraw import SceneError, validate_scene
from proctor_jobs.render.matplotlib_runner import wrap_program
from proctor_jobs.render.v2c_extract import excalidraw_code, latex_code, python_code


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        # the harness's own examples (vision2code/rendering/failure_taxonomy tests)
        ("timeout", "timeout"),
        ("SyntaxError: invalid syntax", "syntax_or_truncation"),
        ("ModuleNotFoundError: no module named foo", "missing_dependency_or_file"),
        ("AttributeError: module has no attribute bar", "hallucinated_api_or_argument"),
        ("ValueError: shape mismatch", "shape_or_geometry"),
        # the last error in a traceback decides
        (
            "Traceback:\n  File x\nKeyError: 'a'\n\nDuring handling...\nNameError: name 'y' is not defined",
            "hallucinated_api_or_argument",
        ),
        ("TypeError: plot() got multiple values for argument 'x'", "hallucinated_api_or_argument"),
        ("TypeError: unsupported operand type(s)", "other_runtime"),
        ("numpy.exceptions.AxisError: axis 2 is out of bounds", "shape_or_geometry"),
        ("no_output_image", "no_output_image"),
        ("killed by signal 9", "other_runtime"),
    ],
)
def test_python_failure_taxonomy(status, failure):
    assert taxonomy.python_failure(status) == failure


def test_latex_and_excalidraw_failures_map_onto_the_same_names():
    assert (
        taxonomy.latex_failure("! LaTeX Error: File `foo.sty' not found.", False, False)
        == "missing_dependency_or_file"
    )
    assert (
        taxonomy.latex_failure("! Undefined control sequence.\nl.3 \\foo", False, False)
        == "hallucinated_api_or_argument"
    )
    assert (
        taxonomy.latex_failure("! File ended while scanning use of \\textbf.", False, False)
        == "syntax_or_truncation"
    )
    assert taxonomy.latex_failure("", True, False) == "timeout"
    assert taxonomy.excalidraw_failure("json: not valid JSON") == "syntax_or_truncation"
    assert (
        taxonomy.excalidraw_failure("schema: unknown element type(s) hexagon")
        == "hallucinated_api_or_argument"
    )
    assert set(taxonomy.PAPER_LABELS) == set(taxonomy.FAILURES)


def test_blank_and_degenerate_images_are_flagged_with_the_harness_thresholds():
    white = images.inspect_candidate(png(Image.new("RGB", (420, 300), "white")))
    assert white["is_blank_or_degenerate"] and white["blank"]
    assert {"near_zero_variance", "near_monochrome", "mostly_empty_canvas"} <= set(white["checks_triggered"])
    tiny = images.inspect_candidate(png(Image.new("RGB", (20, 300), "gray")))
    assert "too_small" in tiny["checks_triggered"]
    chart = Image.new("RGB", (420, 300), "white")
    draw = ImageDraw.Draw(chart)
    for i in range(6):
        draw.rectangle([30 + i * 60, 280 - 40 * i, 70 + i * 60, 280], fill=(40, 90, 200))
    inspection = images.inspect_candidate(png(chart))
    assert not inspection["is_blank_or_degenerate"] and not inspection["blank"]
    assert inspection["width"] == 420 and inspection["height"] == 300
    assert not images.inspect_candidate(None)["candidate_readable"]
    assert images.inspect_candidate(b"not a png")["checks_triggered"][0].startswith("unreadable_image")


def test_similarity_is_one_minus_mse_over_255_squared_at_512_pixels():
    white, black = png(Image.new("RGB", (100, 50), "white")), png(Image.new("RGB", (640, 480), "black"))
    assert images.similarity(white, white) == 1.0
    assert images.similarity(white, black) == 0.0
    grey = png(Image.new("RGB", (300, 300), (255 - 51, 255 - 51, 255 - 51)))
    assert images.similarity(white, grey) == pytest.approx(1 - (51 / 255) ** 2, abs=1e-6)


def test_python_code_is_the_last_fence_after_thinking_else_the_whole_text():
    answer = (
        "<think>```python\nwrong()\n```</think>Here:\n```python\nfirst()\n```\nbetter:\n```\nsecond()\n```"
    )
    assert python_code(answer) == "second()"
    assert python_code("import matplotlib\nplt.plot()") == "import matplotlib\nplt.plot()"
    # the harness's regex makes the language word part of the code for other fences; so does ours
    assert python_code("```py\nx = 1\n```").startswith("py")


def test_latex_and_excalidraw_code_extraction():
    assert latex_code("Doc:\n```latex\n\\documentclass{article}\n```") == "\\documentclass{article}"
    assert (
        excalidraw_code('Scene: {"type": "excalidraw", "elements": []} done')
        == '{"type": "excalidraw", "elements": []}'
    )


def test_the_matplotlib_wrapper_forces_every_save_to_the_reference_size():
    program = wrap_program("plt.plot([1])\nplt.savefig('x.pdf', dpi=300, bbox_inches='tight')", 420, 756)
    assert "matplotlib.use('Agg')" in program
    assert "OUTPUT_PATH = 'rendered_image.png'" in program
    assert "_PROCTOR_SIZE_INCHES = (420 / 100, 756 / 100)" in program
    assert "options.update(dpi=_PROCTOR_DPI, bbox_inches=None, pad_inches=0)" in program
    assert program.rstrip().endswith("plt.savefig('x.pdf', dpi=300, bbox_inches='tight')")
    compile(program, "run.py", "exec")


def _scene(elements):
    return json.dumps({"type": "excalidraw", "elements": elements})


def test_excalidraw_scenes_are_validated_before_drawing():
    ok = validate_scene(_scene([{"type": "rectangle", "x": 0, "y": 0, "width": 10, "height": 5}]))
    assert ok["elements"][0]["type"] == "rectangle"
    assert validate_scene(json.dumps([{"type": "ellipse", "x": 1, "y": 2}]))["type"] == "excalidraw"
    for text, prefix in [
        ('{"type": "excalidraw", "elements": [', "json:"),
        (_scene([{"type": "hexagon", "x": 0, "y": 0}]), "schema:"),
        (_scene([{"type": "text", "x": "left", "y": 0}]), "schema:"),
        (_scene([]), "empty:"),
        ('{"type": "excalidraw"}', "schema:"),
    ]:
        with pytest.raises(SceneError) as info:
            validate_scene(text)
        assert str(info.value).startswith(prefix)
