"""Read Kubernetes-style YAML manifests and validate Proctor's objects with errors users can act on.

An error names the file, the object and the field path, e.g.

    examples/x/evalrun.yaml: EvalRun/demo: spec.sharding.shardSize: Input should be greater than or equal to 1
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from proctor.api import KINDS
from proctor_jobs.encoding import UTF8_HINT, not_text, surrogate_at

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A manifest is invalid; the message names the file, object and field."""


@dataclass
class Document:
    body: dict[str, Any]
    source: str  # "path" or "path#2" for the third document of a file

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def label(self) -> str:
        return f"{self.source}: {self.kind or '?'}/{self.name or '?'}"


def load_documents(path: Path) -> list[Document]:
    """Every YAML document in a file, or in each manifest file of a directory (sorted, not recursive)."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: no such file or directory")
    files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES) if path.is_dir() else [path]
    docs: list[Document] = []
    for file in files:
        raw = file.read_bytes()
        problem = not_text(raw, str(file), json_escapes=False)
        if problem:
            raise ManifestError(problem)
        try:
            loaded = list(yaml.safe_load_all(raw.decode()))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise ManifestError(f"{file}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        for i, body in enumerate(loaded):
            if body is None:
                continue
            source = str(file) if len(loaded) == 1 else f"{file}#{i}"
            where = surrogate_at(body)
            if where:
                raise ManifestError(
                    f"{source}: {where}: a lone surrogate (\\uD800-\\uDFFF) is not text; {UTF8_HINT}"
                )
            if not isinstance(body, dict):
                raise ManifestError(f"{source}: a manifest must be a mapping, got {type(body).__name__}")
            docs.append(Document(body, source))
    return docs


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "union[")):  # pydantic's internal validator steps
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through Optional, unions, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def known_fields(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The wire names of the fields allowed at `loc` (the location of an unknown field's parent)."""
    models = [model] if model else []
    for part in loc:
        if isinstance(part, int) or str(part).startswith(("function-", "union[")):
            continue
        nested = [
            sub
            for m in models
            for name, info in m.model_fields.items()
            if part in (name, info.alias)
            for sub in _models_in(info.annotation)
        ]
        models = nested or models  # no such field: a dict key, whose values are the models we hold
    return sorted({info.alias or name for m in models for name, info in m.model_fields.items()})


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe_errors(exc: ValidationError, label: str, model: type[BaseModel] | None = None) -> str:
    lines = []
    for err in exc.errors():
        where = field_path(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field" + did_you_mean(
                str(err["loc"][-1]), known_fields(model, err["loc"][:-1])
            )
        elif err["type"] == "missing":
            message = "required field is missing"
        elif (
            "input" in err
            and err["type"] not in ("model_type",)
            and not isinstance(err["input"], dict | list)
        ):
            message += f" (got {err['input']!r})"
        lines.append(f"{label}: {where}: {message}")
    return "\n".join(lines)


def validate(doc: Document) -> BaseModel:
    """The typed object for a Proctor document; ManifestError listing every problem otherwise."""
    api_version = doc.body.get("apiVersion")
    if doc.kind not in KINDS:
        raise ManifestError(f"{doc.label}: kind: expected one of {', '.join(KINDS)}, got {doc.kind!r}")
    if api_version != "proctor.dev/v1alpha1":
        raise ManifestError(f"{doc.label}: apiVersion: expected 'proctor.dev/v1alpha1', got {api_version!r}")
    try:
        return KINDS[doc.kind].model_validate(doc.body)
    except ValidationError as exc:
        raise ManifestError(describe_errors(exc, doc.label, KINDS[doc.kind])) from None


def is_proctor(doc: Document) -> bool:
    return str(doc.body.get("apiVersion", "")).startswith("proctor.dev/")
