"""One artifact, start to finish, inside one worker invocation (one Job per artifact in a cluster).

    fetch the archive -> workspace without `_agent_eval/` -> agent phase (own deadline)
    -> put `_agent_eval/` back -> evaluator phase (own deadline) -> verdict -> record

Both phases run in the same workspace in the same process tree because what the agent does to its
environment (files, tools installed for its user, a built artifact) is exactly what the evaluator checks;
carrying that between two Jobs would mean shipping whole filesystems through the store.

Outcomes: `ok` with the score when the evaluator gave a verdict (a poor score is still `ok`); `failed`
with the reason when the artifact could not be scored: its files are missing, its image cannot run here,
the evaluator is missing, timed out or crashed, or a phase could not be started at all.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from proctor_jobs.arteval.archive import ArchiveError, ArchiveRef, fetch_archive
from proctor_jobs.arteval.phases import Phase, PhaseResult, in_pod, python_tools, run_phase, shell
from proctor_jobs.arteval.scoring import STAGE_TITLES, Verdict, parse_verdict
from proctor_jobs.arteval.workspace import Workspace
from proctor_jobs.benchmarks.base import StageContext, StageProcessor
from proctor_jobs.layout import safe_name
from proctor_jobs.records import ItemRecord, failed, ok

#: time for fetching, extracting and uploading around the two phases (part of the Job's deadline)
SETUP_MARGIN_S = 600
LOG_EXCERPT = 2000

TASK_PROMPT = (
    "Reproduce the research artifact in the current folder. Its README, {readme}, explains step by step "
    "how to set up the environment, build or install the artifact, prepare the benchmark data and run "
    "the experiments. Follow it to the end without asking for confirmation. Work only inside this folder "
    "and your home folder."
)


def phase_deadlines(item: dict[str, Any], config: dict[str, Any]) -> tuple[float, float]:
    """(agent, evaluator) deadlines in seconds: the agent gets the task's budget, capped by the spec."""
    agent = config.get("agent")
    agent_s = min(float(item["timeout_s"]), float(agent["timeout_s"])) if agent else 0.0
    return agent_s, float(config["evaluator_timeout_s"])


def job_deadline(item: dict[str, Any], config: dict[str, Any]) -> int:
    agent_s, evaluator_s = phase_deadlines(item, config)
    return int(agent_s + evaluator_s + SETUP_MARGIN_S)


class ArtifactProcessor(StageProcessor):
    """Runs the per-artifact pipeline; one artifact at a time (each is heavy and has its own deadline)."""

    concurrency = 1

    def __init__(self, config: dict[str, Any], stage: str = "oracle") -> None:
        self.config = config
        self.stage = stage

    async def prepare(self, items, upstream, ctx) -> None:
        # The worker's own safety net: the phases enforce their deadlines themselves, well inside this.
        self.item_deadline_s = max((job_deadline(item, self.config) for item in items), default=None)

    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        run = _ArtifactRun(item, self.config, ctx, self.stage)
        try:
            return await run.execute()
        finally:
            await asyncio.to_thread(run.cleanup)


class _ArtifactRun:
    def __init__(self, item: dict[str, Any], config: dict[str, Any], ctx: StageContext, stage: str) -> None:
        self.item, self.config, self.ctx, self.stage = item, config, ctx, stage
        self.id = item["id"]
        self.evidence: dict[str, str] = {}
        name = safe_name(self.id)
        workspaces = Path(os.environ.get("PROCTOR_WORKSPACE") or ctx.scratch)
        self.private = ctx.scratch / f"private-{name}"  # the archive; never visible to a phase
        self.shared = ctx.scratch / f"phase-{name}"  # read-only things the phases may see
        root_name = safe_name(Path(item.get("artifact_dir") or self.id).name or "artifact")
        self.workspace = Workspace(workspaces / "arteval" / name, self.private / "artifact.tar.gz", root_name)
        agent_s, evaluator_s = phase_deadlines(item, config)
        self.data: dict[str, Any] = {
            "artifact_id": item["artifact_id"],
            "expected_score": item["expected_score"],
            "env": item["env"],
            "isolation_mode": config["isolation"],
            "deadlines_s": {"agent": agent_s, "evaluator": evaluator_s},
            "agent": None,
            "evaluator": None,
            "stages": [],
            "max_score": 4,
            "reached_expected": False,
            "leak_guard": "no agent",
            "notes": list(item.get("notes") or []),
        }

    # -- the steps -------------------------------------------------------------------------------------

    async def execute(self) -> ItemRecord:
        refusal = self._refusal()
        if refusal:
            return self._failed("refused", refusal)
        if not self.item.get("archive"):
            return self._failed(
                "artifact_unavailable",
                "the task has no artifact_archive, so its files are not available to Proctor "
                "(pack them with `python -m proctor_jobs.arteval.pack`)",
            )
        try:
            self.private.mkdir(mode=0o700, parents=True, exist_ok=True)
            ref = ArchiveRef.parse(self.item["archive"])
            self.data["archive_sha256"] = await asyncio.to_thread(
                fetch_archive, ref, self.workspace.archive, self.ctx.store
            )
            self.data["files_extracted"] = await asyncio.to_thread(self.workspace.prepare)
        except ArchiveError as exc:
            return self._failed("artifact_unavailable", f"artifact files: {exc}")
        tools = python_tools(self.shared / "bin")

        if self.config.get("agent"):
            agent = await self._agent_phase(tools)
            if agent.status == "crashed":
                return self._failed("agent_not_started", f"the agent could not be started: {agent.error}")

        try:
            self.data["notes"].extend(await asyncio.to_thread(self.workspace.restore_evaluator))
        except ArchiveError as exc:
            return self._failed("artifact_unavailable", f"restoring the evaluator: {exc}")
        evaluator = self.item["evaluator"]
        if evaluator["kind"] == "python" and not (self.workspace.root / evaluator["path"]).is_file():
            return self._failed(
                "evaluator_missing", f"the evaluator {evaluator['path']} is not in the artifact"
            )
        result = await self._evaluator_phase(tools)
        if result.status == "crashed":
            return self._failed(
                "evaluator_not_started", f"the evaluator could not be started: {result.error}"
            )
        if result.status == "timeout":
            return self._failed(
                "evaluator_timeout",
                f"the evaluator timed out after {self.data['deadlines_s']['evaluator']:g} s",
            )
        verdict = parse_verdict(
            result.stdout, result.stderr, result.exit_code, crashed=result.signal is not None
        )
        if verdict.score is None:
            why = "; ".join(verdict.notes) or result.summary
            return self._failed("evaluator_crashed", f"the evaluator gave no score ({result.summary}): {why}")
        await self._keep_workspace()
        return self._scored(verdict)

    def _refusal(self) -> str | None:
        env = self.item["env"]
        if self.config["isolation"] == "pod" and not in_pod():
            return (
                "isolation 'pod' runs the agent unconfined and is allowed only in a per-artifact pod; "
                "use isolation 'sandbox' (the default) on this machine"
            )
        if env != "local" and not in_pod() and not self.config.get("run_images_on_host"):
            return (
                f"the artifact needs the container image {env!r}, which local mode cannot run: run it on "
                "a cluster, or set spec.oracle.runImagesOnHost: true if this machine provides what the "
                "image does"
            )
        return None

    def _env(self, tools: Path, deadline_s: float) -> dict[str, str]:
        ws = self.workspace
        return {
            "PATH": f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(ws.home),
            "TMPDIR": str(ws.tmp),
            "ARTEVAL_ARTIFACT_ID": self.item["artifact_id"],
            "ARTEVAL_ROOT": str(ws.root),
            "ARTEVAL_README": self.item.get("readme") or "",
            "ARTEVAL_DEADLINE_S": f"{deadline_s:g}",
            "ARTEVAL_GPU": "1" if self.item.get("gpu") else "0",
        }

    async def _agent_phase(self, tools: Path) -> PhaseResult:
        agent = self.config["agent"]
        agent_dir = self.shared / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        for name, content in (agent.get("files") or {}).items():
            target = (agent_dir / name).resolve()
            if not target.is_relative_to(agent_dir.resolve()):
                raise ValueError(f"spec.agent.files: {name!r} would land outside the agent's folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            target.chmod(0o755)
        deadline = self.data["deadlines_s"]["agent"]
        readme = self.item.get("readme") or ""
        task = TASK_PROMPT.format(readme=readme)
        values = {
            "{readme}": readme,
            "{task}": task,
            "{root}": str(self.workspace.root),
            "{agentDir}": str(agent_dir),
            "{artifactId}": self.item["artifact_id"],
        }
        argv = [_substitute(arg, values) for arg in agent["command"]]
        env = self._env(tools, deadline)
        env.update(
            ARTEVAL_TASK=task,
            ARTEVAL_AGENT_DIR=str(agent_dir),
            ARTEVAL_ENABLE_SKILL="1" if self.item.get("enable_skill") else "0",
            ARTEVAL_ENABLE_SUBAGENT="1" if self.item.get("enable_subagent") else "0",
        )
        env.update(agent.get("env") or {})
        env.update({name: os.environ[name] for name in agent.get("pass_env") or [] if name in os.environ})
        phase = Phase(
            "agent",
            argv,
            self.workspace.base,
            self.workspace.root,
            deadline,
            env=env,
            network=bool(agent.get("network")),
            memory_mb=agent.get("memory_mb"),
            readable=[agent_dir, tools],
        )
        result = await run_phase(
            phase, self.config["isolation"], self.ctx.scratch / f"sandbox-agent-{id(self)}"
        )
        self._log_evidence("agent.log", argv, result)
        self.data["agent"] = {
            **result.to_dict(),
            "command": argv,
            "outcome": result.summary,
            "log_excerpt": _excerpt(result),
        }
        strict = result.tier in ("root", "userns")
        self.data["leak_guard"] = "strict" if strict else "weak"
        if not strict:
            self.data["notes"].append(
                f"the agent ran without namespaces ({result.tier or 'unknown'} isolation): _agent_eval/ "
                "was not on disk, but an agent with the worker's user could reach the store"
            )
        return result

    async def _evaluator_phase(self, tools: Path) -> PhaseResult:
        evaluator = self.item["evaluator"]
        if evaluator["kind"] == "python":
            argv = [str(tools / "python"), evaluator["path"]]
        else:
            argv = [shell(), "-c", evaluator["command"]]
        deadline = self.data["deadlines_s"]["evaluator"]
        phase = Phase(
            "evaluator",
            argv,
            self.workspace.base,
            self.workspace.root,
            deadline,
            env=self._env(tools, deadline),
            readable=[tools],
        )
        result = await run_phase(
            phase, self.config["isolation"], self.ctx.scratch / f"sandbox-eval-{id(self)}"
        )
        self._log_evidence("evaluator.log", argv, result)
        self.data["evaluator"] = {
            **result.to_dict(),
            "command": argv,
            "outcome": result.summary,
            "log_excerpt": _excerpt(result),
        }
        return result

    async def _keep_workspace(self) -> None:
        if not self.item.get("keep_container"):
            return
        limit = int(self.config.get("keep_limit_mb", 512)) * 1024 * 1024
        dest = self.private / "workspace.tar.gz"
        try:
            path, note = await asyncio.to_thread(self.workspace.snapshot, dest, limit)
        except ArchiveError as exc:
            path, note = None, str(exc)
        self.data["notes"].append(note)
        if path is not None:
            key = self.ctx.layout.evidence(self.stage, self.id, "workspace.tar.gz")
            await asyncio.to_thread(self.ctx.store.put_file, key, path, "application/gzip")
            self.evidence["workspace.tar.gz"] = key

    # -- records ---------------------------------------------------------------------------------------

    def _log_evidence(self, name: str, argv: list[str], result: PhaseResult) -> None:
        text = (
            f"$ {' '.join(argv)}\n# {result.summary} after {result.duration_s:.1f} s; "
            f"isolation: {', '.join(result.isolation) or result.tier}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}\n"
        )
        self.evidence[name] = self.ctx.put_evidence(self.id, name, text.encode(), "text/plain; charset=utf-8")

    def _failed(self, outcome: str, reason: str) -> ItemRecord:
        self.data["outcome"] = outcome
        return failed(self.id, self.stage, reason, score=None, data=self.data, evidence=self.evidence)

    def _scored(self, verdict: Verdict) -> ItemRecord:
        expected = self.item["expected_score"]
        self.data.update(
            outcome="scored",
            score=verdict.score,
            max_score=verdict.max_score,
            score_source=verdict.source,
            stages=[s.__dict__ for s in verdict.stages],
            reached_expected=verdict.score >= expected,
        )
        self.data["notes"].extend(verdict.notes)
        reason = None
        if verdict.score < expected:
            failing = [STAGE_TITLES.get(s.name, s.label) for s in verdict.stages if not s.passed]
            reason = f"score {verdict.score}/{verdict.max_score}, expected {expected}" + (
                f": {', '.join(failing)} failed" if failing else ""
            )
        return ok(
            self.id,
            self.stage,
            score=float(verdict.score),
            reason=reason,
            data=self.data,
            evidence=self.evidence,
        )

    def cleanup(self) -> None:
        self.workspace.cleanup()


def _substitute(arg: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        arg = arg.replace(key, value)
    return arg


def _excerpt(result: PhaseResult) -> str:
    text = (result.stdout.strip() + "\n" + result.stderr.strip()).strip()
    return text[-LOG_EXCERPT:]
