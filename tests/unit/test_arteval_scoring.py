"""An evaluator's verdict: a JSON line, `Agent scores: {...}` as a mapping, a number, the exit status."""

from __future__ import annotations

import json

import pytest

from proctor_jobs.arteval.scoring import canonical_stage, excerpts, parse_verdict

# The original evaluators' log format (evaluator/utils.py: "%(asctime)s | %(levelname)s | %(name)s | ...").
ORIGINAL_LOG = """\
2025-05-01 10:00:00 | INFO | ANVIL-AGENT-EVALUATOR | EnvironmentSetup: PASS
2025-05-01 10:00:01 | INFO | ANVIL-AGENT-EVALUATOR | ArtifactBuild: FAIL
2025-05-01 10:00:01 | ERROR | ANVIL-AGENT-EVALUATOR |  - cargo_build: exit status 101
2025-05-01 10:00:01 | ERROR | ANVIL-AGENT-EVALUATOR |  - verus: not found
2025-05-01 10:00:02 | INFO | ANVIL-AGENT-EVALUATOR | BenchmarkPrep/osdi24-anvil: PASS
2025-05-01 10:00:03 | INFO | ANVIL-AGENT-EVALUATOR | ExperimentRuns: FAIL
2025-05-01 10:00:03 | ERROR | ANVIL-AGENT-EVALUATOR |  - table3: results/table3.md missing
2025-05-01 10:00:03 | INFO | ANVIL-AGENT-EVALUATOR | Agent scores: {'OracleEnvSetup': 1, \
'OracleArtifactBuild': 0, 'OracleBenchmarkPrep': 1, 'OracleExperimentRuns': 0}
"""


def test_the_original_log_gives_each_stage_with_its_own_excerpt():
    verdict = parse_verdict("", ORIGINAL_LOG, exit_code=2)
    assert (verdict.score, verdict.source, verdict.max_score) == (2, "agent_scores", 4)
    stages = {s.name: s for s in verdict.stages}
    assert list(stages) == ["env_setup", "build", "benchmark_prep", "experiment_runs"]
    assert [s.passed for s in verdict.stages] == [True, False, True, False]
    assert stages["build"].label == "OracleArtifactBuild"
    assert "cargo_build: exit status 101" in stages["build"].excerpt
    assert "verus: not found" in stages["build"].excerpt
    assert "table3" not in stages["build"].excerpt
    assert "results/table3.md missing" in stages["experiment_runs"].excerpt
    assert not verdict.notes  # exit status 2 agrees with the mapping


def test_the_mapping_is_parsed_not_counted():
    # Counting ": 1" as the original does gives 1 here (True is not ": 1"; ": 10" would count).
    line = "Agent scores: {'OracleEnvSetup': True, 'OracleArtifactBuild': True, 'Note: 1': 0, 'x': False}"
    verdict = parse_verdict(line, "", exit_code=0)
    assert verdict.score == 2
    assert [s.passed for s in verdict.stages][:2] == [True, True]
    assert verdict.max_score == 4


def test_the_last_mapping_counts_and_json_mappings_work_too():
    log = 'Agent scores: {"env": 0}\n...\nAgent scores: {"env_setup": 1, "build": 1, "prep": 1, "runs": 1}\n'
    verdict = parse_verdict(log, "", exit_code=4)
    assert verdict.score == 4
    assert [s.name for s in verdict.stages] == ["env_setup", "build", "benchmark_prep", "experiment_runs"]


def test_a_json_line_wins_and_carries_its_own_logs():
    line = json.dumps(
        {
            "stages": {
                "env_setup": True,
                "build": {"ok": True},
                "benchmark_prep": {"ok": False, "log": "checksum mismatch"},
                "experiment_runs": 0,
            },
            "score": 3,
        }
    )
    verdict = parse_verdict(f"building...\n{line}\ndone\n", "Agent scores: {'a': 1}", exit_code=0)
    assert verdict.source == "json" and verdict.score == 2
    assert {s.name: s.excerpt for s in verdict.stages}["benchmark_prep"] == "checksum mismatch"
    assert any("reported score 3 differs" in n for n in verdict.notes)


def test_a_json_score_without_stages():
    verdict = parse_verdict('{"score": 3}\n', "", exit_code=0)
    assert (verdict.score, verdict.source, verdict.stages) == (3, "json", [])


def test_a_bare_number_on_the_last_line_is_the_smoke_tests_format():
    verdict = parse_verdict("checking success.txt\n1\n", "", exit_code=0)
    assert (verdict.score, verdict.source) == (1, "number")
    # 17 cannot be a score 0-4, so the exit status (0) is the verdict instead.
    assert (parse_verdict("17\n", "", exit_code=0).score, parse_verdict("17\n", "", 0).source) == (
        0,
        "exit_status",
    )


def test_the_exit_status_is_the_fallback():
    verdict = parse_verdict("all checks ran\n", "", exit_code=3)
    assert (verdict.score, verdict.source) == (3, "exit_status")


@pytest.mark.parametrize(
    ("stderr", "exit_code"),
    [
        ("Traceback (most recent call last):\n  File x\nKeyError: 'refs'\n", 1),
        ("python3: can't open file '/repo/_agent_eval/main.py': [Errno 2] No such file or directory\n", 2),
        ("bash: evaluate.sh: command not found\n", 127),
        ("", 9),
        ("", None),
    ],
)
def test_a_crashed_evaluator_gives_no_score(stderr, exit_code):
    verdict = parse_verdict("", stderr, exit_code=exit_code)
    assert verdict.score is None and verdict.source == "none"


def test_a_killed_evaluator_gives_no_score_even_with_exit_status_zero_like_values():
    assert parse_verdict("", "", exit_code=None, crashed=True).score is None


def test_exit_status_disagreeing_with_the_mapping_is_noted():
    verdict = parse_verdict("Agent scores: {'OracleEnvSetup': 1}", "", exit_code=3)
    assert verdict.score == 1
    assert any("exit status 3 differs" in n for n in verdict.notes)


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("OracleEnvSetup", "env_setup"),
        ("EnvironmentSetup", "env_setup"),
        ("OracleArtifactBuild", "build"),
        ("build/install", "build"),
        ("OracleBenchmarkPrep", "benchmark_prep"),
        ("Benchmark preparation", "benchmark_prep"),
        ("OracleExperimentRuns", "experiment_runs"),
        ("WasabiExperimentRuns", "experiment_runs"),
        ("Custom Check", "custom_check"),
    ],
)
def test_stage_names_are_normalised(label, name):
    assert canonical_stage(label) == name


def test_excerpts_stop_at_the_next_stage():
    parts = excerpts(ORIGINAL_LOG)
    assert parts["env_setup"].endswith("EnvironmentSetup: PASS")
    assert "Agent scores" not in parts["experiment_runs"]
