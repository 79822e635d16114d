"""Vision2Code's LaTeX renderer: compile without shell escape, rasterise the first page.

As the harness's `render_latex.py` does: `latexmk -pdf` (pdflatex with `-no-shell-escape`,
`-interaction=nonstopmode -halt-on-error`), falling back to two `pdflatex` passes; then `pdftoppm`
renders the first page to PNG at 144 dpi; a blank (single-colour) page is not an image.

Both steps run in the sandbox as one shell script, so the untrusted source never runs outside it:
no network, a read-only filesystem apart from the scratch directory (TeX's own `openout_any = p`
keeps writes there too), CPU/memory/process limits and a wall-clock limit.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from proctor_jobs.oracle import Sandbox, SandboxLimits

SCRIPT = r"""
set -u
rm -f generated.pdf rendered_image.png
if command -v latexmk >/dev/null 2>&1; then
  latexmk -pdf -interaction=nonstopmode -halt-on-error \
    -pdflatex='pdflatex %O -interaction=nonstopmode -halt-on-error -no-shell-escape %S' generated.tex \
    > compile.log 2>&1 || true
fi
if [ ! -s generated.pdf ]; then
  pdflatex -interaction=nonstopmode -halt-on-error -no-shell-escape generated.tex >> compile.log 2>&1 \
    && pdflatex -interaction=nonstopmode -halt-on-error -no-shell-escape generated.tex >> compile.log 2>&1
fi
[ -s generated.pdf ] || exit 10
pdftoppm -png -singlefile -f 1 -l 1 -r "$DPI" generated.pdf rendered_image >> compile.log 2>&1 || exit 20
[ -s rendered_image.png ] || exit 20
exit 0
"""


@dataclass
class LatexOutcome:
    png: bytes | None
    status: str  # ok | timeout | latex_compile_failed | pdf_to_png_failed | sandbox error
    log: str
    produced_pdf: bool
    duration_s: float
    isolation: list[str] | None = None
    crashed: bool = False


def available() -> bool:
    return bool(shutil.which("pdflatex") and shutil.which("pdftoppm"))


async def run_latex(sandbox: Sandbox, source: str, timeout_s: float = 60.0, dpi: int = 144) -> LatexOutcome:
    limits = SandboxLimits(wall_seconds=timeout_s, memory_mb=2048, max_processes=64, max_file_mb=256)
    run = await sandbox.run_command(
        ["/bin/sh", "-c", SCRIPT],
        limits,
        files={"generated.tex": source},
        keep=True,
        env={"DPI": str(int(dpi)), "openout_any": "p", "shell_escape": "f"},
    )
    try:
        scratch = Path(run.scratch or "")
        log = _read(scratch / "compile.log") or run.stderr
        tex_log = _read(scratch / "generated.log")
        if tex_log:  # TeX's own log: errors with context, and what shell escape refused
            log += "\n----- generated.log -----\n" + tex_log
        produced_pdf = (scratch / "generated.pdf").is_file()
        if run.status == "crashed":
            return LatexOutcome(
                None, f"sandbox error: {run.error}", log, False, run.duration_s, run.isolation, True
            )
        if run.status == "timeout":
            return LatexOutcome(None, "timeout", log, produced_pdf, run.duration_s, run.isolation)
        if run.exit_code == 10:
            return LatexOutcome(None, "latex_compile_failed", log, False, run.duration_s, run.isolation)
        png = scratch / "rendered_image.png"
        if run.exit_code != 0 or not png.is_file():
            return LatexOutcome(None, "pdf_to_png_failed", log, produced_pdf, run.duration_s, run.isolation)
        return LatexOutcome(png.read_bytes(), "ok", log, True, run.duration_s, run.isolation)
    finally:
        if run.scratch:
            shutil.rmtree(Path(run.scratch).parent, ignore_errors=True)


def _read(path: Path, limit: int = 60_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return (
        text
        if len(text) <= limit
        else text[: limit // 4] + "\n[... truncated ...]\n" + text[-3 * limit // 4 :]
    )
