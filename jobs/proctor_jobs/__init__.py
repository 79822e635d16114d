"""Proctor's data plane: what runs inside render / judge / oracle Jobs and in local mode.

This package never imports the control plane (`proctor`), `kopf` or `kubernetes`: a worker pod
knows its store, its shard and nothing about the cluster. An import-linter contract enforces it.
"""

__version__ = "0.1.0"
