"""Each namespace's own store (operator setting PROCTOR_STORE_NAMESPACES, chart `store.namespaces`): its
runs and Artifacts go to its store with its own Secret, never the operator's; namespaces without an entry
behave as before; `tenancy.requireNamespaceStore` refuses runs and holds Artifacts elsewhere; the chart
copies the default store's Secret into tenants' namespaces only when asked to."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from proctor.cluster import NotFound
from proctor.config import ConfigError, OperatorConfig
from proctor.controllers import services as services_module
from proctor.controllers.services import Services
from proctor.metrics import OperatorState
from proctor.reconcile.stores import resolve_store
from proctor.reconcile.tenancy import TenancyPolicy, tenancy_blockers
from proctor_jobs.store.fs import FilesystemStore
from tests.unit.chart_support import find, template_runner

TEAM_A = {"url": "s3://evals-team-a/runs", "credentialsSecret": "team-a-store"}
TEAM_B = {
    "url": "s3://evals-shared/team-b/",
    "credentialsSecret": "team-b-store",
    "endpoint": "https://s3.team-b.example",
    "region": "eu-west-1",
    "addressing": "path",
}


def config(**overrides) -> OperatorConfig:
    env = {
        "PROCTOR_STORE": "s3://proctor/proctor",
        "PROCTOR_STORE_CREDENTIALS_SECRET": "proctor-store",
        "PROCTOR_STORE_NAMESPACES": json.dumps({"team-a": TEAM_A, "team-b": TEAM_B}),
    }
    return OperatorConfig.from_mapping({**env, **overrides})


# --- the pure resolver -------------------------------------------------------------------------------


def test_a_namespace_with_an_entry_uses_its_store_and_its_own_secret():
    a = resolve_store(config(), "team-a", None)
    assert (a.url, a.env, a.secret, a.operator_secret) == (
        "s3://evals-team-a/runs",
        {},
        "team-a-store",
        "team-a-store",  # read by the operator in team-a, not its own credentials
    )
    b = resolve_store(config(), "team-b", {})
    assert (
        b.url
        == "s3://evals-shared/team-b?endpoint=https%3A%2F%2Fs3.team-b.example&region=eu-west-1&addressing=path"
    )
    assert b.env == {
        "AWS_ENDPOINT_URL": "https://s3.team-b.example",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PROCTOR_S3_ADDRESSING": "path",
    }
    assert (b.secret, b.operator_secret) == ("team-b-store", "team-b-store")


def test_an_entry_without_endpoint_or_region_takes_the_operators():
    settings = resolve_store(
        config(PROCTOR_S3_ENDPOINT="http://minio:9000", AWS_REGION="us-east-2"), "team-a", None
    )
    assert settings.url == "s3://evals-team-a/runs?endpoint=http%3A%2F%2Fminio%3A9000&region=us-east-2"
    assert settings.env["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_an_explicit_bucket_wins_and_keeps_the_namespaces_secret():
    settings = resolve_store(config(), "team-a", {"bucket": "mine", "prefix": "/evals/"})
    assert settings.url == "s3://mine/evals"
    # no credentialsSecretRef: still the namespace's own Secret, never the operator's shared one
    assert (settings.secret, settings.operator_secret) == ("team-a-store", "team-a-store")
    named = resolve_store(
        config(), "team-a", {"bucket": "mine", "credentialsSecretRef": {"name": "mine-keys"}}
    )
    assert (named.url, named.secret, named.operator_secret) == ("s3://mine/proctor", "mine-keys", "mine-keys")
    assert named.secret_from == "spec.storage.credentialsSecretRef"
    # the spec's endpoint beats the entry's
    spec_endpoint = resolve_store(config(), "team-b", {"endpoint": "http://here:9000"})
    assert spec_endpoint.env["AWS_ENDPOINT_URL"] == "http://here:9000"


@pytest.mark.parametrize(
    ("storage", "url", "env", "secret", "operator_secret"),
    [
        (None, "s3://proctor/proctor", {}, "proctor-store", None),
        ({"bucket": "b"}, "s3://b/proctor", {}, "proctor-store", None),
        (
            {"bucket": "b", "prefix": "p", "region": "r1", "credentialsSecretRef": {"name": "k"}},
            "s3://b/p?region=r1",
            {"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r1"},
            "k",
            "k",
        ),
    ],
)
def test_a_namespace_without_an_entry_behaves_as_before(storage, url, env, secret, operator_secret):
    for namespace in ("team-c", "", None):
        settings = resolve_store(config(), namespace, storage)
        assert (settings.url, settings.env, settings.secret, settings.operator_secret) == (
            url,
            env,
            secret,
            operator_secret,
        )
    # and with no entries at all, exactly the same
    bare = resolve_store(config(PROCTOR_STORE_NAMESPACES="{}"), "team-a", storage)
    assert (bare.url, bare.secret, bare.operator_secret) == (url, secret, operator_secret)


def test_each_namespace_gets_its_own_secret_name_through_services():
    rt = Services(config=config(), cluster=SimpleNamespace(), state=OperatorState())
    assert rt.store_settings(None, namespace="team-a")[2] == "team-a-store"
    assert rt.store_settings(None, namespace="team-b")[2] == "team-b-store"
    assert rt.store_settings(None, namespace="team-c")[2] == "proctor-store"
    assert rt.store_settings(None) == ("s3://proctor/proctor", {}, "proctor-store")  # no namespace: as before


# --- the operator's own clients -------------------------------------------------------------------------


class FakeCluster:
    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str]] = []
        self.created: list[dict] = []
        self.applied: list[dict] = []

    async def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        self.reads.append((namespace, name))
        if (namespace, name) not in self.secrets:
            raise NotFound(f"{namespace}/{name}")
        return self.secrets[(namespace, name)]

    async def create(self, obj: dict) -> bool:
        self.created.append(obj)
        return True

    async def apply(self, obj: dict) -> None:
        self.applied.append(obj)


@pytest.fixture
def clients(monkeypatch, tmp_path):
    """Store clients the operator builds: (url, credentials or None) each, backed by a directory."""
    built: list[tuple[str, dict | None]] = []

    def with_credentials(url, creds):
        built.append((url, creds))
        return FilesystemStore(str(tmp_path / f"store{len(built)}"))

    def ambient(url):
        built.append((url, None))
        return FilesystemStore(str(tmp_path / f"store{len(built)}"))

    monkeypatch.setattr(services_module, "_s3_with_credentials", with_credentials)
    monkeypatch.setattr(services_module, "open_store", ambient)
    return built


KEYS_A = {"AWS_ACCESS_KEY_ID": "team-a-id", "AWS_SECRET_ACCESS_KEY": "team-a-secret"}


async def test_the_operator_reads_the_namespaces_secret_in_that_namespace_once(clients):
    cluster = FakeCluster({("team-a", "team-a-store"): KEYS_A})
    rt = Services(config=config(), cluster=cluster, state=OperatorState())
    first = await rt.store_for("team-a", None)
    assert await rt.store_for("team-a", None) is first  # cached per (url, namespace, Secret)
    assert cluster.reads == [("team-a", "team-a-store")]
    assert clients == [("s3://evals-team-a/runs", KEYS_A)]
    # a namespace without an entry: the default store with the operator's own credentials, no Secret read
    await rt.store_for("team-c", None)
    assert cluster.reads == [("team-a", "team-a-store")]
    assert clients[-1] == ("s3://proctor/proctor", None)


async def test_a_rotated_secret_gets_a_new_client_and_a_revoked_one_none(clients, monkeypatch):
    cluster = FakeCluster({("team-a", "team-a-store"): KEYS_A})
    rt = Services(config=config(), cluster=cluster, state=OperatorState())
    now = [1000.0]
    monkeypatch.setattr(services_module.time, "monotonic", lambda: now[0])
    first = await rt.store_for("team-a", None)
    now[0] += services_module.SECRET_REFRESH_SECONDS - 1
    assert await rt.store_for("team-a", None) is first and len(cluster.reads) == 1  # not due yet
    now[0] += 1
    assert await rt.store_for("team-a", None) is first  # read again, unchanged: the same client
    assert len(cluster.reads) == 2 and len(clients) == 1
    rotated = {**KEYS_A, "AWS_SECRET_ACCESS_KEY": "rotated"}
    cluster.secrets[("team-a", "team-a-store")] = rotated
    now[0] += services_module.SECRET_REFRESH_SECONDS
    assert await rt.store_for("team-a", None) is not first
    assert clients[-1] == ("s3://evals-team-a/runs", rotated)
    del cluster.secrets[("team-a", "team-a-store")]
    now[0] += services_module.SECRET_REFRESH_SECONDS
    with pytest.raises(NotFound, match="team-a/team-a-store"):
        await rt.store_for("team-a", None)
    with pytest.raises(NotFound):  # and the old client is not used meanwhile
        await rt.store_for("team-a", None)


async def test_a_missing_namespace_secret_is_named_with_where_it_was_configured(clients):
    rt = Services(config=config(), cluster=FakeCluster({}), state=OperatorState())
    with pytest.raises(NotFound, match=r"Secret team-b/team-b-store \(the operator's store.namespaces entry"):
        await rt.store_for("team-b", None)
    assert clients == []


async def test_the_same_store_in_two_namespaces_is_two_clients_with_two_secrets(clients):
    """An explicit bucket named by runs of two namespaces: each namespace's client has its own keys."""
    keys_b = {"AWS_ACCESS_KEY_ID": "team-b-id", "AWS_SECRET_ACCESS_KEY": "b"}
    cluster = FakeCluster({("team-a", "team-a-store"): KEYS_A, ("team-b", "team-b-store"): keys_b})
    rt = Services(config=config(), cluster=cluster, state=OperatorState())
    storage = {
        "bucket": "shared",
        "prefix": "x",
        "endpoint": "http://s3:9000",
        "region": "r",
        "addressing": "path",
    }
    a = await rt.store_for("team-a", storage)
    b = await rt.store_for("team-b", storage)
    assert a is not b
    assert [creds for _, creds in clients] == [KEYS_A, keys_b]


# --- what the controllers give worker and ingest pods ------------------------------------------------------


async def test_an_ingest_job_in_a_namespace_with_an_entry_writes_to_its_store_with_its_secret(clients):
    from proctor.controllers import artifact

    cluster = FakeCluster({("team-a", "team-a-store"): KEYS_A})
    rt = Services(config=config(), cluster=cluster, state=OperatorState())
    body = {
        "metadata": {"namespace": "team-a", "name": "bench", "uid": "u1", "generation": 1},
        "spec": {
            "type": "benchmark",
            "format": "artifactsbench",
            "source": {"http": {"url": "https://example.org/b.jsonl", "sha256": "0" * 64}},
        },
    }
    await artifact.reconcile(rt, body, lambda *a: None, set())
    [job] = [o for o in cluster.created if o["kind"] == "Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--store") + 1] == "s3://evals-team-a/runs"
    assert container["envFrom"] == [{"secretRef": {"name": "team-a-store"}}]
    # the operator reads the ingest's outcome from the same store, with the same namespace's keys
    assert clients == [("s3://evals-team-a/runs", KEYS_A)]


def test_a_runs_worker_pods_get_the_namespaces_store_and_secret():
    from proctor.controllers.evalrun import _worker_context
    from proctor.k8s.jobs import build_stage_job

    rt = Services(config=config(), cluster=SimpleNamespace(), state=OperatorState())
    plan = SimpleNamespace(run_prefix="runs/team-b/r/u1")
    ctx = _worker_context(rt, "team-b", "r", "u1", {"parallelism": 1}, plan)
    job = build_stage_job(ctx, "render", "render", shards=1)
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "team-b-store"}}]
    args = container["args"]
    assert args[args.index("--store") + 1].startswith("s3://evals-shared/team-b?")
    assert {"name": "AWS_ENDPOINT_URL", "value": "https://s3.team-b.example"} in container["env"]
    # a namespace without an entry: the operator's default store and Secret name, as before
    other = _worker_context(rt, "team-c", "r", "u2", {"parallelism": 1}, plan)
    assert (other.store_url, other.credentials_secret) == ("s3://proctor/proctor", "proctor-store")


# --- the tenancy gate ----------------------------------------------------------------------------------


def test_a_run_in_a_namespace_without_a_store_is_refused_when_one_is_required():
    policy = TenancyPolicy.from_config(config(PROCTOR_STORE_PER_NAMESPACE_REQUIRED="true"))
    [refusal] = tenancy_blockers({}, "team-c", ["render"], policy)
    assert refusal.reason == "NotAllowed"
    assert refusal.message.startswith(
        "namespace 'team-c' has no store of its own (the operator's store.namespaces)"
    )
    assert tenancy_blockers({}, "team-a", ["render"], policy) == []
    assert tenancy_blockers({}, "team-b", ["render"], policy) == []


def test_an_artifact_in_a_namespace_without_a_store_is_held_and_stores_nothing_when_one_is_required():
    import asyncio

    from proctor.controllers import artifact

    class NoStore:
        async def store_for(self, namespace, storage):  # the default store: must not be reached
            raise AssertionError(f"the Artifact in {namespace} reached a store")

    rt = NoStore()
    rt.config = config(PROCTOR_STORE_PER_NAMESPACE_REQUIRED="true")
    body = {
        "metadata": {"namespace": "team-c", "name": "tasks", "generation": 1},
        "spec": {"source": {"inline": [{"id": "1"}]}, "type": "tasks"},
        "status": {},
    }
    status = asyncio.run(artifact.reconcile(rt, body, lambda *a: None, set(), {}))
    assert status["phase"] == "Pending"  # held, not Invalid: a store given later lets it go on
    assert status["conditions"][0]["reason"] == "NotAllowed"
    assert "refuse Artifacts in such a namespace" in status["message"]
    # Asked again with that status, nothing changes (no patch).
    assert asyncio.run(artifact.reconcile(rt, {**body, "status": status}, lambda *a: None, set(), {})) is None


def test_without_the_gate_a_namespace_without_a_store_is_allowed():
    assert tenancy_blockers({}, "team-c", ["render"], TenancyPolicy.from_config(config())) == []


def test_the_run_controller_applies_the_gate():
    from proctor.controllers.evalrun import _tenancy_blockers

    rt = Services(
        config=config(PROCTOR_STORE_PER_NAMESPACE_REQUIRED="true"),
        cluster=SimpleNamespace(),
        state=OperatorState(),
    )
    [refusal] = _tenancy_blockers(rt, "team-c", {}, None)
    assert refusal.reason == "NotAllowed" and "'team-c' has no store of its own" in refusal.message
    assert _tenancy_blockers(rt, "team-a", {}, None) == []


# --- the setting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stores", "says"),
    [
        ('{"team-a": ', "not valid JSON"),
        ('["team-a"]', "valid dictionary"),
        ({"team-a": {"url": "s3://b/p"}}, "[team-a][credentialsSecret]"),
        ({"team-a": {"url": "https://b/p", "credentialsSecret": "s"}}, "[team-a][url]"),
        ({"team-a": {"url": "s3://b/p?region=x", "credentialsSecret": "s"}}, "[team-a][url]"),
        ({"team-a": {"url": "s3://b/p", "credentialsSecret": "s", "secret": "x"}}, "[team-a][secret]"),
        ({"team-a": {"url": "s3://b/p", "credentialsSecret": "Bad_Name"}}, "[team-a][credentialsSecret]"),
        (
            {"team-a": {"url": "s3://b/p", "credentialsSecret": "s", "addressing": "x"}},
            "[team-a][addressing]",
        ),
        ({"Team_A": {"url": "s3://b/p", "credentialsSecret": "s"}}, "[Team_A]"),
        (
            {
                "team-a": {"url": "s3://b/p", "credentialsSecret": "s"},
                "team-b": {"url": "s3://b/p/q", "credentialsSecret": "t"},
            },
            "team-a and team-b share a store",
        ),
        (
            {"team-a": {"url": "s3://proctor", "credentialsSecret": "s"}},
            "team-a: s3://proctor overlaps the operator's default store",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_the_variable_and_the_namespace(stores, says):
    value = stores if isinstance(stores, str) else json.dumps(stores)
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_mapping({"PROCTOR_STORE_NAMESPACES": value})
    assert str(caught.value).startswith("PROCTOR_STORE_NAMESPACES") and says in str(caught.value)


def test_stores_apart_from_each_other_and_the_default_are_accepted():
    parsed = config(
        PROCTOR_STORE_NAMESPACES=json.dumps(
            {
                "team-a": {"url": "s3://b/team-a", "credentialsSecret": "s"},
                "team-b": {"url": "s3://b/team-ab", "credentialsSecret": "s"},  # a sibling, not nested
                "team-c": {"url": "s3://b/team-a", "credentialsSecret": "s", "endpoint": "http://other:9000"},
            }
        )
    )
    assert sorted(parsed.store_namespaces) == ["team-a", "team-b", "team-c"]
    assert parsed.store_namespaces["team-a"].credentials_secret == "s"


def test_the_gate_is_read_from_its_variable():
    assert config().store_per_namespace_required is False
    assert config(PROCTOR_STORE_PER_NAMESPACE_REQUIRED="true").store_per_namespace_required is True
    with pytest.raises(
        ConfigError, match=r"^PROCTOR_STORE_PER_NAMESPACE_REQUIRED=sometimes: .*valid boolean"
    ):
        config(PROCTOR_STORE_PER_NAMESPACE_REQUIRED="sometimes")


# --- the chart ---------------------------------------------------------------------------------------------


@pytest.fixture
def helm_template(tmp_path):
    return template_runner(tmp_path / "helm")


CREDENTIALS = [
    "--set", "watchNamespaces={team-a,team-b}",
    "--set", "store.credentials.create=true",
    "--set", "store.credentials.accessKeyId=AKIA",
    "--set", "store.credentials.secretAccessKey=s3cr3t",
]  # fmt: skip


def test_created_credentials_stay_in_the_release_namespace_by_default(helm_template):
    secrets = find(helm_template(*CREDENTIALS), "Secret")
    assert [(s["metadata"]["name"], s["metadata"]["namespace"]) for s in secrets] == [
        ("proctor-store", "proctor-system")
    ]


def test_credentials_are_copied_into_watched_namespaces_only_when_asked(helm_template):
    docs = helm_template(*CREDENTIALS, "--set", "store.credentials.copyToWatchedNamespaces=true")
    secrets = find(docs, "Secret", "proctor-store")
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["proctor-system", "team-a", "team-b"]
    assert {s["stringData"]["AWS_ACCESS_KEY_ID"] for s in secrets} == {"AKIA"}


def test_copying_without_creating_fails_the_render(tmp_path):
    from tests.unit.chart_support import CHART, helm

    done = helm(
        "template",
        "t",
        str(CHART),
        "--set",
        "store.credentials.copyToWatchedNamespaces=true",
        check=False,
        home=tmp_path,
    )
    assert done.returncode != 0 and "copyToWatchedNamespaces needs store.credentials.create" in done.stderr


def test_namespace_stores_reach_the_operator_as_json(helm_template):
    stores = {"team-a": TEAM_A, "team-b": TEAM_B}
    docs = helm_template(
        "--set-json", f"store.namespaces={json.dumps(stores)}", "--set", "tenancy.requireNamespaceStore=true"
    )
    [configmap] = find(docs, "ConfigMap", "t-proctor")
    assert json.loads(configmap["data"]["PROCTOR_STORE_NAMESPACES"]) == stores
    parsed = OperatorConfig.from_mapping(configmap["data"])
    assert parsed.store_per_namespace_required is True
    assert parsed.store_namespaces["team-b"].endpoint == "https://s3.team-b.example"
    assert resolve_store(parsed, "team-a", None).secret == "team-a-store"
    # by default: no entries, no gate (the model's own defaults)
    [default] = find(helm_template(), "ConfigMap", "t-proctor")
    assert json.loads(default["data"]["PROCTOR_STORE_NAMESPACES"]) == {}
    assert OperatorConfig.from_mapping(default["data"]).store_per_namespace_required is False


def test_the_chart_refuses_a_namespace_store_without_a_secret(tmp_path):
    from tests.unit.chart_support import CHART, helm

    done = helm(
        "template", "t", str(CHART), "--set-json", 'store.namespaces={"team-a":{"url":"s3://b/a"}}',
        check=False, home=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0 and "credentialsSecret" in done.stderr
