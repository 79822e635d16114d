"""Runs inside a vLLM contract virtualenv (~/.cache/proctor/vllm-<version>/, tests/setup.d/70-vllm.sh)
with that venv's python, never in Proctor's own: it asks the real vLLM package whether it accepts a
command line or a request body, and prints the answers as JSON.

    python tests/doubles/vllm_probe.py version            # the installed vLLM version
    python tests/doubles/vllm_probe.py argv  < argvs.json  # [["serve", MODEL, "--flag", ...], ...]
    python tests/doubles/vllm_probe.py chat  < bodies.json # [{chat completion request body}, ...]

`argv`: each command line (what follows `vllm`) goes through vLLM's own CLI entry point
(`vllm.entrypoints.cli.main.main`: its FlexibleArgumentParser, every subcommand's parser and the
subcommand's `validate`), with the subcommand's action replaced by a capture of the parsed
arguments. Answers `{"ok": true, "args": {model, served_model_name, ...}}` or `{"ok": false,
"error": vLLM's message}` (argparse's `unrecognized arguments: --flag` for a flag it does not know).

`chat`: each body is validated against that version's `ChatCompletionRequest` (pydantic, with vLLM's
own validators). Answers `{"ok": true, "ignored": [...]}`, where `ignored` lists the top-level fields
vLLM accepts but ignores (it only logs them), or `{"ok": false, "error": ...}`.

Torch is a stand-in (tests/doubles/torch_stub.py): PyPI's x86_64 torch is the CUDA build, which does
not import without the nvidia libraries, and neither the parser nor the protocol models compute.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import traceback
from importlib.metadata import requires, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("USE_TORCH", "0")  # transformers: no torch (the stand-in is for vLLM only)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch_stub


def _torch_version() -> str:
    for line in requires("vllm") or []:
        name, _, rest = line.partition("==")
        if name.strip() == "torch" and rest:
            return rest.split(";")[0].strip()
    return "2.8.0"


torch_stub.install(_torch_version())
logging.disable(logging.WARNING)

KEPT = (
    "model",
    "model_tag",
    "served_model_name",
    "host",
    "port",
    "tensor_parallel_size",
    "dtype",
    "gpu_memory_utilization",
    "limit_mm_per_prompt",
    "max_model_len",
    "trust_remote_code",
    "enforce_eager",
    "seed",
)


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def parse_argvs(argvs: list[list[str]]) -> list[dict]:
    import vllm.entrypoints.cli.main as cli
    import vllm.entrypoints.cli.serve as serve

    captured: list = []

    def capture(args) -> None:
        # What ServeSubcommand.cmd does first: the positional model wins.
        if getattr(args, "model_tag", None) is not None:
            args.model = args.model_tag
        captured.append(args)

    serve.ServeSubcommand.cmd = staticmethod(capture)
    # No GPU here: vLLM would fail to infer the device while building its config defaults. Its own
    # `vllm bench` does the same when the platform is unspecified.
    from vllm import platforms
    from vllm.platforms.cpu import CpuPlatform

    platforms.current_platform = CpuPlatform()
    answers = []
    for argv in argvs:
        captured.clear()
        err = io.StringIO()
        sys.argv = ["vllm", *argv]
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                cli.main()
        except SystemExit as exc:  # argparse: prints "error: ..." and exits 2
            message = [line for line in err.getvalue().splitlines() if "error" in line.lower()]
            answers.append({"ok": False, "error": " ".join(message) or f"exit {exc.code}"})
            continue
        except Exception as exc:  # FlexibleArgumentParser and validate() raise
            if os.environ.get("VLLM_PROBE_TRACEBACK"):
                traceback.print_exc()
            answers.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if not captured:
            answers.append({"ok": False, "error": "the serve subcommand did not run"})
            continue
        args = vars(captured[0])
        answers.append({"ok": True, "args": {k: _jsonable(args.get(k)) for k in KEPT if k in args}})
    return answers


def chat_request_model():
    try:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    except ImportError:
        from vllm.entrypoints.openai.protocol import ChatCompletionRequest
    return ChatCompletionRequest


def validate_bodies(bodies: list[dict]) -> list[dict]:
    model = chat_request_model()
    known = set()
    for name, field in model.model_fields.items():
        known.add(name)
        if field.alias:
            known.add(field.alias)
    answers = []
    for body in bodies:
        try:
            model.model_validate(body)
        except Exception as exc:
            answers.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        answers.append({"ok": True, "ignored": sorted(set(body) - known)})
    return answers


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "version":
        import vllm.entrypoints.cli.serve  # noqa: F401  (the parser imports)

        chat_request_model()
        print(version("vllm"))
        return 0
    if action == "argv":
        print(json.dumps(parse_argvs(json.load(sys.stdin))))
        return 0
    if action == "chat":
        print(json.dumps(validate_bodies(json.load(sys.stdin))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
