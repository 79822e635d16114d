#!/usr/bin/env python3
"""Prints 1 when success.txt holds exactly "1", else 0 (one number on stdout, as the original smoke test)."""

from pathlib import Path

marker = Path(__file__).resolve().parent.parent / "success.txt"
print(1 if marker.is_file() and not marker.is_symlink() and marker.read_text().strip() == "1" else 0)
