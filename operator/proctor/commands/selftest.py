"""`proctor selftest`: run the hostile suite (attacks written as answers) against this install —
on this machine, or with `--cluster` inside a pod built exactly like a worker pod."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path


def add_parser(sub) -> None:
    from proctor_jobs.selftest.cli import add_arguments

    p = sub.add_parser(
        "selftest",
        help="attack this install with the hostile suite; prints attack, tier, outcome, time, escaped",
        description="Run every attack in tests/hostile (forged verdicts, spoiled neighbours, stolen secrets "
        "and reference data, exhausted machines) through the real stage code in every tier asked for, "
        "beside well-behaved neighbours, with a loopback canary and canary credentials. Exit 1 if "
        "anything escaped.",
    )
    add_arguments(p)
    p.add_argument(
        "--cluster",
        action="store_true",
        help="run the suite in a Job of the current kubeconfig's cluster, in a pod hardened like a worker "
        "pod (image, seccomp profile, runtime class, node selector from the same PROCTOR_* settings the "
        "chart gives the operator); nothing is left behind",
    )
    p.add_argument("--namespace", "-n", default="default", help="namespace for --cluster (default: default)")
    p.add_argument(
        "--timeout", type=float, default=1200, help="seconds to wait for the --cluster pod (default: 1200)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.cluster:
        return run_in_cluster(args)
    from proctor_jobs.selftest.cli import run as run_selftest

    return run_selftest(args)


def suite_args(args: argparse.Namespace) -> list[str]:
    """The options the pod's suite runs with (cases and output are the pod's own)."""
    out = ["--target", args.target, "--verdict", args.verdict]
    for tier in args.tier or []:
        out += ["--tier", tier]
    for clock in args.clock or []:
        out += ["--clock", clock]
    return out


def case_files(folder: Path) -> dict[str, str]:
    """ConfigMap data: each case file under a flat key (`oracle/forged.yaml` -> `oracle__forged.yaml`)."""
    from proctor_jobs.selftest import load_cases

    load_cases(folder)  # refuse a broken case here, not in the pod
    return {
        "__".join(path.relative_to(folder).parts): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.yaml"))
        if not any(part.startswith(".") for part in path.relative_to(folder).parts)
    }


def run_in_cluster(args: argparse.Namespace) -> int:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    from proctor.config import ConfigError, OperatorConfig
    from proctor.k8s.jobs import build_selftest_job
    from proctor_jobs.selftest import CaseError
    from proctor_jobs.selftest.cli import case_folder, report

    try:
        files = case_files(case_folder(args))
    except CaseError as exc:
        print(f"proctor selftest: {exc}", file=sys.stderr)
        return 2
    try:
        settings = OperatorConfig.from_env()
    except ConfigError as exc:
        print(f"proctor selftest: configuration: {exc}", file=sys.stderr)
        return 2
    try:
        config.load_kube_config()
    except config.ConfigException:
        config.load_incluster_config()
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    namespace, name = args.namespace, f"proctor-selftest-{secrets.token_hex(3)}"
    job = build_selftest_job(settings, namespace, name, name, suite_args(args))
    pod_spec = job["spec"]["template"]["spec"]
    print(
        f"selftest Job {namespace}/{name}: image {pod_spec['containers'][0]['image']}, seccomp "
        f"{pod_spec['securityContext'].get('seccompProfile')}, runtime class "
        f"{pod_spec.get('runtimeClassName') or 'default'}",
        file=sys.stderr,
    )
    try:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": files})
        batch.create_namespaced_job(namespace, job)
        log, why = _wait_for_log(core, batch, namespace, name, args.timeout)
    except ApiException as exc:
        print(
            f"proctor selftest: the cluster refused: {exc.status} {exc.reason}: {exc.body}", file=sys.stderr
        )
        return 2
    finally:
        for delete in (
            lambda: batch.delete_namespaced_job(name, namespace, propagation_policy="Background"),
            lambda: core.delete_namespaced_config_map(name, namespace),
        ):
            try:
                delete()
            except ApiException:
                pass
    rows = _rows(log)
    if rows is None:
        tail = "\n".join(log.splitlines()[-20:])
        print(f"proctor selftest: the pod gave no result ({why})\n{tail}", file=sys.stderr)
        return 2
    return report(rows, args.json, where=" in a worker pod")


def _wait_for_log(core, batch, namespace: str, name: str, timeout: float) -> tuple[str, str]:
    """The pod's log once the Job ended (or the time ran out), and how it ended."""
    deadline, why = time.monotonic() + timeout, f"no end within {timeout:g} s"
    while time.monotonic() < deadline:
        status = batch.read_namespaced_job_status(name, namespace).status
        if status.succeeded or status.failed:
            why = "succeeded" if status.succeeded else "failed"
            break
        time.sleep(2)
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    if not pods:
        return "", f"{why}; no pod was created"
    pod = pods[0]
    try:
        return core.read_namespaced_pod_log(pod.metadata.name, namespace), why
    except Exception as exc:  # the pod never started: say what its status says
        states = [s.state.to_dict() for s in (pod.status.container_statuses or [])]
        return "", f"{why}; pod {pod.status.phase}, {states or pod.status.conditions}: {exc}"


def _rows(log: str) -> list[dict] | None:
    for line in reversed(log.strip().splitlines()):
        if line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
