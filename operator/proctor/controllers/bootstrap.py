"""Build the operator's Services from its environment (used by `proctor operator` and `kopf run`)."""

from __future__ import annotations

import logging
import os

from proctor.cluster import Cluster
from proctor.config import OperatorConfig
from proctor.controllers.services import Services
from proctor.metrics import OperatorState, serve

log = logging.getLogger("proctor.operator")


def services_from_env(config: OperatorConfig | None = None, metrics_port: int | None = None) -> Services:
    config = config or OperatorConfig.from_env()
    state = OperatorState(retention_s=config.metrics_retention_seconds)
    port = metrics_port if metrics_port is not None else int(os.environ.get("PROCTOR_METRICS_PORT", "8080"))
    if port:
        serve(state, port, host=os.environ.get("PROCTOR_METRICS_HOST", "0.0.0.0"))
        log.info("metrics on :%d/metrics", port)
    return Services(config=config, cluster=Cluster(), state=state)
