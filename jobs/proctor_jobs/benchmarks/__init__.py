"""Benchmark adapters, looked up by format name. Each adapter is imported when first asked for, by an
import statement (not a string), so importing the registry pulls in no browser or plotting library
and the import contracts still see every adapter."""

from __future__ import annotations

from collections.abc import Callable

from proctor_jobs.benchmarks.base import Benchmark, FormatError, StageContext, StageInfo, StageProcessor


def _humanevalv() -> Benchmark:
    from proctor_jobs.benchmarks.humanevalv import HumanEvalV

    return HumanEvalV()


def _artifactsbench() -> Benchmark:
    from proctor_jobs.benchmarks.artifactsbench import ArtifactsBench

    return ArtifactsBench()


def _vision2code() -> Benchmark:
    from proctor_jobs.benchmarks.vision2code import Vision2Code

    return Vision2Code()


def _artevalbench() -> Benchmark:
    from proctor_jobs.benchmarks.artevalbench import ArtEvalBench

    return ArtEvalBench()


_ADAPTERS: dict[str, Callable[[], Benchmark]] = {
    "humanevalv": _humanevalv,
    "artifactsbench": _artifactsbench,
    "vision2code": _vision2code,
    "artevalbench": _artevalbench,
}

BENCHMARK_FORMATS = tuple(_ADAPTERS)


def get_benchmark(name: str) -> Benchmark:
    try:
        make = _ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark format {name!r}; known: {', '.join(_ADAPTERS)}") from None
    return make()


__all__ = [
    "BENCHMARK_FORMATS",
    "Benchmark",
    "FormatError",
    "StageContext",
    "StageInfo",
    "StageProcessor",
    "get_benchmark",
]
