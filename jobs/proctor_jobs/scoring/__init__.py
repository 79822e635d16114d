"""Scoring helpers shared by the benchmark adapters."""
