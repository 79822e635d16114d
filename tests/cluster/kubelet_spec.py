"""Pure interpretation of a pod spec for the test kubelet: env, `$(VAR)` expansion, the downward API,
quantities, and the rewriting of mount paths to host directories.

Kept free of I/O so the rules (which mirror the real kubelet's) can be read, and unit-tested, apart
from the process handling in kubelet_pod.py.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"

_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("500m", "64Gi", "2") as a Decimal."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2) or ""])


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined names are replaced, `$$` escapes, anything else stays."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """The downward API's `fieldRef.fieldPath` for this pod (the pod IP is always 127.0.0.1)."""
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    match = _FIELD_KEY.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path not in simple:
        raise ValueError(f"unsupported fieldRef.fieldPath {path!r}")
    return str(simple[path])


def resource_value(
    pod: Mapping[str, Any],
    ref: Mapping[str, Any],
    default_container: str | None,
    allocatable: Mapping[str, str],
) -> str:
    """`resourceFieldRef`: a container's request/limit in units of `divisor` (rounded up, like the
    kubelet); an unset limit reads as the node's allocatable."""
    name = ref.get("containerName") or default_container
    containers = [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]
    container = next((c for c in containers if c["name"] == name), containers[-1])
    kind, _, resource = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(resource)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(resource)
    if value is None:
        value = allocatable.get(resource, "0") if kind == "limits" else "0"
    divisor = quantity(ref.get("divisor") or "1")
    return str(math.ceil(quantity(value) / divisor))


def decode_data(obj: Mapping[str, Any], secret: bool) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys as bytes (Secrets and binaryData are base64 on the wire)."""
    data: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        data[key] = base64.b64decode(value) if secret else value.encode()
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    return data


def build_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    base: Mapping[str, str],
    lookup: Callable[[str, str, bool], dict[str, bytes] | None],
    allocatable: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment, in the kubelet's order: base, `envFrom`, then `env` entries.

    `lookup(kind, name, optional)` fetches a ConfigMap ("configmap") or Secret ("secret") as decoded
    bytes, returning None for a missing optional one and raising for a missing required one.
    """
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(key)
            if ref:
                data = lookup(kind, ref["name"], bool(ref.get("optional")))
                for name, value in (data or {}).items():
                    env[prefix + name] = value.decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[name] = resource_value(pod, source["resourceFieldRef"], container["name"], allocatable)
        else:
            kind, key = (
                ("configmap", "configMapKeyRef")
                if "configMapKeyRef" in source
                else ("secret", "secretKeyRef")
            )
            ref = source[key]
            optional = bool(ref.get("optional"))
            data = lookup(kind, ref["name"], optional)
            if data is None or ref["key"] not in data:
                if optional:
                    continue
                raise LookupError(
                    f"couldn't find key {ref['key']} in {kind} {pod['metadata']['namespace']}/{ref['name']}"
                )
            env[name] = data[ref["key"]].decode(errors="replace")
    return env


class PathRewriter:
    """Maps a container's mount paths to host directories inside strings.

    The host cannot mount anything into a process's view of the filesystem, so the test kubelet
    rewrites the *strings* the process sees instead: every occurrence of a volumeMount's
    `mountPath` (as a whole path prefix: followed by `/`, the end, or a non-path character) in env
    values, command, args and workingDir becomes the volume's host directory. One regex pass with
    the longest mount paths first, so a rewritten path is never rewritten again.

    `keep` are host directories that stand in for the image's own files (the code under test and
    its Python environment). A path inside one is left alone even when a mount path is its prefix:
    with the repository cloned under /tmp and an emptyDir mounted at /tmp, the worker command
    `/tmp/clone/.venv/bin/python` names the image's Python, not a file in the emptyDir.
    """

    def __init__(self, mounts: Mapping[str, Path], keep: Sequence[str] = ()) -> None:
        self.mounts = {k.rstrip("/"): str(v) for k, v in mounts.items() if k.rstrip("/")}
        self.keep = tuple(k.rstrip("/") for k in keep if k.rstrip("/"))
        names = sorted(self.mounts, key=len, reverse=True)
        self._regex = (
            re.compile(
                r"(?<![A-Za-z0-9_.\-])("
                + "|".join(re.escape(n) for n in names)
                + r")(?=/|$|[^A-Za-z0-9_.\-])"
            )
            if names
            else None
        )

    def __call__(self, text: str) -> str:
        if self._regex is None:
            return text
        return self._regex.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        rest = match.string[match.start() :]
        for kept in self.keep:
            if rest.startswith(kept) and (len(rest) == len(kept) or rest[len(kept)] == "/"):
                return match.group(1)
        return self.mounts[match.group(1)]
