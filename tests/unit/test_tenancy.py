"""The admin's gates on what an EvalRun may ask for (reconcile/tenancy.py): every refusal names the
field, and the defaults refuse only privileged pods and Proctor's own environment."""

from __future__ import annotations

from proctor.reconcile.tenancy import TenancyPolicy, tenancy_blockers

DEFAULT = TenancyPolicy()


def messages(spec, policy=DEFAULT, namespace="team", stages=("oracle",)):
    return [b.message for b in tenancy_blockers(spec, namespace, list(stages), policy)]


def test_defaults_allow_an_ordinary_run_and_refuse_privileged_pods():
    assert messages({"images": {"oracle": "ghcr.io/x/worker:1"}, "runtimeClassName": "gvisor"}) == []
    [refusal] = messages({"oracle": {"privileged": True}})
    assert refusal.startswith("spec.oracle.privileged:")
    assert messages({"oracle": {"privileged": True}}, TenancyPolicy(allow_privileged=True)) == []


def test_a_run_cannot_set_proctors_own_switches_or_the_loader():
    """PROCTOR_SANDBOX_TIER=none would lower the sandbox of the answers it evaluates; LD_PRELOAD and
    PYTHONPATH change what the worker itself runs."""
    refused = messages({"env": {"PROCTOR_SANDBOX_TIER": "none", "LD_PRELOAD": "/x.so", "HF_HOME": "/h"}})
    assert [m.split(":")[0] for m in refused] == ["spec.env.LD_PRELOAD", "spec.env.PROCTOR_SANDBOX_TIER"]


def test_images_and_runtime_classes_outside_the_allowed_lists_are_named():
    policy = TenancyPolicy(allowed_image_prefixes=("registry.corp/",), allowed_runtime_classes=("gvisor",))
    spec = {
        "images": {"oracle": "registry.corp/proctor/worker:1", "render": "docker.io/evil/chrome"},
        "agent": {"image": "registry.corp.evil.com/agent"},
        "runtimeClassName": "runc",
    }
    refused = messages(spec, policy)
    assert [m.split(":")[0] for m in refused] == [
        "spec.images.render",
        "spec.agent.image",
        "spec.runtimeClassName",
    ]


def test_code_execution_can_be_switched_off_per_namespace():
    policy = TenancyPolicy(code_execution_namespaces=("evals",))
    assert messages({}, policy, namespace="evals") == []
    [refusal] = messages({}, policy, namespace="team", stages=("oracle",))
    assert "answers' code may not be executed here" in refusal and "team" in refusal
    # judging screenshots runs no answer outside the hermetic browser: allowed anywhere
    assert messages({}, policy, namespace="team", stages=("render", "judge")) == []
