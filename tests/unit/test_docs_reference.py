"""docs/configuration.md is generated from the CR models, complete, and current.

Completeness is checked against the pydantic models themselves (walked here independently of the
generator, which reads the CRD schemas): every field of EvalRun, JudgeServer and Artifact, at every
depth, has a row.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from proctor.api import Artifact, EvalRun, JudgeServer
from proctor.api.judgeserver import DEFAULT_VLLM_IMAGE

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"


def proctor(capsys, *args: str) -> tuple[int, str, str]:
    """`proctor ARGS` in this process: (exit status, stdout, stderr)."""
    from proctor.cli import main

    status = main(list(args))
    out = capsys.readouterr()
    return status, out.out, out.err


def _models_in(annotation) -> list[tuple[type[BaseModel], str]]:
    """Pydantic models inside a field's type, with the path suffix they sit under ([] / <key>)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin in (list, tuple, set):
        return [(m, "[]" + s) for a in args for m, s in _models_in(a)]
    if origin is dict:
        return [(m, ".<key>" + s) for m, s in _models_in(args[1])]
    if origin in (typing.Union, types.UnionType):
        return [found for a in args for found in _models_in(a)]
    return []


def model_paths(model: type[BaseModel], prefix: str) -> set[str]:
    paths = set()
    for name, field in model.model_fields.items():
        wire = field.alias or name
        path = f"{prefix}.{wire}"
        paths.add(path)
        for sub, suffix in _models_in(field.annotation):
            paths |= model_paths(sub, path + suffix)
    return paths


def documented() -> dict[str, dict[str, list[str]]]:
    """Kind -> section ("spec"/"status") -> the field paths of its table rows."""
    out: dict[str, dict[str, list[str]]] = {}
    kind = section = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^### (\w+) (spec|status)$", line)
        if heading:
            kind, section = heading.groups()
            out.setdefault(kind, {})[section] = []
        elif line.startswith("| `") and kind:
            out[kind][section].append(line.split("`")[1])
    return out


def row(path: str, kind: str) -> list[str]:
    rows = documented()[kind]
    section = path.split(".")[0]
    assert path in rows[section], f"{path} is not documented under {kind} {section}"
    text = DOC.read_text()
    start = text.index(f"### {kind} {section}")
    line = next(line for line in text[start:].splitlines() if line.startswith(f"| `{path}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_the_reference_is_current(capsys):
    status, _, err = proctor(capsys, "docs", "--check", "--out", str(DOC))
    assert status == 0, err


def test_a_stale_reference_is_caught(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text(DOC.read_text().replace("items per shard", "items in a shard"))
    status, _, err = proctor(capsys, "docs", "--check", "--out", str(stale))
    assert status == 1
    assert "stale" in err and "proctor docs" in err
    assert proctor(capsys, "docs", "--out", str(stale))[0] == 0
    assert stale.read_text() == DOC.read_text()


def test_every_field_of_every_kind_is_documented():
    docs = documented()
    assert set(docs) == {"EvalRun", "JudgeServer", "Artifact"}
    for model in (EvalRun, JudgeServer, Artifact):
        spec_model = model.model_fields["spec"].annotation
        status_model = typing.get_args(model.model_fields["status"].annotation)[0]
        expected = {"spec": model_paths(spec_model, "spec"), "status": model_paths(status_model, "status")}
        for section, paths in expected.items():
            missing = sorted(paths - set(docs[model.__name__][section]))
            assert not missing, f"{model.__name__} {section}: undocumented fields {missing}"
            extra = sorted(set(docs[model.__name__][section]) - paths)
            assert not extra, f"{model.__name__} {section}: rows for fields that do not exist {extra}"


def test_rows_carry_type_default_bounds_and_description():
    _, kind, default, constraints, description = row("spec.sharding.shardSize", "EvalRun")
    assert (kind, default, constraints, description) == (
        "integer",
        "`50`",
        "≥ 1, ≤ 100000",
        "items per shard",
    )
    _, kind, default, constraints, _ = row("spec.judge.profile", "EvalRun")
    assert (kind, default) == ("string", "`faithful`")
    assert constraints == "one of `faithful`, `strict`"
    _, _, default, _, _ = row("spec.vllm.image", "JudgeServer")
    assert default == f"`{DEFAULT_VLLM_IMAGE}`"
    _, _, _, constraints, _ = row("spec.render.deadlineSeconds", "EvalRun")
    assert constraints == "> 0, ≤ 600"  # exclusive lower bound
    _, kind, _, constraints, _ = row("spec.render.interaction[].action", "EvalRun")
    assert kind == "string" and constraints.startswith("required; one of `click`")
    _, kind, _, _, _ = row("spec.resources.requests", "EvalRun")
    assert kind == "map of quantity (integer or string)"
    _, _, _, constraints, _ = row("spec.benchmark", "EvalRun")
    assert "rule: exactly one of artifactRef, source must be set" in constraints
    _, kind, _, constraints, _ = row("status.phase", "JudgeServer")
    assert constraints == "one of `Pending`, `Loading`, `Ready`, `Degraded`, `Failed`"


def test_readme_links_the_reference():
    assert "docs/configuration.md" in (REPO / "README.md").read_text()
