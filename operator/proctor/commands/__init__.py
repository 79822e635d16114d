"""One module per `proctor` subcommand: `add_parser(subparsers)` registers it with a `handler`.

The argument types below refuse values that make no sense (`--workers -3`, `--shard-size 0`) with
argparse's usage error (exit status 2) instead of failing later or silently doing something else."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _bounded(kind: Callable, low, high=None, what: str = "") -> Callable:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _bounded(int, 1, what="a whole number >= 1")
non_negative_int = _bounded(int, 0, what="a whole number >= 0")
port = _bounded(int, 0, 65535, what="a port number 0-65535")
positive_float = _bounded(float, 1e-9, what="a number > 0")
fraction = _bounded(float, 1e-9, 1.0, what="a fraction in (0, 1]")
