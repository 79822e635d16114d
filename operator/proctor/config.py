"""The operator's own configuration: where the store is, which images workers use, how pods run.

One declared model (pydantic-settings): every setting once, with its type, default, bounds and the
environment variable(s) it is read from (the Helm chart's ConfigMap sets them; `proctor operator`
flags override a few). A bad value is refused at start-up with the variable's name.

`OperatorConfig(...)` reads nothing: tests and builders get the defaults plus what they pass.
`OperatorConfig.from_env()` / `from_mapping(...)` read variables. Pure data: no I/O beyond that.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict, SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from proctor import __version__

DEFAULT_IMAGE = f"ghcr.io/proctor-dev/proctor-worker:{__version__}"
#: Variables the chart sets for the Python runtime, not for Proctor (allowed beside the settings).
RUNTIME_VARIABLES = frozenset({"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "TMPDIR"})

log = logging.getLogger("proctor.config")


def _quantity(value: Any) -> Any:
    # `cpu: 1` in values.yaml arrives as a number; Kubernetes takes it as the quantity "1".
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Quantity = Annotated[str, BeforeValidator(_quantity)]


class ConfigError(ValueError):
    """A setting the operator cannot use; the message names each variable and what is wrong."""


#: a namespace's name (a DNS label) and a Secret's (a DNS subdomain), as Kubernetes accepts them
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NamespaceName = Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]


class NamespaceStore(BaseModel):
    """One namespace's own store (`PROCTOR_STORE_NAMESPACES`, chart `store.namespaces`): its runs and
    Artifacts default to `url`, and the operator, worker and ingest pods use the Secret
    `credentialsSecret` of that namespace (never the operator's). Unset endpoint/region/addressing
    fall back to the operator's."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    url: str = Field(description="s3://bucket/prefix (endpoint, region, addressing are fields of their own)")
    credentials_secret: str = Field(
        alias="credentialsSecret",
        pattern=_DNS_SUBDOMAIN,
        max_length=253,
        description="a Secret in that namespace with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    )
    endpoint: str | None = Field(None, pattern=r"^https?://", description="S3 endpoint URL")
    region: str | None = Field(None, min_length=1, description="S3 region")
    addressing: Literal["auto", "path", "virtual"] | None = Field(None, description="S3 addressing style")

    @field_validator("url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment or " " in value:
            raise ValueError(f"expected s3://bucket/prefix without a query string, not {value!r}")
        return value.rstrip("/")


def _s3_place(url: str, endpoint: str | None) -> tuple[str, str, str]:
    """(endpoint, bucket, prefix) of an s3:// URL: where its keys live."""
    parts = urlsplit(url)
    return endpoint or "", parts.netloc, parts.path.strip("/")


def _within(inner: tuple[str, str, str], outer: tuple[str, str, str]) -> bool:
    """Whether every key under `inner` is also under `outer` (same endpoint and bucket, nested prefix)."""
    return inner[:2] == outer[:2] and (
        not outer[2] or inner[2] == outer[2] or inner[2].startswith(outer[2] + "/")
    )


def setting(default: Any, *env: str, doc: str, **bounds: Any) -> Any:
    """A field read from the first of `env` that is set (non-empty); `doc` is its description."""
    return Field(default, validation_alias=AliasChoices(*env), description=doc, **bounds)


# The mapping `from_mapping` reads; None (the default) means no environment source at all.
_SOURCE: ContextVar[Mapping[str, str] | None] = ContextVar("proctor_config_source", default=None)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ or a ConfigMap's data)."""

    def __init__(self, settings_cls: type[BaseSettings], mapping: Mapping[str, str]) -> None:
        self._mapping = mapping  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        # pydantic-settings would name the field, not the variable; say which variable is not JSON.
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError as exc:
            names = _names(field)
            used = next((n for n in names if self.env_vars.get(n) is not None), names[0])
            raise ConfigError(f"{used}: not valid JSON ({exc}): {_shorten(value)}") from None


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,  # the chart writes "" for "not set"
        populate_by_name=True,  # OperatorConfig(store_url=...) in code and tests
        extra="forbid",
    )

    namespaces: Annotated[list[str], NoDecode] = setting(
        [], "PROCTOR_NAMESPACES", doc="namespaces to watch, comma-separated; empty: the whole cluster"
    )
    store_url: str = setting(
        "s3://proctor/proctor",
        "PROCTOR_STORE",
        doc="the default store of runs and artifacts (s3://bucket/prefix); EvalRun.spec.storage overrides",
    )
    store_endpoint: str | None = setting(
        None, "PROCTOR_S3_ENDPOINT", "AWS_ENDPOINT_URL", doc="S3 endpoint URL (MinIO, another region's)"
    )
    store_region: str | None = setting(None, "AWS_REGION", "AWS_DEFAULT_REGION", doc="S3 region")
    store_addressing: Literal["auto", "path", "virtual"] = setting(
        "auto", "PROCTOR_S3_ADDRESSING", doc="S3 addressing style (path for MinIO)"
    )
    store_credentials_secret: str | None = setting(
        None,
        "PROCTOR_STORE_CREDENTIALS_SECRET",
        doc="a Secret in each run's namespace with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for worker pods",
    )
    store_namespaces: dict[NamespaceName, NamespaceStore] = setting(
        {},
        "PROCTOR_STORE_NAMESPACES",
        doc='JSON map: namespace -> its own store {"url": "s3://bucket/prefix", "credentialsSecret": '
        '"name", optional "endpoint", "region", "addressing"}; its runs and Artifacts use that store '
        "and that namespace's Secret (spec.storage still overrides)",
    )
    store_per_namespace_required: bool = setting(
        False,
        "PROCTOR_STORE_PER_NAMESPACE_REQUIRED",
        doc="refuse (Pending, NotAllowed) runs and Artifacts in a namespace without an entry in "
        "PROCTOR_STORE_NAMESPACES",
    )
    store_egress_cidrs: list[str] = setting(
        [],
        "PROCTOR_STORE_EGRESS_CIDRS",
        doc="JSON list of CIDRs worker pods may reach for the store (DNS is always allowed)",
    )
    images: dict[str, str] = setting(
        {"default": DEFAULT_IMAGE},
        "PROCTOR_WORKER_IMAGES",
        doc='JSON map of worker images by stage kind ("default" for the rest)',
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = setting(
        "IfNotPresent", "PROCTOR_IMAGE_PULL_POLICY", doc="worker pods' imagePullPolicy"
    )
    worker_command: list[str] = setting(
        ["proctor-worker"],
        "PROCTOR_WORKER_COMMAND",
        doc="JSON list: how a worker pod starts the shard loop (the image's entry point)",
        min_length=1,
    )
    ingest_command: list[str] = setting(
        ["proctor", "ingest"],
        "PROCTOR_INGEST_COMMAND",
        doc="JSON list: how an ingest Job validates and stores a large Artifact source",
        min_length=1,
    )
    aggregate_command: list[str] = setting(
        ["proctor", "aggregate"],
        "PROCTOR_AGGREGATE_COMMAND",
        doc="JSON list: how a run's aggregate Job writes its summary, reports and records",
        min_length=1,
    )
    calibrate_command: list[str] = setting(
        ["proctor", "judge", "check"],
        "PROCTOR_CALIBRATE_COMMAND",
        doc="JSON list: how a JudgeServer's calibration Job asks the judge the calibration items",
        min_length=1,
    )
    ingest_max_bytes: int = setting(
        512 * 1024 * 1024,
        "PROCTOR_INGEST_MAX_BYTES",
        doc="largest S3 or HTTP source an ingest Job reads (streamed, refused past it)",
        gt=0,
    )
    ingest_memory: Quantity = setting(
        "2Gi",
        "PROCTOR_INGEST_MEMORY",
        doc="memory limit of ingest pods (the source is held once parsed: allow a few times maxBytes)",
    )
    runtime_class_name: str | None = setting(
        None, "PROCTOR_RUNTIME_CLASS", doc="runtime class of every worker pod (e.g. gvisor)"
    )
    node_selector: dict[str, str] = setting(
        {}, "PROCTOR_WORKER_NODE_SELECTOR", doc="JSON map: node selector of worker pods"
    )
    tolerations: list[dict[str, Any]] = setting(
        [], "PROCTOR_WORKER_TOLERATIONS", doc="JSON list: tolerations of worker pods"
    )
    run_as_user: int = setting(
        10001, "PROCTOR_WORKER_RUN_AS_USER", doc="uid (and gid) of worker pods; never root", ge=1
    )
    worker_seccomp_profile: dict[str, Any] = setting(
        {"type": "RuntimeDefault"},
        "PROCTOR_WORKER_SECCOMP_PROFILE",
        # RuntimeDefault forbids the user namespaces the sandbox's `userns` tier needs; the chart ships
        # a Localhost profile that allows them (docs/security.md).
        doc="JSON: the seccomp profile of worker pods",
    )
    gpu_resource: str = setting(
        "nvidia.com/gpu", "PROCTOR_GPU_RESOURCE", doc="resource a per-item Job with `gpu: true` requests"
    )
    gpu_node_selector: dict[str, str] = setting(
        {}, "PROCTOR_GPU_NODE_SELECTOR", doc="JSON map: extra node selector of GPU pods"
    )
    gpu_tolerations: list[dict[str, Any]] = setting(
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "PROCTOR_GPU_TOLERATIONS",
        doc="JSON list: extra tolerations of GPU pods",
    )
    network_policy: bool = setting(
        True, "PROCTOR_NETWORK_POLICY", doc="a default-deny egress NetworkPolicy per run"
    )
    # What a tenant (whoever may create an EvalRun) may ask of the cluster (reconcile/tenancy.py).
    tenancy_allowed_image_prefixes: list[str] = setting(
        [],
        "PROCTOR_TENANCY_ALLOWED_IMAGE_PREFIXES",
        doc="JSON list: images a run may name must start with one of these (empty: any image)",
    )
    tenancy_allow_privileged: bool = setting(
        False, "PROCTOR_TENANCY_ALLOW_PRIVILEGED", doc="whether a run may ask for privileged oracle pods"
    )
    tenancy_allowed_runtime_classes: list[str] = setting(
        [],
        "PROCTOR_TENANCY_ALLOWED_RUNTIME_CLASSES",
        doc="JSON list: runtime classes a run may name (empty: any)",
    )
    tenancy_code_execution_namespaces: list[str] = setting(
        ["*"],
        "PROCTOR_TENANCY_CODE_EXECUTION_NAMESPACES",
        doc='JSON list: namespaces where answers\' code may run outside the browser ("*": all)',
    )
    resync_seconds: float = setting(
        3.0,
        "PROCTOR_RESYNC_SECONDS",
        doc="seconds between passes of an active run when nothing wakes it",
        gt=0,
    )
    judge_resync_seconds: float = setting(
        5.0, "PROCTOR_JUDGE_RESYNC_SECONDS", doc="seconds between passes of each JudgeServer", gt=0
    )
    status_interval_seconds: float = setting(
        10.0,
        "PROCTOR_STATUS_INTERVAL_SECONDS",
        doc="a progress-only status patch at most this often (phase changes go out at once)",
        ge=0,
    )
    status_patches_per_second: float = setting(
        1.0,
        "PROCTOR_STATUS_PATCHES_PER_SECOND",
        doc="progress-only status patches of a namespace's active runs together, at most this many a "
        "second (with many runs each one's interval grows, so API load does not grow with them)",
        gt=0,
    )
    leader_election_namespace: str = setting(
        "",
        "PROCTOR_LEADER_ELECTION_NAMESPACE",
        doc="hold a Lease in this namespace (empty: no election, a single replica)",
    )
    leader_lease_seconds: int = setting(
        30,
        "PROCTOR_LEADER_LEASE_SECONDS",
        doc="how long a leader's Lease holds without renewal (renewed every third of it): a standby takes "
        "over within this long of the leader's death",
        ge=6,
    )
    judge_recheck_seconds: float = setting(
        60.0,
        "PROCTOR_JUDGE_RECHECK_SECONDS",
        doc="seconds between functional checks of a Ready judge (a failure makes it Degraded)",
        gt=0,
    )
    metrics_retention_seconds: float = setting(
        600.0,
        "PROCTOR_METRICS_RETENTION_SECONDS",
        doc="how long a finished run's metric series stay before they are dropped",
        ge=0,
    )
    default_resources: dict[str, dict[str, Quantity]] = setting(
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "PROCTOR_WORKER_RESOURCES",
        doc="JSON: resources of worker pods whose run does not set spec.resources",
    )
    metrics_port: int = setting(
        8080,
        "PROCTOR_METRICS_PORT",
        doc="port of /metrics (0: off); --metrics-port overrides",
        ge=0,
        le=65535,
    )
    liveness_port: int = setting(
        8081,
        "PROCTOR_LIVENESS_PORT",
        doc="port of kopf's /healthz (0: off); --liveness-port overrides",
        ge=0,
        le=65535,
    )
    bind: str = setting(
        "0.0.0.0", "PROCTOR_BIND", doc="address /metrics and /healthz bind to; --bind overrides"
    )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else value

    @field_validator("images")
    @classmethod
    def _default_image(cls, value: dict[str, str]) -> dict[str, str]:
        # Naming only some kinds keeps the default image for the rest.
        return {"default": DEFAULT_IMAGE, **value}

    @field_validator("store_egress_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        # A bad CIDR would otherwise surface as a refused NetworkPolicy for every run.
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @field_validator("store_namespaces")
    @classmethod
    def _stores_apart(cls, value: dict[str, NamespaceStore], info: ValidationInfo) -> Any:
        # A namespace's Secret may reach everything under its store's prefix: two namespaces sharing
        # (or nesting) a prefix, or one overlapping the default store (every other namespace's runs
        # and Artifacts), would reach each other's data.
        endpoint = info.data.get("store_endpoint")
        default = str(info.data.get("store_url") or "")
        shared = _s3_place(default.split("?")[0], endpoint) if default.startswith("s3://") else None
        names = sorted(value)
        for i, name in enumerate(names):
            place = _s3_place(value[name].url, value[name].endpoint or endpoint)
            if shared is not None and (_within(shared, place) or _within(place, shared)):
                raise ValueError(
                    f"{name}: {value[name].url} overlaps the operator's default store ({default}); "
                    "a namespace's store must be apart from every other namespace's data"
                )
            for other in names[i + 1 :]:
                there = _s3_place(value[other].url, value[other].endpoint or endpoint)
                if _within(place, there) or _within(there, place):
                    raise ValueError(
                        f"{name} and {other} share a store ({value[name].url}, {value[other].url}); "
                        "each namespace needs a prefix of its own"
                    )
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources: Any) -> tuple[Any, ...]:
        # Only from_mapping/from_env read variables: no .env file, no secrets directory, and
        # OperatorConfig(...) in code sees no environment at all.
        mapping = _SOURCE.get()
        return (init_settings,) if mapping is None else (init_settings, _MappingSource(settings_cls, mapping))

    @classmethod
    def from_env(cls, **overrides: Any) -> OperatorConfig:
        """The operator's configuration from its environment and `overrides` (field -> value, e.g.
        command-line flags). A PROCTOR_* variable a letter or two off a setting is warned of (a typo
        is not silent); the workers' own variables (PROCTOR_JUDGE_URL, ...) are not settings here."""
        import os

        for problem in unknown_variables(name for name in os.environ if name.startswith("PROCTOR_")):
            if "did you mean" in problem:
                log.warning("%s (ignored)", problem)
        return cls.from_mapping(os.environ, **overrides)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str], **overrides: Any) -> OperatorConfig:
        """The configuration from `env` (variable -> value) and `overrides` (field -> value); a bad
        value raises ConfigError naming each variable."""
        with _reading(env):
            try:
                return cls(**overrides)
            except ValidationError as exc:
                raise ConfigError(_describe(exc, env)) from None
            except SettingsError as exc:  # a JSON variable that does not parse (_MappingSource)
                cause = exc.__cause__
                raise (cause if isinstance(cause, ConfigError) else ConfigError(str(exc))) from None

    def image_for(self, kind: str, overrides: dict[str, str | None] | None = None) -> str:
        overrides = overrides or {}
        return (
            overrides.get(kind)
            or overrides.get("default")
            or self.images.get(kind)
            or self.images.get("default")
            or DEFAULT_IMAGE
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


@contextmanager
def _reading(env: Mapping[str, str]) -> Iterator[None]:
    token = _SOURCE.set(env)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def _names(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    return [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else [str(alias)]


def variables() -> dict[str, str]:
    """Every variable the configuration reads -> the field it sets."""
    return {name: field for field, info in OperatorConfig.model_fields.items() for name in _names(info)}


def unknown_variables(names: Any) -> list[str]:
    """One message per name in `names` that no setting reads (with the nearest known one)."""
    known = variables()
    problems = []
    for name in sorted(set(names) - set(known) - RUNTIME_VARIABLES):
        near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.9)
        hint = f" (did you mean {near[0]}?)" if near else ""
        problems.append(f"{name}: not a setting of the operator{hint}")
    return problems


def _shorten(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(exc: ValidationError, env: Mapping[str, str]) -> str:
    """One line per error: the variable (or field), its value as given, what is wrong."""
    lines = []
    for error in exc.errors(include_url=False):
        head, *rest = [str(part) for part in error["loc"]] or ["?"]
        where = head + "".join(f"[{p}]" for p in rest)
        given = env.get(head)
        value = f"={_shorten(given)!s}" if given is not None else ""
        lines.append(f"{where}{value}: {error['msg']}")
    return "; ".join(lines)
