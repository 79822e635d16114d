"""Benchmark adapters, looked up by format name. Imports are lazy so that importing the registry
does not pull in a browser or plotting library."""

from __future__ import annotations

import importlib

from proctor_jobs.benchmarks.base import Benchmark, FormatError, StageContext, StageInfo, StageProcessor

_ADAPTERS = {
    "humanevalv": "proctor_jobs.benchmarks.humanevalv:HumanEvalV",
    "artifactsbench": "proctor_jobs.benchmarks.artifactsbench:ArtifactsBench",
    "vision2code": "proctor_jobs.benchmarks.vision2code:Vision2Code",
    "artevalbench": "proctor_jobs.benchmarks.artevalbench:ArtEvalBench",
}

BENCHMARK_FORMATS = tuple(_ADAPTERS)


def get_benchmark(name: str) -> Benchmark:
    try:
        target = _ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark format {name!r}; known: {', '.join(_ADAPTERS)}") from None
    module_name, cls_name = target.split(":")
    return getattr(importlib.import_module(module_name), cls_name)()


__all__ = [
    "BENCHMARK_FORMATS",
    "Benchmark",
    "FormatError",
    "StageContext",
    "StageInfo",
    "StageProcessor",
    "get_benchmark",
]
