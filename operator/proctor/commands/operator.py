"""`proctor operator`: run the kopf operator (the same handlers as `kopf run -m proctor.handlers`)."""

from __future__ import annotations

import argparse
import sys

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
    # Flags left out fall back to the settings (operator/proctor/config.py: PROCTOR_* variables).
    election.add_argument(
        "--leader-election-namespace",
        help="hold a Lease in this namespace; only the holder reconciles (several replicas are safe) "
        "(default: PROCTOR_LEADER_ELECTION_NAMESPACE)",
    )
    p.add_argument(
        "--metrics-port",
        type=port,
        help="port for /metrics, 0 disables (default: PROCTOR_METRICS_PORT, 8080)",
    )
    p.add_argument(
        "--liveness-port",
        type=port,
        help="port for kopf's /healthz, 0 disables (default: PROCTOR_LIVENESS_PORT, 8081)",
    )
    p.add_argument("--bind", help="address the endpoints bind to (default: PROCTOR_BIND, 0.0.0.0)")
    p.add_argument("--verbose", "-v", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    import kopf

    import proctor.handlers  # noqa: F401 - registers the handlers
    from proctor.config import ConfigError, OperatorConfig
    from proctor.controllers.bootstrap import services_for

    flags = {
        "metrics_port": args.metrics_port,
        "liveness_port": args.liveness_port,
        "bind": args.bind,
        "leader_election_namespace": "" if args.standalone else args.leader_election_namespace,
        "namespaces": args.namespace or ([] if args.all_namespaces else None),
    }
    try:
        config = OperatorConfig.from_env(**{k: v for k, v in flags.items() if v is not None})
    except ConfigError as exc:
        print(f"proctor operator: configuration: {exc}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if not args.verbose:
        # kopf logs every successful timer pass at INFO; on a busy cluster that is noise, not news.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    namespaces = config.namespaces
    memo = kopf.Memo(services=services_for(config))
    liveness = f"http://{config.bind}:{config.liveness_port}/healthz" if config.liveness_port else None
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
