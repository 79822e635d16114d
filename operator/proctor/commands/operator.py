"""`proctor operator`: run the kopf operator (the same handlers as `kopf run -m proctor.handlers`)."""

from __future__ import annotations

import argparse
import os

from proctor.commands import port


def add_parser(sub) -> None:
    p = sub.add_parser(
        "operator", help="run the Kubernetes operator (reconciles EvalRun, JudgeServer, Artifact)"
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", help="watch the whole cluster (default)"
    )
    election = p.add_mutually_exclusive_group()
    election.add_argument("--standalone", action="store_true", help="no leader election: the only replica")
    election.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("PROCTOR_LEADER_ELECTION_NAMESPACE", ""),
        help="hold a Lease in this namespace; only the holder reconciles (several replicas are safe)",
    )
    p.add_argument(
        "--metrics-port",
        type=port,
        default=int(os.environ.get("PROCTOR_METRICS_PORT", "8080")),
        help="port for /metrics (0 disables)",
    )
    p.add_argument(
        "--liveness-port",
        type=port,
        default=int(os.environ.get("PROCTOR_LIVENESS_PORT", "8081")),
        help="port for kopf's /healthz (0 disables)",
    )
    p.add_argument(
        "--bind", default=os.environ.get("PROCTOR_BIND", "0.0.0.0"), help="address the endpoints bind to"
    )
    p.add_argument("--verbose", "-v", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    import kopf

    import proctor.handlers  # noqa: F401 - registers the handlers
    from proctor.controllers.bootstrap import services_from_env

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if not args.verbose:
        # kopf logs every successful timer pass at INFO; on a busy cluster that is noise, not news.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    os.environ["PROCTOR_METRICS_HOST"] = args.bind
    if not args.standalone and args.leader_election_namespace:
        os.environ["PROCTOR_LEADER_ELECTION_NAMESPACE"] = args.leader_election_namespace
    else:
        os.environ.pop("PROCTOR_LEADER_ELECTION_NAMESPACE", None)
    namespaces = args.namespace or [n for n in os.environ.get("PROCTOR_NAMESPACES", "").split(",") if n]
    memo = kopf.Memo(services=services_from_env(metrics_port=args.metrics_port))
    liveness = f"http://{args.bind}:{args.liveness_port}/healthz" if args.liveness_port else None
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            # An empty collection, never None: kopf's namespace observer iterates it even when
            # clusterwide (None crashed every cluster-wide start; the operator image smoke test found it).
            namespaces=namespaces,
            # kopf's own peering is off: replicas coordinate through Proctor's Lease (leader.py).
            standalone=True,
            liveness_endpoint=liveness,
            memo=memo,
        )
    )
    return 0
