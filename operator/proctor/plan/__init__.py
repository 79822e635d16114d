"""Planning a run into stages and shards (pure functions; the store is touched only by `write_plan`)."""

from proctor.plan.planner import Plan, StagePlan, plan_run, read_plan, run_uid, write_plan

__all__ = ["Plan", "StagePlan", "plan_run", "read_plan", "run_uid", "write_plan"]
