"""Building blocks shared by the custom resources: the model base, metadata, sources, conditions.

Models are the single source of truth: `proctor crds` generates the CRD schemas from them, local
mode validates manifests with them, and the configuration reference in the docs is rendered from
them. Field names are camelCase on the wire, as Kubernetes users expect.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

GROUP = "proctor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class Model(BaseModel):
    """Strict, camelCase models: an unknown field is an error, not silently dropped."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=False,
        use_attribute_docstrings=True,
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _int_or_string(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise ValueError("expected a quantity such as 2, '500m' or '4Gi'")
    return str(value) if not isinstance(value, str) else value


#: A Kubernetes quantity (`2`, `500m`, `4Gi`); accepted as a number or a string.
Quantity = Annotated[
    str,
    BeforeValidator(_int_or_string),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}),
]

#: Free-form JSON kept verbatim (inline records, extra options).
FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class ObjectMeta(BaseModel):
    """The parts of Kubernetes metadata Proctor reads; everything else is allowed and ignored."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    namespace: str = Field(default="default", pattern=DNS_LABEL, max_length=63)
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class LocalObjectReference(Model):
    """A reference to an object in the same namespace."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)


class SecretKeyReference(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    key: str = Field(min_length=1)


class S3Source(Model):
    uri: str = Field(pattern=r"^s3://[^/]+/.+", description="s3://bucket/key of a JSON or JSONL file")


class HttpSource(Model):
    url: str = Field(pattern=r"^https?://")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the expected sha256 of the download")


class ConfigMapSource(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    key: str = Field(min_length=1)


class FileSource(Model):
    path: str = Field(min_length=1, description="a local JSON/JSONL file or directory (local mode only)")


_EXACTLY_ONE_SOURCE = {
    "rule": "[has(self.s3), has(self.http), has(self.configMap), has(self.inline), has(self.file)]"
    ".filter(x, x).size() == 1",
    "message": "exactly one of s3, http, configMap, inline, file must be set",
}


class Source(Model):
    """Where records come from. Exactly one of the fields is set."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_EXACTLY_ONE_SOURCE]})

    s3: S3Source | None = None
    http: HttpSource | None = None
    config_map: ConfigMapSource | None = None
    inline: list[FreeForm] | None = Field(default=None, description="records inline, for small sets")
    file: FileSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        chosen = [n for n in ("s3", "http", "config_map", "inline", "file") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                _EXACTLY_ONE_SOURCE["message"] + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(
            n for n in ("s3", "http", "configMap", "inline", "file") if self.dump().get(n) is not None
        )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """A Kubernetes-style condition: what is (or is not) true of the object, and why."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class ResourceRequirements(Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class Toleration(Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None
