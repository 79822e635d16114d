"""Typed models of Proctor's custom resources (API group `proctor.dev`, version `v1alpha1`)."""

from proctor.api.artifact import Artifact, ArtifactSpec, ArtifactStatus
from proctor.api.common import API_VERSION, GROUP, VERSION, Condition, ObjectMeta, Source
from proctor.api.evalrun import EvalRun, EvalRunSpec, EvalRunStatus, StageStatus
from proctor.api.judgeserver import JudgeServer, JudgeServerSpec, JudgeServerStatus

KINDS = {"Artifact": Artifact, "EvalRun": EvalRun, "JudgeServer": JudgeServer}

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "Artifact",
    "ArtifactSpec",
    "ArtifactStatus",
    "Condition",
    "EvalRun",
    "EvalRunSpec",
    "EvalRunStatus",
    "JudgeServer",
    "JudgeServerSpec",
    "JudgeServerStatus",
    "ObjectMeta",
    "Source",
    "StageStatus",
]
