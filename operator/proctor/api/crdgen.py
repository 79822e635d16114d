"""Generate structural CustomResourceDefinitions from the pydantic models.

Kubernetes requires *structural* OpenAPI v3 schemas: every node typed, no `$ref`, no `anyOf` of
different types, `additionalProperties` only for maps. Pydantic emits JSON Schema 2020-12, so this
module inlines references, folds `Optional[X]` into X, turns `const` into `enum`, converts numeric
`exclusiveMinimum`, and gives nested objects an empty default so their own defaults apply.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from proctor.api.artifact import Artifact
from proctor.api.common import GROUP, VERSION
from proctor.api.evalrun import EvalRun
from proctor.api.immutability import transition_rules
from proctor.api.judgeserver import JudgeServer

_DROP = {"title", "discriminator", "examples", "$schema"}
_FORMATS = {"int32", "int64", "float", "double", "byte", "date", "date-time", "password", "uri"}

RESOURCES: list[dict[str, Any]] = [
    {
        "model": EvalRun,
        "plural": "evalruns",
        "short": ["er", "evalrun"],
        # Rules on the whole object: they compare spec with the old spec and read the old status.
        "root_rules": transition_rules,
        "columns": [
            {"name": "Benchmark", "type": "string", "jsonPath": ".status.benchmark"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
            {"name": "Score", "type": "number", "jsonPath": ".status.score"},
            {"name": "Metric", "type": "string", "jsonPath": ".status.scoreName", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    },
    {
        "model": JudgeServer,
        "plural": "judgeservers",
        "short": ["js", "judge"],
        "columns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Model", "type": "string", "jsonPath": ".status.model"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    },
    {
        "model": Artifact,
        "plural": "artifacts",
        "short": ["art"],
        "columns": [
            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
            {"name": "Format", "type": "string", "jsonPath": ".spec.format"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Items", "type": "integer", "jsonPath": ".status.items"},
            {"name": "SHA256", "type": "string", "jsonPath": ".status.sha256", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    },
]


def structural(node: Any, defs: dict[str, Any], in_status: bool = False) -> Any:
    """Convert one JSON-Schema node (and its children) to a structural OpenAPI v3 node."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        target.update({k: v for k, v in node.items() if k in ("description", "default")})
        return structural(target, defs, in_status)
    if node.get("x-kubernetes-int-or-string"):
        out = {"x-kubernetes-int-or-string": True}
        if "description" in node:
            out["description"] = node["description"]
        if "default" in node and not in_status:
            out["default"] = node["default"]
        return out
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in node:
            variants = [v for v in node.pop(combinator) if v.get("type") != "null"]
            if len(variants) != 1:
                raise ValueError(f"cannot express {combinator} of {variants} in a structural schema")
            merged = {**variants[0], **{k: v for k, v in node.items() if k != "default" or v is not None}}
            return structural(merged, defs, in_status)
    out: dict[str, Any] = {}
    if "const" in node:
        node.setdefault("enum", [node.pop("const")])
    for key, value in node.items():
        if key in _DROP or (key == "default" and (value is None or in_status)):
            continue
        if key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value, defs, in_status)
            continue  # `false` is how pydantic says "forbid"; Kubernetes prunes/rejects unknown fields itself
        if key == "properties":
            out[key] = {name: structural(sub, defs, in_status) for name, sub in value.items()}
            continue
        if key == "items":
            out[key] = structural(value, defs, in_status)
            continue
        if key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
            continue
        if key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
            continue
        if key == "format" and value not in _FORMATS:
            continue
        out[key] = value
    if out.get("type") == "object" and "properties" in out and not in_status:
        required = set(out.get("required", []))
        for name, prop in out["properties"].items():
            # A nested object with defaults of its own gets `{}` so those defaults apply when omitted.
            wants_default = name not in required and prop.get("type") == "object" and "default" not in prop
            if wants_default and _was_non_optional(node, name) and "properties" in prop:
                prop["default"] = {}
    return out


def _was_non_optional(node: dict[str, Any], name: str) -> bool:
    prop = node.get("properties", {}).get(name, {})
    return "anyOf" not in prop or not any(v.get("type") == "null" for v in prop["anyOf"])


def crd_for(resource: dict[str, Any]) -> dict[str, Any]:
    model = resource["model"]
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    props = schema["properties"]
    spec = structural(props["spec"], defs)
    status = structural(props["status"], defs, in_status=True)
    kind = model.__name__
    root = {
        "type": "object",
        "description": (model.__doc__ or kind).strip().splitlines()[0],
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if "root_rules" in resource:
        root["x-kubernetes-validations"] = resource["root_rules"]()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource['plural']}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": resource["plural"],
                "singular": kind.lower(),
                "shortNames": resource["short"],
                "categories": ["proctor"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": resource["columns"],
                }
            ],
        },
    }


def render_all() -> dict[str, str]:
    """File name -> YAML text for every CRD."""
    files = {}
    for resource in RESOURCES:
        crd = crd_for(resource)
        header = "# Generated by `proctor crds` from operator/proctor/api; do not edit by hand.\n"
        files[f"{crd['metadata']['name']}.yaml"] = header + yaml.safe_dump(crd, sort_keys=False, width=100)
    return files


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def stale(out_dir: Path) -> list[str]:
    """Names of CRD files in `out_dir` that differ from what the models generate (or are missing/extra)."""
    expected = render_all()
    problems = [
        n for n, text in expected.items() if not (out_dir / n).is_file() or (out_dir / n).read_text() != text
    ]
    extra = [p.name for p in out_dir.glob("*.yaml") if p.name not in expected] if out_dir.is_dir() else []
    return problems + extra
