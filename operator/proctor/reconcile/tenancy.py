"""What a tenant may ask of the cluster in an EvalRun: the admin's gates, as a pure check.

Whoever may create an EvalRun chooses pods that run in the namespace: their images, environment,
runtime class, whether they are privileged and whether answers' code is executed there. The chart's
`tenancy` values (operator settings `PROCTOR_TENANCY_*`, and `PROCTOR_STORE_PER_NAMESPACE_REQUIRED`:
every run's namespace must have a store of its own) narrow that; a run that asks for more is held
`Pending` with reason `NotAllowed` and a message naming the field — never started and then failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proctor.reconcile.conditions import Blocker

if TYPE_CHECKING:
    from proctor.config import OperatorConfig

#: environment a run may never set on its pods: Proctor's own switches (the sandbox tier, commands),
#: store credentials, and what changes how the interpreter or the dynamic loader loads code
PROTECTED_ENV_PREFIXES = ("PROCTOR_", "AWS_", "LD_", "PYTHON")
#: stages that execute answers' code outside a browser (rendering runs it in the hermetic browser)
CODE_STAGES = frozenset({"oracle", "agent"})


@dataclass(frozen=True)
class TenancyPolicy:
    """The admin's gates. Empty `allowed_image_prefixes` / `allowed_runtime_classes`: no limit."""

    allowed_image_prefixes: tuple[str, ...] = ()
    allow_privileged: bool = False
    allowed_runtime_classes: tuple[str, ...] = ()
    #: namespaces where answers' code may run ("*": every watched namespace)
    code_execution_namespaces: tuple[str, ...] = ("*",)
    #: when runs must use a store of their namespace's own (tenancy.requireNamespaceStore): the
    #: namespaces that have one (the operator's store.namespaces); None: not required
    namespace_stores: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config: OperatorConfig) -> TenancyPolicy:
        """The gates the operator's settings (`PROCTOR_TENANCY_*`, `PROCTOR_STORE_*`) set."""
        return cls(
            allowed_image_prefixes=tuple(config.tenancy_allowed_image_prefixes),
            allow_privileged=config.tenancy_allow_privileged,
            allowed_runtime_classes=tuple(config.tenancy_allowed_runtime_classes),
            code_execution_namespaces=tuple(config.tenancy_code_execution_namespaces),
            namespace_stores=(
                frozenset(config.store_namespaces) if config.store_per_namespace_required else None
            ),
        )


def _images(spec: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(f"spec.images.{k}", v) for k, v in sorted((spec.get("images") or {}).items()) if v]
    agent = spec.get("agent") or {}
    if agent.get("image"):
        found.append(("spec.agent.image", agent["image"]))
    return found


def store_refusal(namespace: str, policy: TenancyPolicy, what: str = "runs") -> str | None:
    """Why nothing of `namespace` may be stored (the namespace has no store of its own while the admin
    requires one), else None. Runs and Artifacts alike: an Artifact's bundle would otherwise land in
    the default store every namespace shares."""
    if policy.namespace_stores is None or namespace in policy.namespace_stores:
        return None
    return (
        f"namespace {namespace!r} has no store of its own (the operator's store.namespaces); "
        f"the operator's settings (tenancy.requireNamespaceStore) refuse {what} in such a namespace "
        "until the admin gives it one"
    )


def tenancy_blockers(
    spec: dict[str, Any], namespace: str, stages: list[str], policy: TenancyPolicy
) -> list[Blocker]:
    """Why this run may not run here (empty when it may); `stages`: the benchmark's stage names."""
    refused: list[str] = []
    no_store = store_refusal(namespace, policy)
    if no_store:
        refused.append(no_store)
    if policy.allowed_image_prefixes:
        for field, image in _images(spec):
            if not image.startswith(policy.allowed_image_prefixes):
                allowed = ", ".join(policy.allowed_image_prefixes)
                refused.append(f"{field}: image {image!r} is not under an allowed prefix ({allowed})")
    if (spec.get("oracle") or {}).get("privileged") and not policy.allow_privileged:
        refused.append("spec.oracle.privileged: privileged pods are not allowed by the operator's settings")
    runtime = spec.get("runtimeClassName")
    if runtime and policy.allowed_runtime_classes and runtime not in policy.allowed_runtime_classes:
        allowed = ", ".join(policy.allowed_runtime_classes)
        refused.append(f"spec.runtimeClassName: {runtime!r} is not an allowed runtime class ({allowed})")
    for name in sorted(spec.get("env") or {}):
        if name.startswith(PROTECTED_ENV_PREFIXES):
            refused.append(
                f"spec.env.{name}: names starting {', '.join(PROTECTED_ENV_PREFIXES)} are Proctor's"
            )
    runs_code = sorted(CODE_STAGES.intersection(stages))
    allowed_here = {"*", namespace} & set(policy.code_execution_namespaces)
    if runs_code and not allowed_here:
        where = ", ".join(policy.code_execution_namespaces) or "none"
        refused.append(
            f"namespace {namespace!r}: answers' code may not be executed here "
            f"(stage {runs_code[0]}; allowed in: {where})"
        )
    return [Blocker("NotAllowed", message) for message in refused]
