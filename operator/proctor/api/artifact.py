"""Artifact: an immutable, content-addressed bundle of records in the store."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from proctor.api.common import Condition, Model, ObjectMeta, Source

ArtifactType = Literal["benchmark", "answers", "results"]
ArtifactFormat = Literal["artifactsbench", "vision2code", "humanevalv", "artevalbench", "jsonl"]
ArtifactPhase = Literal["Pending", "Ready", "Invalid"]


class ArtifactSpec(Model):
    type: ArtifactType = Field(description="what the records are: a task set, a model's answers, or results")
    format: ArtifactFormat = Field(description="the record format the bundle is validated against")
    source: Source
    description: str | None = None


class ArtifactStatus(Model):
    phase: ArtifactPhase = "Pending"
    sha256: str | None = None
    uri: str | None = None
    items: int | None = None
    categories: dict[str, int] = Field(default_factory=dict)
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None


class Artifact(Model):
    """An immutable, content-addressed bundle of records (tasks, answers or results) in the store."""

    api_version: Literal["proctor.dev/v1alpha1"] = "proctor.dev/v1alpha1"
    kind: Literal["Artifact"] = "Artifact"
    metadata: ObjectMeta
    spec: ArtifactSpec
    status: ArtifactStatus | None = None
