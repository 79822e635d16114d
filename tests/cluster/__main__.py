"""The developer command: the tests' environment, started and stopped by hand.

    python -m tests.cluster up [--time] [--state-dir DIR]   start everything, print the exports
    python -m tests.cluster up --real-node                   ... plus a real kubelet + containerd node
    eval "$(python -m tests.cluster env)"                    point kubectl, boto3, aws at it
    python -m tests.cluster down                             stop everything (pods included)
    python -m tests.cluster status                           what runs, and the binaries' build state

It runs the very code the pytest fixtures run, with the servers detached from this command (no
PR_SET_PDEATHSIG, own sessions) so they outlive it. State, logs and kubeconfigs live in the state
directory (default ~/.cache/proctor/devenv, or PROCTOR_DEVENV_DIR); `up` wipes it first, `down`
keeps it for the logs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import binaries, environment, procs, realnode
from . import prometheus as prom
from . import s3 as s3mod
from .binaries import MissingBinary
from .controlplane import env_exports

COMPONENTS = ("k8s", "s3", "prometheus")


def default_state_dir() -> Path:
    return Path(os.environ.get("PROCTOR_DEVENV_DIR") or binaries.cache_dir() / "devenv")


def _pids(state: Path) -> dict[str, int]:
    try:
        return json.loads((state / "pids.json").read_text())
    except (OSError, ValueError):
        return {}


def _ours(pid: int, state: Path) -> bool:
    """Whether `pid` is a process of this environment (its command line or cwd names the state dir),
    so a recycled pid is never killed."""
    marker = str(state.resolve())
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return marker in cmdline or cwd.startswith(marker)


def exports(state: Path) -> dict[str, str]:
    """The variables that point clients at the running environment."""
    values: dict[str, str] = {}
    if (state / "k8s" / "controlplane.json").exists():
        plane = environment.load_k8s(state / "k8s")
        values["KUBECONFIG"] = str(plane.kubeconfig)
        values["PROCTOR_TEST_OPERATOR_KUBECONFIG"] = str(plane.operator_kubeconfig)
        values["PROCTOR_TEST_KUBECTL"] = str(binaries.kubectl())
    if (state / "s3" / "s3.json").exists():
        server = s3mod.load(state / "s3")
        values.update(server.env())
        values["PROCTOR_TEST_BUCKET"] = server.bucket
    if (state / "prometheus" / "prometheus.json").exists():
        values["PROMETHEUS_URL"] = prom.load(state / "prometheus").url
    return values


def up(state: Path, only: list[str], timing: bool, real_node: bool = False) -> int:
    alive = [pid for pid in _pids(state).values() if procs.pid_alive(pid)]
    if alive:
        print(f"already up (pids {alive}); `python -m tests.cluster down` first", file=sys.stderr)
        print(env_exports(exports(state)))
        return 0
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    started = time.monotonic()
    servers: list[procs.Server] = []
    took: dict[str, float] = {}
    try:
        s3_server = prom_server = plane = None
        # MinIO and Prometheus start first and come up while the control plane does.
        if "s3" in only:
            try:
                s3_server = s3mod.start(state / "s3", bucket="proctor-dev", die_with_parent=False)
                servers.append(s3_server.server)
            except MissingBinary as err:
                print(f"skipping S3:{err}", file=sys.stderr)
        if "prometheus" in only:
            try:
                prom_server = prom.start(state / "prometheus", die_with_parent=False)
                servers.append(prom_server.server)
            except MissingBinary as err:
                print(f"skipping Prometheus:{err}", file=sys.stderr)
        if "k8s" in only:
            plane = environment.start_k8s(state / "k8s", die_with_parent=False)
            servers += plane.servers
            took["k8s"] = time.monotonic() - started
            if real_node:
                servers += realnode.start(
                    state / "realnode", plane.kubeconfig, plane.kubectl, die_with_parent=False
                )
                took["real node"] = time.monotonic() - started
        if s3_server is not None:
            s3_server.wait_ready()
            took["s3"] = time.monotonic() - started
        if prom_server is not None:
            prom_server.wait_ready()
            took["prometheus"] = time.monotonic() - started
    except BaseException:
        for server in reversed(servers):
            server.stop()
        if real_node:
            realnode.stop_leftovers(state / "realnode")
        raise
    elapsed = time.monotonic() - started
    pids = {s.name: s.pid for s in servers}
    (state / "pids.json").write_text(json.dumps(pids, indent=2))
    for server in servers:
        server.detach()
    if timing:
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in took.items())
        print(f"environment ready in {elapsed:.2f} s ({parts}; each counted from the start)", file=sys.stderr)
    print(f"# proctor test environment up; state and logs in {state}", file=sys.stderr)
    print(env_exports(exports(state)))
    return 0


def down(state: Path) -> int:
    pids = _pids(state)
    node_dir = state / "realnode"
    plane = None
    if node_dir.exists() and (state / "k8s" / "controlplane.json").exists():
        # The real node's pods first, while its kubelet and the API server still run: the kubelet
        # tears their sandboxes down (CNI releases addresses and NAT rules).
        plane = environment.load_k8s(state / "k8s")
        with contextlib.suppress(Exception):
            realnode.drain(plane.kubectl)
    # Reverse start order: the kubelet first (on SIGTERM it stops its pods itself), etcd after the
    # API server (which otherwise hangs its shutdown on a lost etcd).
    for name in reversed(list(pids)):
        pid = pids[name]
        if procs.pid_alive(pid) and _ours(pid, state):
            procs.kill_group(pid)
    # Sweep: any pod process the kubelet did not get to.
    for pid_file in (state / "k8s" / "pods").glob("**/pids/all") if (state / "k8s").exists() else []:
        for pid, _ in procs.pid_records(pid_file.read_text()):
            if procs.pid_alive(pid) and _ours(pid, state):
                procs.kill_group(pid, timeout=1)
    left = [pid for pid in pids.values() if procs.pid_alive(pid) and _ours(pid, state)]
    (state / "pids.json").unlink(missing_ok=True)
    if node_dir.exists():
        # Containers, mounts, the bridge, and the host's sysctls and iptables rules as they were.
        for problem in realnode.stop_leftovers(node_dir):
            print(f"real node: could not undo {problem}", file=sys.stderr)
    if left:
        print(f"processes still alive: {left}", file=sys.stderr)
        return 1
    print(f"proctor test environment down (logs kept in {state})", file=sys.stderr)
    return 0


def status(state: Path) -> int:
    for name, pid in _pids(state).items():
        print(f"{name:24} pid {pid:<8} {'running' if procs.pid_alive(pid) else 'DEAD'}")
    subprocess.run([str(binaries.BUILD_SH), "status"], check=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--state-dir", type=Path, default=None, help="default: ~/.cache/proctor/devenv")
    parser.add_argument("--time", action="store_true", help="print how long the start took")
    parser.add_argument("--only", default=",".join(COMPONENTS), help="comma list of k8s,s3,prometheus")
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="also a real kubelet + containerd + runc node (root; tests/cluster/realnode.py)",
    )
    args = parser.parse_args(argv)
    state = (args.state_dir or default_state_dir()).resolve()
    if args.command == "up":
        return up(state, [c for c in args.only.split(",") if c], args.time, args.real_node)
    if args.command == "down":
        return down(state)
    if args.command == "env":
        if not _pids(state):
            print("# not up: python -m tests.cluster up", file=sys.stderr)
            return 1
        print(env_exports(exports(state)))
        return 0
    return status(state)


if __name__ == "__main__":
    sys.exit(main())
