"""Build the operator's Services from its settings (used by `proctor operator` and `kopf run`)."""

from __future__ import annotations

import logging

from proctor.cluster import Cluster
from proctor.config import OperatorConfig
from proctor.controllers.services import Services
from proctor.metrics import OperatorState, serve

log = logging.getLogger("proctor.operator")


def services_for(config: OperatorConfig) -> Services:
    state = OperatorState(retention_s=config.metrics_retention_seconds)
    if config.metrics_port:
        serve(state, config.metrics_port, host=config.bind)
        log.info("metrics on %s:%d/metrics", config.bind, config.metrics_port)
    return Services(config=config, cluster=Cluster(), state=state)


def services_from_env() -> Services:
    """`kopf run -m proctor.handlers`: everything from the environment."""
    return services_for(OperatorConfig.from_env())
