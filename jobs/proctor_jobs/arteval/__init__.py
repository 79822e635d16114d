"""ArtEvalBench support: task import, artifact archives, workspaces, the agent and oracle phases, scoring.

The adapter (`proctor_jobs.benchmarks.artevalbench`) wires these together; each module has one job:

- `tasks`      import a task list with the original harness's rules, every problem named by record and field
- `archive`    artifact trees as content-addressed tar.gz: pack, fetch (with retries), verify, extract
- `workspace`  a scratch copy of an artifact whose `_agent_eval/` folders exist only for the oracle phase
- `phases`     run the agent and the evaluator as confined processes with their own deadlines
- `scoring`    read the evaluator's verdict (JSON line, `Agent scores: {...}`, a digit, or its exit status)
- `pack`       a command-line tool turning an original task list and its folders into Proctor task records
"""
