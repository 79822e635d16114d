"""Vision2Code's Python renderer: run the answer's matplotlib program in the sandbox.

The program is wrapped as the Vision2Code harness wraps it (`rendering/render_python.py`): the Agg
backend; `OUTPUT_PATH` defined for the program to use; `pyplot.savefig` and `Figure.savefig`
replaced so that *every* save — whatever file name, file object or bbox the program asks for —
writes the output path at the reference image's pixel size (figure size = size / 100 inches,
dpi 100), with `bbox_inches=None` and `pad_inches=0`. A program that never saves produces no
image. The wrapper is prepended to the program, so tracebacks count lines the same way.

It runs in the same sandbox as HumanEval-V (no network, read-only filesystem except its scratch
directory, an unprivileged uid, CPU/memory/process limits) with the harness's 30 s timeout, in a
fork server that imported numpy and pyplot once.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from proctor_jobs.oracle import Sandbox, SandboxLimits

OUTPUT_NAME = "rendered_image.png"
PRELOAD = ("numpy", "matplotlib", "matplotlib.pyplot")


def wrap_program(code: str, width: int, height: int, dpi: int = 100, output: str = OUTPUT_NAME) -> str:
    return f"""import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

OUTPUT_PATH = {output!r}
_PROCTOR_SIZE_INCHES = ({int(width)} / {int(dpi)}, {int(height)} / {int(dpi)})
_PROCTOR_DPI = {int(dpi)}
_proctor_pyplot_savefig = plt.savefig
_proctor_figure_savefig = Figure.savefig

def _proctor_save_options(kwargs):
    options = {{k: v for k, v in kwargs.items() if k not in ('fname', 'filename', 'filename_or_obj')}}
    options.update(dpi=_PROCTOR_DPI, bbox_inches=None, pad_inches=0)
    return options

def _proctor_pyplot_save(*args, **kwargs):
    plt.gcf().set_size_inches(*_PROCTOR_SIZE_INCHES, forward=True)
    return _proctor_pyplot_savefig(OUTPUT_PATH, *args[1:], **_proctor_save_options(kwargs))

def _proctor_figure_save(self, *args, **kwargs):
    self.set_size_inches(*_PROCTOR_SIZE_INCHES, forward=True)
    return _proctor_figure_savefig(self, OUTPUT_PATH, *args[1:], **_proctor_save_options(kwargs))

plt.savefig = _proctor_pyplot_save
Figure.savefig = _proctor_figure_save

{code}
"""


@dataclass
class ProgramOutcome:
    png: bytes | None
    status: str  # "ok", "timeout", "no_output_image", or the error text (the harness's status)
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    isolation: list[str] | None = None
    crashed: bool = False  # the sandbox itself failed (not the program)


async def run_matplotlib(
    sandbox: Sandbox, code: str, width: int, height: int, timeout_s: float = 30.0, memory_mb: int = 4096
) -> ProgramOutcome:
    program = wrap_program(code, width, height)
    limits = SandboxLimits(wall_seconds=timeout_s, memory_mb=memory_mb, max_processes=64, max_file_mb=256)
    run = await sandbox.run_python(program, limits, keep=True, filename="run.py")
    try:
        if run.status == "crashed":
            return ProgramOutcome(
                None,
                f"sandbox error: {run.error}",
                run.stdout,
                run.stderr,
                run.duration_s,
                run.isolation,
                crashed=True,
            )
        if run.status == "timeout":
            return ProgramOutcome(None, "timeout", run.stdout, run.stderr, run.duration_s, run.isolation)
        output = Path(run.scratch or "") / OUTPUT_NAME
        exception = run.exception or {}
        clean_exit = exception.get("type") == "SystemExit" and exception.get("message") in ("", "0", "None")
        if not run.ok and not clean_exit:  # sys.exit(0) ends a script successfully, as in a subprocess
            status = (run.stderr or run.stdout or run.reason or "execution_failed")[:4000]
            if "Traceback" in run.stderr:  # keep the harness's head-of-stderr status, but make sure the
                status = run.stderr[run.stderr.rfind("Traceback") :][:4000]  # final error line survives
            return ProgramOutcome(None, status, run.stdout, run.stderr, run.duration_s, run.isolation)
        if not output.is_file() or output.stat().st_size == 0:
            return ProgramOutcome(
                None, "no_output_image", run.stdout, run.stderr, run.duration_s, run.isolation
            )
        return ProgramOutcome(
            output.read_bytes(), "ok", run.stdout, run.stderr, run.duration_s, run.isolation
        )
    finally:
        if run.scratch:
            shutil.rmtree(Path(run.scratch).parent, ignore_errors=True)
