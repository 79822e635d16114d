"""Preflight: does this machine have what a run needs? Checked before any work, never cached.

`proctor run` calls `preflight(resolved)` after reading the manifest and its inputs and before
writing anything: a missing Python extra, Chromium, fonts, TeX tools, library cache or an
unreachable judge stops the run (exit status 3) with the part that is missing and the command that
installs it. `proctor doctor [FILE]` prints the same checks as a table.

What a run needs follows from its benchmark, its active stages and its items:

- HumanEval-V oracle: pylint (a core dependency) when the pylint gate is on;
- ArtifactsBench render: the `render` extra (playwright), Chromium, fonts, the library cache;
- Vision2Code render, per task renderer: the `vision2code` extra (matplotlib); pdflatex and pdftoppm
  (LaTeX); as ArtifactsBench (Excalidraw);
- judge, when configured: the `judge` extra (openai, httpx) and a judge answering a one-token chat
  completion; generate (spec.candidate): the `judge` extra.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIP = f"{Path(sys.executable).parent / 'pip'} install -e"
FONTS_FIX = "sudo apt-get install fonts-liberation fonts-dejavu-core fonts-noto-cjk fonts-noto-color-emoji"
CHROMIUM_FIX = "sudo apt-get install chromium"
EXTRAS = {
    "playwright": "render",
    "matplotlib": "vision2code",
    "openai": "judge",
    "httpx": "judge",
    "pylint": "",  # a core dependency
}
JUDGE_TIMEOUT_S = 20.0


@dataclass
class Check:
    name: str
    needed_by: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f"; to fix: {self.fix}" if self.fix and not self.ok else ""
        return f"{self.name} (needed by {self.needed_by}): {self.detail}{fix}"


class PreflightFailed(RuntimeError):
    def __init__(self, failed: list[Check]) -> None:
        self.failed = failed
        super().__init__(
            "this machine lacks what the run needs:\n" + "\n".join(f"  - {c.line()}" for c in failed)
        )


def python_module(module: str, needed_by: str) -> Check:
    extra = EXTRAS.get(module, "")
    fix = f"{PIP} '.[{extra}]'" if extra else f"{PIP} ."
    if importlib.util.find_spec(module) is None:
        return Check(f"python: {module}", needed_by, False, "not installed", fix)
    return Check(f"python: {module}", needed_by, True, "installed")


def chromium(needed_by: str) -> Check:
    """Chromium as the render farm looks for it; PROCTOR_CHROMIUM naming a missing file is an error."""
    override = os.environ.get("PROCTOR_CHROMIUM")
    if override:
        path = Path(override)
        if not path.is_file() or not os.access(path, os.X_OK):
            what = "no such file" if not path.exists() else "not an executable file"
            return Check(
                "chromium",
                needed_by,
                False,
                f"PROCTOR_CHROMIUM={override}: {what}",
                "point PROCTOR_CHROMIUM at a Chromium binary, or unset it",
            )
        candidate = str(path)
    else:
        candidate = next(
            (c for c in ("/usr/bin/chromium", shutil.which("chromium")) if c and Path(c).is_file()), None
        )
        if candidate is None:
            return Check("chromium", needed_by, False, "not found", CHROMIUM_FIX)
    try:
        out = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("chromium", needed_by, False, f"{candidate} does not run: {exc}", CHROMIUM_FIX)
    if out.returncode != 0:
        detail = f"{candidate} does not run: {(out.stderr or out.stdout).strip()[:200]}"
        return Check("chromium", needed_by, False, detail, CHROMIUM_FIX)
    return Check("chromium", needed_by, True, f"{candidate} ({out.stdout.strip()})")


def headless_shell(needed_by: str) -> Check:
    """Chromium's old headless shell, which `spec.render.clock: virtual` drives frame by frame."""
    fix = "sudo apt-get install chromium-headless-shell (or set PROCTOR_HEADLESS_SHELL)"
    override = os.environ.get("PROCTOR_HEADLESS_SHELL")
    candidate = next(
        (
            c
            for c in (override, "/usr/bin/chromium-headless-shell", shutil.which("chromium-headless-shell"))
            if c and Path(c).is_file() and os.access(c, os.X_OK)
        ),
        None,
    )
    if candidate is None:
        return Check("chromium-headless-shell", needed_by, False, "not found", fix)
    return Check("chromium-headless-shell", needed_by, True, candidate)


def fonts(needed_by: str) -> Check:
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return Check("fonts", needed_by, False, "fontconfig (fc-list) not found", FONTS_FIX)
    try:
        out = subprocess.run(
            [fc_list, ":", "family"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("fonts", needed_by, False, f"fc-list failed: {exc}", FONTS_FIX)
    families = {line.strip() for line in out.splitlines() if line.strip()}
    if not families:
        return Check("fonts", needed_by, False, "no fonts installed", FONTS_FIX)
    return Check("fonts", needed_by, True, f"{len(families)} font families")


def library_cache(needed_by: str) -> Check:
    from proctor_jobs.render.libcache import cache_status

    status = cache_status()
    if status.get("current"):
        return Check("library cache", needed_by, True, f"{status['path']} ({status.get('megabytes')} MB)")
    npm = shutil.which("npm")
    why = "out of date" if status.get("present") else "missing"
    if npm:  # built on first use (a minute or two); building it ahead is better
        detail = f"{why} at {status['path']}: built on first use, or now with `proctor cache build`"
        return Check("library cache", needed_by, True, detail)
    return Check(
        "library cache",
        needed_by,
        False,
        f"{why} at {status['path']}, and npm (which builds it) is not installed",
        "sudo apt-get install npm && proctor cache build",
    )


def tex_tools(needed_by: str) -> list[Check]:
    from proctor_jobs.render.vision2code import LATEX_FIX, LATEX_TOOLS

    checks = []
    for tool in LATEX_TOOLS:
        path = shutil.which(tool)
        checks.append(Check(tool, needed_by, bool(path), path or "not found", LATEX_FIX))
    return checks


def judge(config: dict[str, Any], needed_by: str) -> Check:
    """The judge answers one tiny chat completion (one token), within JUDGE_TIMEOUT_S."""
    from proctor_jobs.judge.client import normalise_base_url

    url = config.get("url") or os.environ.get("PROCTOR_JUDGE_URL")
    if not url:
        ref = config.get("server_ref")
        detail = f"JudgeServer {ref!r} works only on a cluster" if ref else "no judge URL"
        return Check("judge", needed_by, False, detail, "pass --judge-url http://HOST:PORT/v1")
    try:
        base = normalise_base_url(url)
    except ValueError as exc:
        return Check("judge", needed_by, False, str(exc), "pass --judge-url http://HOST:PORT/v1")
    fix = f"start the judge (e.g. `proctor judge serve --model PATH`) or correct --judge-url ({base})"
    key = os.environ.get(config.get("api_key_env") or "PROCTOR_JUDGE_API_KEY") or os.environ.get(
        "OPENAI_API_KEY"
    )
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key or 'EMPTY'}"}
    try:
        model = config.get("model") or _first_model(base, headers)
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Reply with the word OK."}],
            "max_tokens": 1,
        }
        request = urllib.request.Request(
            f"{base}/chat/completions", json.dumps(body).encode(), headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=JUDGE_TIMEOUT_S) as response:
            reply = json.loads(response.read() or b"{}")
        if not reply.get("choices"):
            return Check(
                "judge", needed_by, False, f"{base}: a chat completion came back without choices", fix
            )
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode(errors="replace")
        return Check("judge", needed_by, False, f"{base}: HTTP {exc.code} {detail}", fix)
    except (OSError, ValueError) as exc:  # refused, DNS, timeout, not JSON
        reason = getattr(exc, "reason", exc)
        return Check("judge", needed_by, False, f"{base} unreachable: {reason}", fix)
    return Check("judge", needed_by, True, f"{base} answers (model {model})")


def _first_model(base: str, headers: dict[str, str]) -> str:
    request = urllib.request.Request(f"{base}/models", headers=headers)
    with urllib.request.urlopen(request, timeout=JUDGE_TIMEOUT_S) as response:
        models = [m.get("id") for m in json.loads(response.read()).get("data", [])]
    if not models:
        raise ValueError(f"{base}/models lists no model; set spec.judge.model")
    return models[0]


def checks_for(benchmark: str, spec: dict[str, Any], items: list[dict[str, Any]]) -> list[Check]:
    """Every check the run needs, in order: Python extras, browser, fonts, TeX, cache, judge."""
    from proctor_jobs.benchmarks import get_benchmark

    adapter = get_benchmark(benchmark)
    title = adapter.title or benchmark
    checks: list[Check] = []
    if spec.get("candidate"):
        checks.append(python_module("openai", "generate"))
    for stage in adapter.stages(spec):
        if stage.skip_reason:
            continue
        who = f"{title} {stage.name}"
        if stage.kind == "judge":
            checks += [python_module("openai", who), python_module("httpx", who)]
            checks.append(judge(adapter.stage_config(stage.name, spec), who))
        elif stage.kind == "render":
            renderers = {item.get("renderer") or "matplotlib" for item in items}
            browser = benchmark == "artifactsbench" or "excalidraw" in renderers
            if benchmark == "vision2code" and "matplotlib" in renderers:
                checks.append(python_module("matplotlib", who))
            if browser:
                checks += [python_module("playwright", who), chromium(who), fonts(who), library_cache(who)]
                # The resolved clock (asked only of ArtifactsBench): `fixed` is virtual unless told otherwise.
                if (
                    benchmark == "artifactsbench"
                    and adapter.stage_config(stage.name, spec)["clock"] == "virtual"
                ):
                    checks.append(headless_shell(f"{who} (clock: virtual)"))
            if benchmark == "vision2code" and "latex" in renderers:
                checks += tex_tools(f"{title} LaTeX tasks")
        elif (
            stage.kind == "oracle"
            and benchmark == "humanevalv"
            and (spec.get("oracle") or {}).get("pylint", True)
        ):
            checks.append(python_module("pylint", f"{who} (pylint gate)"))
    return checks


def every_check(judge_url: str | None = None) -> list[Check]:
    """`proctor doctor` without a manifest: everything any benchmark may need."""
    checks = [
        python_module("pylint", "HumanEval-V"),
        python_module("playwright", "ArtifactsBench, Vision2Code Excalidraw"),
        python_module("matplotlib", "Vision2Code"),
        python_module("openai", "judge, generate"),
        python_module("httpx", "judge"),
        chromium("ArtifactsBench, Vision2Code Excalidraw"),
        fonts("ArtifactsBench, Vision2Code Excalidraw"),
        library_cache("ArtifactsBench, Vision2Code Excalidraw"),
        *tex_tools("Vision2Code LaTeX tasks"),
    ]
    if judge_url:
        checks.append(judge({"url": judge_url}, "judge"))
    return checks


def preflight(benchmark: str, spec: dict[str, Any], items: list[dict[str, Any]]) -> list[Check]:
    """Run the checks; PreflightFailed naming each missing part when any fails."""
    checks = checks_for(benchmark, spec, items)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise PreflightFailed(failed)
    return checks
