"""The Helm chart rendered by the real helm: lint, several values combinations, the values schema, RBAC.

The install itself (the operator really running as the chart's ServiceAccount, a run reaching
Succeeded, uninstall leaving nothing behind) is tests/e2e/test_helm_install.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.chart_support import CHART, REPO, find, helm, template_runner

# Every Kubernetes API call in operator/proctor/cluster.py -> the (group, resource, verb) it needs.
# A new call there fails test_rbac_grants_exactly_what_the_operator_calls until it is added here and
# to the chart's rules (charts/proctor/templates/_helpers.tpl, "proctor.rules").
CLIENT_CALLS = {
    "create_namespaced_job": ("batch", "jobs", "create"),
    "patch_namespaced_job": ("batch", "jobs", "patch"),
    # Cluster.apply: a server-side apply that makes a missing object is authorised as create too
    "patch_namespaced_deployment": [("apps", "deployments", "patch"), ("apps", "deployments", "create")],
    "patch_namespaced_service": [("", "services", "patch"), ("", "services", "create")],
    "patch_namespaced_network_policy": [
        ("networking.k8s.io", "networkpolicies", "patch"),
        ("networking.k8s.io", "networkpolicies", "create"),
    ],
    "create_namespaced_custom_object": ("proctor.dev", "artifacts", "create"),
    "create_namespaced_event": ("", "events", "create"),
    "list_namespaced_pod": ("", "pods", "list"),
    "read_namespaced_pod_log": ("", "pods/log", "get"),
    "read_namespaced_config_map": ("", "configmaps", "get"),
    "read_namespaced_secret": ("", "secrets", "get"),
    # status of all three kinds (handlers/daemons.py patches whichever it reconciled)
    "patch_namespaced_custom_object_status": [
        ("proctor.dev", f"{plural}/status", "patch") for plural in ("evalruns", "judgeservers", "artifacts")
    ],
    # the leader Lease: granted by a separate Role in the release namespace
    "read_namespaced_lease": None,
    "create_namespaced_lease": None,
    "replace_namespaced_lease": None,
}
# Entries of a dispatch table that no controller calls: deliberately not granted.
NEVER_CALLED: dict[str, str] = {}
# kopf's watches (operator/proctor/handlers/indexes.py): list + watch of the three kinds and Proctor's
# children.
WATCHES = [
    ("proctor.dev", "evalruns"),
    ("proctor.dev", "judgeservers"),
    ("proctor.dev", "artifacts"),
    ("batch", "jobs"),
    ("apps", "deployments"),
    ("", "services"),
    ("networking.k8s.io", "networkpolicies"),
]


@pytest.fixture
def helm_template(tmp_path):
    return template_runner(tmp_path / "helm")


# kopf's own writes (operator/proctor/handlers/): its finalizer on objects a daemon works on and on runs
# whose data is deleted with them, and the delete-data handler's progress annotations.
KOPF_WRITES = {("proctor.dev", plural, "patch") for plural in ("evalruns", "judgeservers", "artifacts")}
# Owner references with blockOwnerDeletion (k8s/names.py) need update on the owner's finalizers
# subresource under OwnerReferencesPermissionEnforcement.
OWNER_FINALIZERS = {
    ("proctor.dev", f"{plural}/finalizers", "update") for plural in ("evalruns", "judgeservers", "artifacts")
}


def expected_rules() -> set[tuple[str, str, str]]:
    wanted: set[tuple[str, str, str]] = set(KOPF_WRITES) | OWNER_FINALIZERS
    for need in CLIENT_CALLS.values():
        if need is None:
            continue
        wanted |= set(need) if isinstance(need, list) else {need}
    for group, resource in WATCHES:
        wanted |= {(group, resource, "list"), (group, resource, "watch")}
    return wanted


def flatten(rules: list[dict]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in rules:
        assert "*" not in rule.get("verbs", []) and "*" not in rule.get("resources", []), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def test_helm_lint_strict_passes_with_defaults_and_with_every_option_set(tmp_path):
    everything = tmp_path / "everything.yaml"
    everything.write_text(yaml.safe_dump(FULL_VALUES))
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART), home=tmp_path).stdout
    assert (
        "0 chart(s) failed"
        in helm("lint", "--strict", str(CHART), "-f", str(everything), home=tmp_path).stdout
    )


FULL_VALUES = {
    "replicaCount": 2,
    "watchNamespaces": ["team-a", "team-b"],
    "image": {"repository": "registry.example/proctor-operator", "tag": "dev", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "operator": {"verbose": True, "resyncSeconds": 1.5, "env": {"LOG_FORMAT": "json"}, "extraArgs": []},
    "store": {
        "url": "s3://evals/prod",
        "endpoint": "https://minio.storage.svc:9000",
        "region": "eu-west-1",
        "addressing": "path",
        "credentialsSecret": "evals-store",
        "credentials": {
            "create": True,
            "copyToWatchedNamespaces": True,
            "accessKeyId": "AKIA",
            "secretAccessKey": "s3cr3t",
        },
        "namespaces": {"team-a": {"url": "s3://evals-team-a/prod", "credentialsSecret": "team-a-store"}},
        "egressCIDRs": ["10.0.12.0/24"],
    },
    "tenancy": {"requireNamespaceStore": True},
    "worker": {
        "images": {"default": "registry.example/worker:dev", "render": "registry.example/render:dev"},
        "command": ["/opt/proctor/bin/proctor-worker"],
        "runtimeClassName": "gvisor",
        "nodeSelector": {"pool": "eval"},
        "tolerations": [{"key": "eval", "operator": "Exists", "effect": "NoSchedule"}],
        "runAsUser": 20000,
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "8Gi"}},
        "gpu": {"resource": "amd.com/gpu", "nodeSelector": {"gpu": "mi300"}, "tolerations": []},
    },
    "networkPolicy": {"enabled": False},
    "nodeSelector": {"pool": "system"},
    "tolerations": [{"key": "system", "operator": "Exists"}],
    "priorityClassName": "system-cluster-critical",
    "metrics": {
        "port": 9090,
        "serviceMonitor": {
            "enabled": True,
            "interval": "15s",
            "labels": {"release": "kube-prometheus-stack"},
        },
        "judgePodMonitor": {"enabled": True},
    },
    "liveness": {"port": 9091},
    "dashboards": {"folder": "Evaluation", "namespace": "monitoring"},
}


def test_defaults_render_the_operator_and_nothing_optional(helm_template):
    docs = helm_template()
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ClusterRole", "t-proctor"),
        ("ClusterRole", "t-proctor-discovery"),
        ("ClusterRoleBinding", "t-proctor"),
        ("ClusterRoleBinding", "t-proctor-discovery"),
        ("ConfigMap", "t-proctor"),
        ("ConfigMap", "t-proctor-dashboard-judge"),
        ("ConfigMap", "t-proctor-dashboard-operator"),
        ("ConfigMap", "t-proctor-dashboard-runs"),
        ("Deployment", "t-proctor"),
        ("Role", "t-proctor-leader"),
        ("RoleBinding", "t-proctor-leader"),
        ("Service", "t-proctor-metrics"),
        ("ServiceAccount", "t-proctor"),
    ]
    [deployment] = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    from proctor import __version__

    assert container["image"] == f"ghcr.io/proctor-dev/proctor-operator:{__version__}"
    assert pod["serviceAccountName"] == "t-proctor"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "healthz": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    # Two replicas can never both reconcile: leader election on the release namespace.
    assert "--leader-election-namespace=proctor-system" in container["args"]
    assert {"name": "PROCTOR_LEADER_ELECTION_NAMESPACE", "value": "proctor-system"} in container["env"]
    [service] = find(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def chart_environment(docs: list[dict]) -> dict[str, str]:
    """What the rendered operator container's environment holds: the ConfigMap, then its own env."""
    [deployment] = find(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [config] = find(docs, "ConfigMap", "t-proctor")
    env = {name: str(value) for name, value in config["data"].items()}
    # operator.env is the user's free-form escape hatch; the chart's own variables are PROCTOR_*.
    env.update({e["name"]: e["value"] for e in container.get("env", []) if e["name"].startswith("PROCTOR_")})
    return env


def checked_configuration(env: dict[str, str]):
    """The OperatorConfig an environment gives, after checking every variable is one the model declares
    (operator/proctor/config.py): a key the model does not know, or a value of the wrong type, fails."""
    from proctor.config import OperatorConfig, unknown_variables

    unknown = unknown_variables(env)
    assert not unknown, f"the chart sets variables the operator does not read: {unknown}"
    return OperatorConfig.from_mapping(env)


def operator_config(docs: list[dict]):
    """The OperatorConfig the rendered operator container would build from its environment."""
    return checked_configuration(chart_environment(docs))


def test_the_charts_configuration_is_checked_against_the_model(helm_template):
    """Every key of the chart's ConfigMap (and the container's PROCTOR_* env) is a declared setting of
    the right type; a misspelt key or a wrong type is caught by the same check."""
    from proctor.config import ConfigError

    env = chart_environment(helm_template())
    assert checked_configuration(env).store_credentials_secret == "proctor-store"
    with pytest.raises(AssertionError, match=r"PROCTOR_RESYNC_SECOND: .*did you mean PROCTOR_RESYNC_SECONDS"):
        checked_configuration({**env, "PROCTOR_RESYNC_SECOND": "3"})
    with pytest.raises(ConfigError, match=r"^PROCTOR_WORKER_RUN_AS_USER=root: .*valid integer"):
        checked_configuration({**env, "PROCTOR_WORKER_RUN_AS_USER": "root"})


def test_every_value_reaches_the_operators_configuration(helm_template, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(FULL_VALUES))
    docs = helm_template("-f", str(values))
    config = operator_config(docs)
    assert config.namespaces == ["team-a", "team-b"]
    assert config.store_url == "s3://evals/prod"
    assert config.store_endpoint == "https://minio.storage.svc:9000"
    assert (config.store_region, config.store_addressing) == ("eu-west-1", "path")
    assert config.store_credentials_secret == "evals-store"
    assert config.store_egress_cidrs == ["10.0.12.0/24"]
    assert config.store_namespaces["team-a"].url == "s3://evals-team-a/prod"
    assert config.store_namespaces["team-a"].credentials_secret == "team-a-store"
    assert config.store_per_namespace_required is True
    assert config.images == {
        "default": "registry.example/worker:dev",
        "render": "registry.example/render:dev",
    }
    assert config.image_for("judge") == "registry.example/worker:dev"
    assert config.worker_command == ["/opt/proctor/bin/proctor-worker"]
    assert config.ingest_command == ["proctor", "ingest"]
    assert config.runtime_class_name == "gvisor"
    assert config.node_selector == {"pool": "eval"}
    assert config.tolerations == [{"key": "eval", "operator": "Exists", "effect": "NoSchedule"}]
    assert config.run_as_user == 20000
    assert config.default_resources == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "8Gi"},
    }
    assert (config.gpu_resource, config.gpu_node_selector, config.gpu_tolerations) == (
        "amd.com/gpu",
        {"gpu": "mi300"},
        [],
    )
    assert config.network_policy is False
    assert config.resync_seconds == 1.5
    [deployment] = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["nodeSelector"] == {"pool": "system"} and pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    [container] = pod["containers"]
    assert container["image"] == "registry.example/proctor-operator:dev"
    assert {"--metrics-port=9090", "--liveness-port=9091", "--verbose"} <= set(container["args"])
    assert {"secretRef": {"name": "evals-store"}} in container["envFrom"]
    # The Secret is created where the operator reads it and, copyToWatchedNamespaces being set, in each
    # watched namespace (tests/unit/test_namespace_stores.py: only the release namespace by default).
    secrets = find(docs, "Secret", "evals-store")
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["proctor-system", "team-a", "team-b"]
    [monitor] = find(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    [pods] = find(docs, "PodMonitor")
    assert pods["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert pods["spec"]["selector"]["matchLabels"]["proctor.dev/component"] == "judge"
    dashboards = [d for d in docs if "-dashboard-" in d["metadata"]["name"]]
    assert {d["metadata"]["namespace"] for d in dashboards} == {"monitoring"}


def test_pacing_and_leader_election_reach_the_operator(helm_template):
    """The chart sets PROCTOR_LEADER_ELECTION_NAMESPACE (and the flag), PROCTOR_JUDGE_RESYNC_SECONDS
    and PROCTOR_STATUS_INTERVAL_SECONDS; OperatorConfig.from_env must read them, or two replicas would
    both reconcile and the pacing values would be ignored."""
    docs = helm_template(
        "--set", "operator.judgeResyncSeconds=7", "--set", "operator.statusIntervalSeconds=4"
    )  # fmt: skip
    config = operator_config(docs)
    assert config.leader_election_namespace == "proctor-system"
    assert config.judge_resync_seconds == 7
    assert config.status_interval_seconds == 4


def test_defaults_reach_the_operator_as_its_own_defaults(helm_template):
    from proctor.config import DEFAULT_IMAGE, OperatorConfig

    config = operator_config(helm_template())
    base = OperatorConfig()
    assert config.images == {"default": DEFAULT_IMAGE}
    assert config.namespaces == [] and config.store_credentials_secret == "proctor-store"
    assert config.leader_election_namespace == "proctor-system"
    # Every other setting: the chart's default is the model's default (one place decides each).
    chart_decides = {"store_credentials_secret", "leader_election_namespace"}
    for field in sorted(set(OperatorConfig.model_fields) - chart_decides):
        assert getattr(config, field) == getattr(base, field), field


def test_rbac_grants_exactly_what_the_operator_calls(helm_template):
    source = (REPO / "operator" / "proctor" / "cluster.py").read_text()
    called = set(
        re.findall(r"(?:\bself\.(?:core|batch|apps|networking|custom)|(?<![\w.])api)\.(\w+)", source)
    )
    unknown = called - set(CLIENT_CALLS) - set(NEVER_CALLED)
    assert not unknown, f"new API calls in cluster.py, not in the chart's RBAC (or this table): {unknown}"
    controllers = "\n".join(
        p.read_text() for p in (REPO / "operator" / "proctor" / "controllers").glob("*.py")
    )
    for kind in NEVER_CALLED.values():
        assert f'cluster.patch("{kind}"' not in controllers, f"{kind} is patched now: grant it"
    handlers = (REPO / "operator" / "proctor" / "handlers" / "indexes.py").read_text()
    for _, plural in WATCHES:
        assert f'"{plural}"' in handlers, f"kopf no longer watches {plural}? update WATCHES"

    docs = helm_template()
    [role] = find(docs, "ClusterRole", "t-proctor")
    assert flatten(role["rules"]) == expected_rules()
    [discovery] = find(docs, "ClusterRole", "t-proctor-discovery")
    assert flatten(discovery["rules"]) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }  # cluster-wide kopf needs no Namespace objects
    [leader] = find(docs, "Role", "t-proctor-leader", "proctor-system")
    named = [r for r in leader["rules"] if r.get("resourceNames")]
    assert flatten(leader["rules"]) == {
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "update"),
        ("coordination.k8s.io", "leases", "create"),
    }
    assert named and all(r["resourceNames"] == ["proctor-operator"] for r in named)
    # Nothing the operator never does: no delete, no exec, no listing Secrets.
    everything = {r for d in find(docs, "ClusterRole") + find(docs, "Role") for r in flatten(d["rules"])}
    assert not {
        r for r in everything if r[2] in ("delete", "deletecollection", "escalate", "bind", "impersonate")
    }
    assert not {r for r in everything if r[1] == "secrets" and r[2] != "get"}
    # Of pods' subresources only the log, read (a crash-looping judge's last lines): no exec, attach.
    assert {r for r in everything if r[1].startswith("pods/")} <= {("", "pods/log", "get")}


def test_watch_namespaces_get_namespaced_roles_and_no_cluster_wide_grant(helm_template):
    docs = helm_template("--set", "watchNamespaces={team-a,team-b}")
    assert [d["metadata"]["name"] for d in find(docs, "ClusterRole")] == ["t-proctor-discovery"]
    [discovery] = find(docs, "ClusterRole")
    # kopf matches the given namespaces against Namespace objects (read-only, names only).
    assert flatten(discovery["rules"]) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    roles = {d["metadata"]["namespace"]: d for d in find(docs, "Role", "t-proctor")}
    assert set(roles) == {"team-a", "team-b"}
    for namespace, role in roles.items():
        assert flatten(role["rules"]) == expected_rules()
        [binding] = find(docs, "RoleBinding", "t-proctor", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "t-proctor",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "t-proctor", "namespace": "proctor-system"}
        ]
    [config] = find(docs, "ConfigMap", "t-proctor")
    assert config["data"]["PROCTOR_NAMESPACES"] == "team-a,team-b"


def test_leader_election_off_means_standalone_and_no_lease_role(helm_template):
    docs = helm_template("--set", "leaderElection.enabled=false")
    [deployment] = find(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--standalone" in container["args"]
    assert not [e for e in container.get("env", []) if e["name"] == "PROCTOR_LEADER_ELECTION_NAMESPACE"]
    assert not find(docs, "Role", "t-proctor-leader")


def test_rbac_and_service_account_can_be_brought_by_the_user(helm_template):
    docs = helm_template(
        "--set",
        "rbac.create=false",
        "--set",
        "serviceAccount.create=false",
        "--set",
        "serviceAccount.name=evals",
    )
    assert not [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "ClusterRole", "RoleBinding")]
    [deployment] = find(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "evals"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["--set", "metrics.port=http"], "/metrics/port"),
        (["--set", "store.addressing=sideways"], "/store/addressing"),
        (["--set", "store.url=https://bucket"], "/store/url"),
        (["--set", "worker.runAsUser=0"], "/worker/runAsUser"),
        (["--set", "worker.imagez.render=x"], "additional properties 'imagez'"),
        (["--set", "replicas=2"], "additional properties 'replicas'"),
        (["--set", "metrics.serviceMonitor.interval=soon"], "/metrics/serviceMonitor/interval"),
        (
            ["--set-json", 'worker.tolerations=[{"key":"a","operator":"Sometimes"}]'],
            "/worker/tolerations/0/operator",
        ),
        (["--set", "store.credentials.create=true"], "needs store.credentials.accessKeyId"),
        (
            ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"],
            "needs metrics.service.enabled",
        ),
    ],
)
def test_a_wrong_value_fails_the_render_naming_it(args, message, tmp_path):
    done = helm("template", "t", str(CHART), *args, check=False, home=tmp_path)
    assert done.returncode != 0, f"{args} rendered"
    assert message in done.stderr, done.stderr


def test_chart_crds_are_the_generated_crds():
    ours = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert ours == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    for name in ours:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), name
    from proctor.api import crdgen

    assert crdgen.stale(CHART / "crds") == []


def test_crds_are_not_templated_so_helm_never_deletes_them(helm_template):
    # Helm installs crds/ once and never upgrades or deletes them: runs survive an uninstall.
    assert not [d for d in helm_template() if d["kind"] == "CustomResourceDefinition"]
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(
        p.name for p in (REPO / "crds").iterdir() if p.suffix == ".yaml"
    )


def test_schema_covers_every_value_in_values_yaml():
    """values.yaml and values.schema.json describe the same keys (a key the schema lacks would be refused)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value, node, path):
        if isinstance(value, dict) and node.get("type") == "object" and "properties" in node:
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key} is in values.yaml but not in the schema"
                walk(sub, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "")


def test_worker_images_default_to_the_chart_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    from proctor import __version__
    from proctor.config import DEFAULT_IMAGE

    assert chart["version"] == chart["appVersion"] == __version__
    assert f"ghcr.io/proctor-dev/proctor-worker:{chart['appVersion']}" == DEFAULT_IMAGE
    assert Path(CHART / "values.yaml").read_text().count("ghcr.io/proctor-dev/proctor-worker") == 1
