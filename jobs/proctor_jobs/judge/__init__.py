"""The judge: an OpenAI-compatible multimodal client and the benchmarks' judge stages.

Importing this package is cheap (no `openai`, no Pillow): the control plane calls
`judge_stage_config` while planning. The stages themselves live in
`proctor_jobs.judge.artifactsbench.ArtifactsBenchJudge` and
`proctor_jobs.judge.vision2code.Vision2CodeJudge`; both take the stage config in their constructor.
"""

from proctor_jobs.judge.config import JudgeConfig, judge_skip_reason, judge_stage_config

__all__ = ["JudgeConfig", "judge_skip_reason", "judge_stage_config"]
